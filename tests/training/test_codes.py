"""training.codes: what each discrete code of an infogan model draws."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from training.codes import code_table, main
from training.networks import build_discriminator, build_generator


def test_code_table_counts_each_code_and_its_top_class():
    codes = np.array([0, 0, 0, 1, 1, 2])
    classes = np.array([3, 3, 5, 7, 7, 1])
    table = code_table(codes, classes, num_codes=3, num_classes=10)
    assert table["counts"][0][3] == 2 and table["counts"][0][5] == 1
    assert table["top_class"] == [3, 7, 1]
    assert table["top_share"] == pytest.approx([2 / 3, 1.0, 1.0])
    assert table["purity"] == pytest.approx(5 / 6)


@pytest.fixture
def infogan_model(tmp_path):
    from export import export_checkpoint

    torch.manual_seed(0)
    g, d = build_generator("infogan"), build_discriminator("infogan")
    payload = {
        "arch": "infogan",
        "g_kwargs": {},
        "d_kwargs": {},
        "G": g.state_dict(),
        "D": d.state_dict(),
        "epoch": 1,
        "step": 10,
        "options": {"arch": "infogan", "batch_size": 32, "lr": 5e-4},
        "dataset": {
            "name": "mnist",
            "num_classes": 0,
            "class_names": None,
            "image_shape": [1, 28, 28],
        },
        "loss": "bce",
    }
    return export_checkpoint(payload, "infogan-test", tmp_path)


def test_codes_of_an_exported_infogan(infogan_model, capsys):
    assert main([str(infogan_model), "--num-gen", "200"]) == 0
    out = capsys.readouterr().out
    table = json.loads(out.strip().splitlines()[-1])
    assert table["images"] == 200 and len(table["counts"]) == 10
    assert sum(map(sum, table["counts"])) == 200
    assert "| code |" in out and "purity" in out


UNCONDITIONAL = str(Path(__file__).resolve().parents[2] / "models" / "dcgan-mnist-v2")


def test_codes_refuses_a_model_without_codes(capsys):
    assert main([UNCONDITIONAL]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not an exported infogan model" in err
    assert len(err.strip().splitlines()) == 1
    assert main([UNCONDITIONAL, "--num-gen", "0"]) == 2
    assert "--num-gen must be at least 1" in capsys.readouterr().err
