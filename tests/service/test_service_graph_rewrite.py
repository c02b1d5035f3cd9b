"""The load-time graph rewrite: a 1x1-input ConvTranspose served as a Gemm, same images."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from onnx import numpy_helper
from PIL import Image

from ganserve.latent import make_latents
from service import graph_rewrite
from service.app import create_app
from service.config import Settings
from service.registry import load_model, probe_feeds


def session(model_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


def ops(model_bytes: bytes) -> list[str]:
    return [n.op_type for n in onnx.load_from_string(model_bytes).graph.node]


def test_dcgan_first_layer_becomes_a_gemm_with_its_batchnorm_folded(models_dir: Path) -> None:
    original = (models_dir / "dcgan-fashion" / "model.onnx").read_bytes()
    result = graph_rewrite.rewrite(original, probe_feeds(100, 0, 4))

    assert result.applied == (graph_rewrite.CONVT_1X1,)
    before, after = ops(original), ops(result.model_bytes)
    assert after.count("Gemm") == before.count("Gemm") + 1
    assert after.count("ConvTranspose") == before.count("ConvTranspose") - 1
    assert after.count("BatchNormalization") == before.count("BatchNormalization") - 1
    # other latents than the probe's, a batch size the probe never ran
    z = make_latents(11, 37, 100)
    want = session(original).run(["image"], {"z": z})[0]
    got = session(result.model_bytes).run(["image"], {"z": z})[0]
    assert graph_rewrite.check(want, got) is None
    assert np.abs(want.astype(int) - got.astype(int)).max() <= 1


def test_a_graph_without_a_1x1_convtranspose_is_left_as_it_is(models_dir: Path) -> None:
    original = (models_dir / "cgan-fashion" / "model.onnx").read_bytes()
    result = graph_rewrite.rewrite(original, probe_feeds(100, 10, 4))
    assert result.applied == ()
    assert result.model_bytes == original


def test_the_check_refuses_images_that_differ() -> None:
    images = np.full((4, 28, 28, 1), 100, np.uint8)
    assert graph_rewrite.check(images, images.copy()) is None
    one_level = images.copy()
    one_level[0, 0, 0, 0] += 1
    assert graph_rewrite.check(images, one_level) is None
    two_levels = images.copy()
    two_levels[0, 0, 0, 0] += 2
    assert "2 grey levels" in str(graph_rewrite.check(images, two_levels))
    many = images + 1  # every value one level off: not a rounding accident
    assert "100.00% of values" in str(graph_rewrite.check(images, many))
    assert "not" in str(graph_rewrite.check(images, images[:2]))


def test_the_served_model_lists_its_rewrite_and_answers_as_the_file_does(
    models_dir: Path,
) -> None:
    body = {"model": "dcgan-fashion", "n": 64, "seed": 3, "padding": 0}
    grids = {}
    for rewrite in (True, False):
        settings = Settings(models_dir=models_dir, graph_rewrite=rewrite)
        with TestClient(create_app(settings)) as client:
            info = client.get("/models/dcgan-fashion").json()
            assert info["graph_rewrites"] == (["convtranspose-1x1-gemm"] if rewrite else [])
            assert client.get("/models/cgan-fashion").json()["graph_rewrites"] == []
            response = client.post("/generate", json=body)
            assert response.status_code == 200
            grids[rewrite] = np.asarray(Image.open(io.BytesIO(response.content)))
    assert grids[True].shape == grids[False].shape
    assert graph_rewrite.check(grids[False], grids[True]) is None


def test_a_rewrite_that_changes_the_images_is_not_served(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_rewrite = graph_rewrite.rewrite

    def wrong_weights(model_bytes: bytes, feeds: dict) -> graph_rewrite.Rewritten:
        result = real_rewrite(model_bytes, feeds)
        model = onnx.load_from_string(result.model_bytes)
        for tensor in model.graph.initializer:
            if tensor.name.endswith("_weight"):
                tensor.CopyFrom(
                    numpy_helper.from_array(numpy_helper.to_array(tensor) * 3, tensor.name)
                )
        return graph_rewrite.Rewritten(model.SerializeToString(), result.applied)

    monkeypatch.setattr(graph_rewrite, "rewrite", wrong_weights)
    with caplog.at_level(logging.WARNING, logger="service.registry"):
        model = load_model(models_dir / "dcgan-fashion", Settings(models_dir=models_dir))
    assert model.graph_rewrites == ()
    assert "serving its graph as is" in caplog.text and "grey levels" in caplog.text
    z = make_latents(0, 8, 100)
    file_session = session((models_dir / "dcgan-fashion" / "model.onnx").read_bytes())
    np.testing.assert_array_equal(model.run(z), file_session.run(["image"], {"z": z})[0])
