"""``python -m training.evaluate``: outputs, the card, the cache, and one-line errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from training.checkpoint import save_checkpoint, untrained_checkpoint
from training.evaluate import main

REPO = Path(__file__).resolve().parents[2]


def make_checkpoint(path: Path, arch: str, dataset: str = "fashion-mnist") -> Path:
    data = {"name": dataset, "num_classes": 10, "image_shape": [1, 28, 28]}
    return save_checkpoint(path, untrained_checkpoint(arch, dataset=data, epoch=1))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_model_dir(
    path: Path,
    conditional: bool = True,
    dataset: str = "fashion-mnist",
    shape: tuple[int, int, int] = (28, 28, 1),
) -> Path:
    """An exported-model dir: a small real ONNX generator (uint8 NHWC ``shape`` out), its card."""
    rng = np.random.default_rng(0)
    pixels = int(np.prod(shape))
    weights = rng.standard_normal(100 * pixels) * 0.1
    inits = [
        helper.make_tensor("W", TensorProto.FLOAT, [100, pixels], weights),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("scale", TensorProto.FLOAT, [], [127.5]),
        helper.make_tensor("shape", TensorProto.INT64, [4], [-1, *shape]),
    ]
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 100])]
    nodes = [helper.make_node("MatMul", ["z", "W"], ["h"])]
    if conditional:
        embedding = rng.standard_normal(10 * pixels)
        inits.append(helper.make_tensor("E", TensorProto.FLOAT, [10, pixels], embedding))
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]))
        nodes += [
            helper.make_node("Gather", ["E", "label"], ["e"]),
            helper.make_node("Add", ["h", "e"], ["h2"]),
        ]
    nodes += [
        helper.make_node("Tanh", ["h2" if conditional else "h"], ["t"]),
        helper.make_node("Add", ["t", "one"], ["t1"]),
        helper.make_node("Mul", ["t1", "scale"], ["px"]),
        helper.make_node("Cast", ["px"], ["u"], to=TensorProto.UINT8),
        helper.make_node("Reshape", ["u", "shape"], ["image"]),
    ]
    out = helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", *shape])
    model = helper.make_model(
        helper.make_graph(nodes, "toy", inputs, [out], inits),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    path.mkdir(parents=True)
    onnx.save(model, path / "model.onnx")
    card = {
        "name": path.name,
        "dataset": dataset,
        "latent_dim": 100,
        "num_classes": 10 if conditional else None,
        "sha256": sha256(path / "model.onnx"),
        "quality": {"note": "kept"},
    }
    (path / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


# -- bad inputs: one line on stderr, exit 2 ----------------------------------------------


def assert_one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and needle in lines[-1], err
    assert "Traceback" not in err


def test_missing_source(capsys, tmp_path, data_dir):
    code, _, err = run(capsys, str(tmp_path / "none.pt"), "--data-dir", str(data_dir))
    assert_one_line_error(code, err, "source not found")


def test_unknown_dataset_and_metric(capsys, tmp_path, data_dir):
    ckpt = str(make_checkpoint(tmp_path / "g.pt", "mlp-small"))
    code, _, err = run(capsys, ckpt, "--dataset", "cifar10", "--data-dir", str(data_dir))
    assert_one_line_error(code, err, "unknown dataset 'cifar10'")
    code, _, err = run(capsys, ckpt, "--metrics", "fid,ssim", "--data-dir", str(data_dir))
    assert_one_line_error(code, err, "unknown metric 'ssim'")
    code, _, err = run(capsys, "real", "--data-dir", str(data_dir))
    assert_one_line_error(code, err, "real needs --dataset")
    code, _, err = run(capsys, ckpt, "--device", "tpu", "--data-dir", str(data_dir))
    assert_one_line_error(code, err, "unknown device 'tpu'")


def test_dataset_other_than_the_models(capsys, tmp_path, data_dir):
    ckpt = str(make_checkpoint(tmp_path / "g.pt", "mlp-small"))
    code, _, err = run(capsys, ckpt, "--dataset", "mnist", "--data-dir", str(data_dir))
    assert_one_line_error(code, err, "trained on fashion-mnist")


def test_missing_data_files(capsys, tmp_path):
    ckpt = str(make_checkpoint(tmp_path / "g.pt", "mlp-small"))
    code, _, err = run(capsys, ckpt, "--metrics", "cfd", "--data-dir", str(tmp_path / "empty"))
    assert_one_line_error(code, err, "test split not found")


def test_conditional_metric_on_an_unconditional_model(capsys, tmp_path, data_dir):
    ckpt = str(make_checkpoint(tmp_path / "g.pt", "mlp-small"))
    code, _, err = run(capsys, ckpt, "--metrics", "acc", "--data-dir", str(data_dir))
    assert_one_line_error(code, err, "needs a conditional model")


def test_write_card_needs_a_model_dir(capsys, tmp_path, data_dir):
    ckpt = str(make_checkpoint(tmp_path / "g.pt", "cgan"))
    code, _, err = run(capsys, ckpt, "--write-card", "--data-dir", str(data_dir))
    assert_one_line_error(code, err, "--write-card needs a model dir")


def test_counts_too_small(capsys, tmp_path, data_dir):
    ckpt = str(make_checkpoint(tmp_path / "g.pt", "mlp-small"))
    code, _, err = run(capsys, ckpt, "--num-gen", "1", "--data-dir", str(data_dir))
    assert_one_line_error(code, err, "at least 2")
    code, _, err = run(
        capsys, ckpt, "--num-gen", "3", "--metrics", "pr", "--data-dir", str(data_dir)
    )
    assert_one_line_error(code, err, "precision/recall")


def test_the_module_runs_as_a_command(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "training.evaluate", str(tmp_path / "missing")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: source not found: {tmp_path / 'missing'} (a checkpoint file or a model dir)"
    ]


# -- results -----------------------------------------------------------------------------


def test_checkpoint_classifier_metrics_write_jsonl(capsys, tmp_path, data_dir):
    ckpt = make_checkpoint(tmp_path / "run" / "g.pt", "cgan")
    argv = [str(ckpt), "--metrics", "cls", "--num-gen", "60", "--num-real", "50"]
    code, out, _ = run(capsys, *argv, "--data-dir", str(data_dir), "--quiet")
    assert code == 0
    report = last_json(out)
    assert set(report["results"]) == {
        "classifier_fd",
        "classifier_precision",
        "classifier_recall",
        "conditional_accuracy",
    }
    assert report["num_gen"] == 60 and report["num_real"] == 50
    assert report["candidates"]["labels"] == "i % 10"
    assert report["reference"]["split"] == "test"
    summary = report["protocol_summary"]
    assert "60 generated images vs the first 50 images of the test split" in summary
    assert "domain classifier" in summary and "Inception" not in summary
    assert "| conditional accuracy" in out
    for name in ("cfd", "cpr", "acc"):
        lines = (tmp_path / "run" / f"metric-{name}.jsonl").read_text().splitlines()
        assert len(lines) == 1
        entry = json.loads(lines[0])
        assert entry["metric"] == name and entry["num_gen"] == 60
        assert entry["results"] == report["metrics"][name]["results"]
        assert entry["protocol"]["classifier"]["test_accuracy"] >= 0.85
    # An untrained generator is far from real images, and its labels are chance.
    assert report["results"]["classifier_fd"] > 1.0
    assert report["results"]["conditional_accuracy"] < 0.5


def test_write_card_records_quality_and_keeps_the_model(capsys, tmp_path, data_dir):
    model = make_model_dir(tmp_path / "toy")
    before = (model / "model.onnx").read_bytes()
    argv = [str(model), "--metrics", "cfd,acc", "--num-gen", "40", "--num-real", "40"]
    code, out, _ = run(capsys, *argv, "--write-card", "--data-dir", str(data_dir), "--quiet")
    assert code == 0
    report = last_json(out)
    card = json.loads((model / "card.json").read_text())
    quality = card["quality"]
    assert quality["note"] == "kept"
    assert quality["classifier_fd"] == report["results"]["classifier_fd"]
    assert quality["conditional_accuracy"] == report["results"]["conditional_accuracy"]
    assert quality["measured"]["acc"]["num_generated"] == 40
    assert quality["measured"]["acc"]["command"].startswith("python -m training.evaluate ")
    assert quality["protocol"]["classifier"]["weights_sha256"]
    assert (model / "model.onnx").read_bytes() == before
    assert card["sha256"] == sha256(model / "model.onnx")
    assert (model / "metric-acc.jsonl").is_file()


def test_write_card_refuses_a_card_of_another_model(capsys, tmp_path, data_dir):
    model = make_model_dir(tmp_path / "toy", conditional=False)
    card = json.loads((model / "card.json").read_text())
    card["sha256"] = "0" * 64
    (model / "card.json").write_text(json.dumps(card))
    argv = [str(model), "--metrics", "cfd", "--num-gen", "10", "--write-card"]
    code, _, err = run(capsys, *argv, "--data-dir", str(data_dir))
    assert_one_line_error(code, err, "the card does not describe this model")
    assert json.loads((model / "card.json").read_text()) == card


@pytest.mark.slow  # the Inception network on CPU
def test_real_floor_with_inception_metrics_and_the_cache(capsys, tmp_path, data_dir):
    argv = ["real", "--dataset", "fashion-mnist", "--num-gen", "5", "--num-real", "5"]
    argv += ["--metrics", "fid,kid,pr", "--cache-dir", str(tmp_path / "cache")]
    argv += ["--data-dir", str(data_dir), "--out", str(tmp_path / "out"), "--quiet"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    first = last_json(out)
    assert first["candidates"]["split"] == "test" and first["reference"]["split"] == "train"
    assert first["cache"]["hits"] == 0 and first["cache"]["misses"] == 2
    features = first["metrics"]["fid"]["protocol"]["features"]
    assert features["network_sha1"] == "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
    assert "grayscale repeated to 3 channels" in features["preprocess"]
    summary = first["protocol_summary"]
    assert "grayscale repeated to 3 channels, float bilinear resize to 299x299" in summary
    assert "the first 5 test images vs the first 5 train images" in summary
    assert first["results"]["fid"] > 0
    assert 0 <= first["results"]["precision"] <= 1 and 0 <= first["results"]["recall"] <= 1
    assert len(list((tmp_path / "cache").glob("inception-v3-pool3-fashion-mnist-*.npy"))) == 2
    code, out, _ = run(capsys, *argv)  # again: both real sets come from the cache
    second = last_json(out)
    assert second["cache"]["hits"] == 2
    assert second["results"] == first["results"]
    assert len((tmp_path / "out" / "metric-fid.jsonl").read_text().splitlines()) == 2


# -- image folder data sets (folder:PATH): the whole folder is the reference ------------------


def make_folder(path: Path, n: int = 8, size: int = 16) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    path.mkdir(parents=True)
    for i in range(n):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(path / f"{i:03d}.png")
    return path


def test_folder_model_refuses_classifier_metrics_and_another_folder(capsys, tmp_path):
    folder = make_folder(tmp_path / "imgs")
    model = make_model_dir(tmp_path / "rgb", False, f"folder:{folder}", (16, 16, 3))
    code, _, err = run(capsys, str(model), "--metrics", "cls", "--num-gen", "4")
    assert_one_line_error(code, err, "an image folder has no domain classifier")
    other = make_folder(tmp_path / "other")
    argv = [str(model), "--dataset", f"folder:{other}", "--metrics", "fid", "--num-gen", "4"]
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, f"was trained on folder:{folder}")


@pytest.mark.slow  # the Inception network on CPU
def test_folder_model_scored_against_the_whole_folder_into_its_card(capsys, tmp_path):
    folder = make_folder(tmp_path / "imgs")
    model = make_model_dir(tmp_path / "rgb", False, f"folder:{folder}", (16, 16, 3))
    argv = [str(model), "--num-gen", "6", "--write-card", "--no-cache", "--quiet"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    report = last_json(out)
    assert set(report["metrics"]) == {"fid", "kid", "pr"}  # no classifier for a folder
    assert report["num_real"] == 8 and report["reference"]["selection"] == (
        "all 8 images of the folder imgs"
    )
    assert "6 generated images vs 8 images of the training folder" in report["protocol_summary"]
    card = json.loads((model / "card.json").read_text())
    assert card["quality"]["fid"] == report["results"]["fid"] > 0
    assert card["quality"]["measured"]["fid"]["reference"] == "all 8 images of the folder imgs"
    # the floor of a folder: its second half against its first
    argv = ["real", "--dataset", f"folder:{folder}", "--metrics", "fid", "--no-cache", "--quiet"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    floor = last_json(out)
    assert floor["num_gen"] == 4 and floor["num_real"] == 4
    assert "second half" in floor["protocol_summary"] and floor["results"]["fid"] > 0
