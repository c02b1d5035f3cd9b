"""What export writes: cards that detect tampering, --force, Triton layout, fp16, refusals."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import export_testlib
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from export_testlib import checkpoint_payload
from torch import nn

from export import (
    SPECS,
    ExportError,
    export_checkpoint,
    read_metadata,
    update_quality,
    verify_model_dir,
)
from ganserve.latent import make_latents
from training.checkpoint import load_generator, save_checkpoint
from training.networks import ARCHITECTURES


def run_images(model_file: Path, z: np.ndarray, label: np.ndarray | None = None) -> np.ndarray:
    sess = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    feeds = {"z": z} if label is None else {"z": z, "label": label}
    return sess.run(["image"], feeds)[0]


def torch_uint8(g: nn.Module, z: np.ndarray, label: np.ndarray | None = None) -> np.ndarray:
    args = [torch.from_numpy(z)] + ([] if label is None else [torch.from_numpy(label)])
    with torch.no_grad():
        x = g(*args).numpy().astype(np.float64)
    return np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def assert_refused(model_dir: Path, match: str) -> None:
    """``verify_model_dir`` refuses ``model_dir`` with a message matching ``match``."""
    with pytest.raises(ExportError, match=match):
        verify_model_dir(model_dir)


def listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# --------------------------------------------------------------------------- cards
def test_tampered_model_is_detected(make_checkpoint: Callable[..., Path], tmp_path: Path) -> None:
    model_dir = export_checkpoint(make_checkpoint("mlp-small"), "m", tmp_path / "models")
    card = verify_model_dir(model_dir)
    model = model_dir / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit inside the weights
    model.write_bytes(bytes(data))
    assert_refused(model_dir, "does not match its card")
    card["sha256"] = "0" * 64
    model.write_bytes(bytes(data))
    (model_dir / "card.json").write_text(json.dumps(card))
    assert_refused(model_dir, "does not match its card")


def test_verify_rejects_missing_or_broken_cards(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    model_dir = export_checkpoint(make_checkpoint("mlp-small"), "m", tmp_path / "models")
    (model_dir / "card.json").write_text("{not json")
    assert_refused(model_dir, "not valid JSON")
    (model_dir / "card.json").write_text(json.dumps({"name": "m"}))
    assert_refused(model_dir, "not a ganserve model card")
    (model_dir / "card.json").unlink()
    assert_refused(model_dir, "has no card.json")


def test_update_quality_rewrites_card_metadata_and_hash(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    model_dir = export_checkpoint(make_checkpoint("mlp-small"), "m", tmp_path / "models")
    before = verify_model_dir(model_dir)
    quality = {"fid": 31.4, "images": 10000, "reference": "fashion-mnist test", "features": "x"}
    after = update_quality(model_dir, quality)
    assert verify_model_dir(model_dir) == after
    assert after["quality"] == quality
    assert after["sha256"] != before["sha256"]
    assert read_metadata(model_dir / "model.onnx")["quality"] == quality


def test_quality_and_training_provenance_reach_the_card(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    stats = {
        "command": "python -m training.train --arch mlp-small --epochs 3",
        "images_per_second": 5123.0,
        "train_seconds": 812.5,
        "device": "cuda:0 (H100)",
    }
    quality = {"fid": 25.0}
    ckpt = make_checkpoint("mlp-small", stats=stats)
    card = verify_model_dir(export_checkpoint(ckpt, "m", tmp_path / "m", quality=quality))
    assert card["training"] == stats
    assert card["quality"] == quality
    assert card["step"] == 1407


def test_options_that_are_not_json_are_written_as_text(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    options = {"out": tmp_path / "runs", "betas": (0.5, 0.999), "lr": 2e-4}
    ckpt = make_checkpoint("mlp-small", options=options)
    card = verify_model_dir(export_checkpoint(ckpt, "m", tmp_path / "models"))
    assert card["options"] == {"out": str(tmp_path / "runs"), "betas": [0.5, 0.999], "lr": 2e-4}


def test_ema_weights_are_exported_when_present(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    ema = checkpoint_payload("mlp-small", seed=99)["G"]
    ckpt = make_checkpoint("mlp-small", G_ema=ema)
    model_dir = export_checkpoint(ckpt, "m", tmp_path / "models")
    z = make_latents(3, 8, 100)
    g_ema, _ = load_generator(checkpoint_payload("mlp-small", seed=99))
    g_raw, _ = load_generator(checkpoint_payload("mlp-small", seed=0))
    images = run_images(model_dir / "model.onnx", z)
    assert np.abs(images.astype(int) - torch_uint8(g_ema, z).astype(int)).max() <= 1
    assert np.abs(images.astype(int) - torch_uint8(g_raw, z).astype(int)).max() > 1


# --------------------------------------------------------------------------- output directory
def test_existing_output_needs_force(make_checkpoint: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "models"
    first = export_checkpoint(make_checkpoint("mlp-small", seed=1), "m", out)
    (first / "notes.txt").write_text("kept unless --force")
    sha = verify_model_dir(first)["sha256"]
    second = make_checkpoint("mlp-small", seed=2)
    with pytest.raises(ExportError, match="already exists; pass --force"):
        export_checkpoint(second, "m", out)
    assert verify_model_dir(first)["sha256"] == sha
    assert (first / "notes.txt").exists()

    replaced = export_checkpoint(second, "m", out, force=True)
    assert replaced == first
    assert verify_model_dir(replaced)["sha256"] != sha
    assert listing(out) == ["m", "m/card.json", "m/model.onnx"]  # old files and temps gone


def test_invalid_names_are_refused(make_checkpoint: Callable[..., Path], tmp_path: Path) -> None:
    ckpt = make_checkpoint("mlp-small")
    for name in ("", "../escape", "Upper", "a/b", ".hidden", "x" * 65):
        with pytest.raises(ExportError, match="invalid model name"):
            export_checkpoint(ckpt, name, tmp_path / "models")
    assert not (tmp_path / "models").exists()


def test_unknown_format_is_refused(make_checkpoint: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown format 'tensorrt'"):
        export_checkpoint(make_checkpoint("mlp-small"), "m", tmp_path, fmt="tensorrt")


# --------------------------------------------------------------------------- triton
@pytest.mark.parametrize("arch", ["dcgan", "cgan"])
def test_triton_repository_layout(
    arch: str, make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    repo = tmp_path / "triton"
    model_dir = export_checkpoint(make_checkpoint(arch), f"{arch}-t", repo, fmt="triton")
    assert listing(model_dir) == ["1", "1/model.onnx", "card.json", "config.pbtxt"]
    card = verify_model_dir(model_dir)
    assert card["model_file"] == "1/model.onnx"

    config = (model_dir / "config.pbtxt").read_text()
    assert f'name: "{arch}-t"' in config  # Triton requires the directory name
    assert 'backend: "onnxruntime"' in config
    assert "max_batch_size: 512" in config
    assert "dynamic_batching {" in config
    assert 'name: "z" data_type: TYPE_FP32 dims: [ 100 ]' in config
    assert 'name: "image" data_type: TYPE_UINT8 dims: [ 28, 28, 1 ]' in config
    has_label = 'name: "label" data_type: TYPE_INT64 dims: [ 1 ] reshape: { shape: [ ] }'
    assert (has_label in config) == ARCHITECTURES[arch].conditional
    assert config.count("{") == config.count("}") and config.count("[") == config.count("]")

    z = make_latents(0, 4, 100)
    label = np.arange(4, dtype=np.int64) if ARCHITECTURES[arch].conditional else None
    assert run_images(model_dir / "1" / "model.onnx", z, label).shape == (4, 28, 28, 1)


# --------------------------------------------------------------------------- fp16
@pytest.mark.parametrize("arch", ["dcgan", "cgan"])
def test_fp16_variant_keeps_io_types_and_parity(
    arch: str, make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    ckpt = make_checkpoint(arch)
    model_dir = export_checkpoint(ckpt, "half", tmp_path / "models", fp16=True)
    card = verify_model_dir(model_dir)
    assert card["precision"] == "float16"
    assert card["parity"]["precision"] == "float16"
    assert card["parity"]["float_max_abs_diff"] <= SPECS[arch].fp16_float_atol
    assert card["parity"]["uint8_max_abs_diff"] <= SPECS[arch].fp16_uint8_atol

    model = onnx.load(str(model_dir / "model.onnx"))
    weights = [t for t in model.graph.initializer if t.dims and np.prod(t.dims) > 1000]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].type == "tensor(float)"
    assert sess.get_outputs()[0].type == "tensor(uint8)"

    z = make_latents(11, 16, 100)
    label = (np.arange(16) % 10).astype(np.int64) if ARCHITECTURES[arch].conditional else None
    g, _ = load_generator(ckpt)
    diff = np.abs(
        run_images(model_dir / "model.onnx", z, label).astype(int) - torch_uint8(g, z, label)
    )
    assert diff.max() <= SPECS[arch].fp16_uint8_atol


# --------------------------------------------------------------------------- parity failure
@pytest.fixture
def batch_branch_arch() -> Iterator[str]:
    """``batch-branch`` registered (with its export spec) for one test."""
    name = export_testlib.register_batch_branch()
    yield name
    ARCHITECTURES.pop(name, None)
    SPECS.pop(name, None)


def test_parity_failure_writes_nothing(batch_branch_arch: str, tmp_path: Path) -> None:
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", export_testlib.batch_branch_payload())
    out = tmp_path / "models"
    out.mkdir()
    with pytest.raises(ExportError) as info:
        export_checkpoint(ckpt, "bb", out)
    message = str(info.value)
    first, *table = message.splitlines()
    assert first.startswith("parity failed for batch-branch (float32, seed 0): 2 of 4 checks")
    assert "max|diff|" in table[0] and "worst at" in table[0]
    failing = [row.split() for row in table[1:] if row.endswith("FAIL")]
    assert {(row[0], row[1]) for row in failing} == {("float", "1"), ("uint8", "1")}
    assert all(row.endswith("ok") for row in table[1:] if " 64 " in row)
    assert listing(out) == []  # not even a temporary directory is left
