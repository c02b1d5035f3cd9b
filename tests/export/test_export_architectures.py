"""Every registered architecture exports to the model contract and matches PyTorch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from export_testlib import checkpoint_payload

from export import SPECS, export_checkpoint, read_metadata, sha256_file, verify_model_dir
from export.graph import FLOAT_OUTPUT, ImageGenerator, export_parity_graph
from ganserve.latent import make_latents
from training.checkpoint import load_generator, save_checkpoint
from training.networks import ARCHITECTURES

ARCHS = sorted(ARCHITECTURES)


@dataclass
class Exported:
    """One architecture exported once: its checkpoint, model directory, G and ORT session."""

    arch: str
    ckpt: Path
    model_dir: Path
    generator: torch.nn.Module
    session: ort.InferenceSession

    def feeds(self, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        feeds = {"z": make_latents(seed, n, self.generator.latent_dim)}
        if ARCHITECTURES[self.arch].conditional:
            feeds["label"] = (np.arange(n) % self.generator.num_classes).astype(np.int64)
        return feeds

    def torch_images(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """PyTorch: (tanh output NCHW, uint8 NHWC quantised independently in NumPy)."""
        args = [torch.from_numpy(feeds["z"])]
        if "label" in feeds:
            args.append(torch.from_numpy(feeds["label"]))
        with torch.no_grad():
            x = self.generator(*args).numpy()
        images = np.clip(np.round((x.astype(np.float64) + 1.0) * 127.5), 0, 255)
        return x, images.astype(np.uint8).transpose(0, 2, 3, 1)


@pytest.fixture(scope="module", params=ARCHS)
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """One architecture, exported once from a seeded untrained checkpoint."""
    arch = request.param
    root = tmp_path_factory.mktemp(f"export-{arch}")
    ckpt = save_checkpoint(root / "ckpt.pt", checkpoint_payload(arch, seed=7))
    model_dir = export_checkpoint(ckpt, f"{arch}-test", root / "models")
    g, _ = load_generator(ckpt)
    return Exported(arch, ckpt, model_dir, g, cpu_session(model_dir / "model.onnx"))


def cpu_session(path: Path) -> ort.InferenceSession:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    return sess


def test_every_architecture_has_an_export_spec() -> None:
    assert set(SPECS) == set(ARCHITECTURES), "each registered architecture needs an ExportSpec"
    for arch, spec in SPECS.items():
        assert spec.arch == arch
        assert spec.opset >= 17
        assert spec.conditional == ARCHITECTURES[arch].conditional
        assert spec.input_names == (("z", "label") if spec.conditional else ("z",))


def test_graph_follows_the_model_contract(exported: Exported) -> None:
    model = onnx.load(str(exported.model_dir / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17

    card = json.loads((exported.model_dir / "card.json").read_text())
    c, h, w = ARCHITECTURES[exported.arch].image_shape
    assert card["image_shape"] == [h, w, c]

    inputs = {i.name: i for i in exported.session.get_inputs()}
    expected = ["z", "label"] if ARCHITECTURES[exported.arch].conditional else ["z"]
    assert list(inputs) == expected
    assert inputs["z"].type == "tensor(float)"
    assert inputs["z"].shape == ["batch", card["latent_dim"]]
    if "label" in inputs:
        assert inputs["label"].type == "tensor(int64)"
        assert inputs["label"].shape == ["batch"]
    [out] = exported.session.get_outputs()
    assert out.name == "image"
    assert out.type == "tensor(uint8)"
    assert out.shape == ["batch", h, w, c]


def test_graph_has_no_training_nodes(exported: Exported) -> None:
    model = onnx.load(str(exported.model_dir / "model.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"Dropout", "RandomNormal", "RandomNormalLike", "RandomUniform"}
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            attrs = {a.name: a.i for a in node.attribute}
            assert attrs.get("training_mode", 0) == 0
            assert len(node.output) == 1  # no running-mean/var outputs


@pytest.mark.parametrize("batch", [1, 64])
def test_images_match_pytorch(exported: Exported, batch: int) -> None:
    feeds = exported.feeds(batch)
    _, expected = exported.torch_images(feeds)
    [images] = exported.session.run(["image"], feeds)
    assert images.dtype == np.uint8
    assert images.shape == expected.shape
    assert np.abs(images.astype(int) - expected.astype(int)).max() <= 1
    assert np.mean(images != expected) < 0.01  # off-by-one only at rounding ties


def test_float_output_matches_pytorch(exported: Exported) -> None:
    g, spec = exported.generator, SPECS[exported.arch]
    num_classes = g.num_classes if spec.conditional else None
    graph = export_parity_graph(
        ImageGenerator(g, spec.conditional), spec, g.latent_dim, num_classes
    )
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 64):
        feeds = exported.feeds(batch)
        expected, _ = exported.torch_images(feeds)
        [got] = sess.run([FLOAT_OUTPUT], feeds)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-4


def test_card_records_parity_within_tolerance(exported: Exported) -> None:
    parity = json.loads((exported.model_dir / "card.json").read_text())["parity"]
    assert parity["batch_sizes"] == [1, 64]
    assert parity["precision"] == "float32"
    assert 0 <= parity["float_max_abs_diff"] <= SPECS[exported.arch].float_atol == 1e-4
    assert 0 <= parity["uint8_max_abs_diff"] <= SPECS[exported.arch].uint8_atol == 1
    c, h, w = ARCHITECTURES[exported.arch].image_shape
    assert parity["uint8_values_compared"] == (1 + 64) * h * w * c
    assert 0 <= parity["uint8_values_differing"] <= parity["uint8_values_compared"] // 100


def test_batch_is_dynamic(exported: Exported) -> None:
    outputs = {}
    for n in (3, 17):
        feeds = exported.feeds(n, seed=5)
        [outputs[n]] = exported.session.run(["image"], feeds)
        _, expected = exported.torch_images(feeds)
        assert outputs[n].shape[0] == n
        assert np.abs(outputs[n].astype(int) - expected.astype(int)).max() <= 1
    # row i does not depend on the batch size: the latent contract carries through
    np.testing.assert_array_equal(outputs[3], outputs[17][:3])


def test_card_and_metadata(exported: Exported) -> None:
    arch, model_dir = exported.arch, exported.model_dir
    card = verify_model_dir(model_dir)
    assert card["sha256"] == sha256_file(model_dir / "model.onnx")
    payload = checkpoint_payload(arch)
    assert card["name"] == f"{arch}-test"
    assert card["architecture"] == arch
    assert card["conditional"] == ARCHITECTURES[arch].conditional
    assert card["loss"] == "bce"
    assert card["dataset"] == payload["dataset"]["name"]
    assert card["class_names"] == payload["dataset"]["class_names"]
    assert card["latent_dim"] == exported.generator.latent_dim
    assert card["epochs"] == 3
    assert card["options"] == payload["options"]
    assert card["quality"] is None
    assert card["git_commit"] is None or len(card["git_commit"]) == 40
    meta = read_metadata(model_dir / "model.onnx")
    assert "sha256" not in meta
    assert meta == {k: v for k, v in card.items() if k != "sha256"}
    # the runtime sees the same facts
    custom = exported.session.get_modelmeta().custom_metadata_map
    assert json.loads(custom["architecture"]) == arch
