"""bench.session_profile: a model's session time per operator, file graph beside served graph."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import build_tiny_models

from bench.session_profile import main


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_models(tmp_path_factory.mktemp("models"))


def test_a_dcgan_is_profiled_as_its_file_and_as_served(models: Path, capsys) -> None:
    assert main([str(models / "dcgan-fashion"), "--batch", "8", "--runs", "3"]) == 0
    out = capsys.readouterr().out
    file_part, served_part = out.split("served (convtranspose-1x1-gemm):")
    assert "ConvTranspose" in file_part and "ms CPU per run" in file_part
    assert "Gemm" in served_part
    assert "file / served CPU per run:" in served_part


def test_a_graph_no_rewrite_applies_to_is_profiled_once(models: Path, capsys) -> None:
    assert main([str(models / "cgan-fashion"), "--batch", "4", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "served (" not in out
    assert "no rewrite applies to this graph" in out


def test_a_missing_model_is_one_line(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
