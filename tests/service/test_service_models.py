"""Models, health, readiness and metrics; loading checks (sha256, contract) and defaults."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from service_testlib import metric_value

from ganserve.latent import make_latents
from service.app import create_app
from service.config import Settings
from service.registry import load_registry

REPO = Path(__file__).resolve().parents[2]


def test_list_models_reports_cards_provider_and_defaults(
    client: TestClient, models_dir: Path
) -> None:
    r = client.get("/models")
    assert r.status_code == 200
    body = r.json()
    assert body["default_model"] == "dcgan-fashion"
    assert body["default_conditional_model"] == "cgan-fashion"
    by_name = {m["name"]: m for m in body["models"]}
    assert sorted(by_name) == ["cgan-fashion", "dcgan-fashion", "dcgan64-rgb"]
    for name, info in by_name.items():
        card = json.loads((models_dir / name / "card.json").read_text())
        assert info["card"] == card
        assert info["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
        assert info["image_shape"] == card["image_shape"]
        assert info["latent_dim"] == card["latent_dim"]
        assert info["default"] == (name == "dcgan-fashion")
        assert info["default_conditional"] == (name == "cgan-fashion")
    assert by_name["cgan-fashion"]["conditional"] is True
    assert by_name["cgan-fashion"]["num_classes"] == 10
    assert by_name["cgan-fashion"]["class_names"][7] == "Sneaker"
    assert by_name["dcgan64-rgb"]["image_shape"] == [64, 64, 3]


def test_read_model(client: TestClient) -> None:
    r = client.get("/models/cgan-fashion")
    assert r.status_code == 200
    assert r.json()["name"] == "cgan-fashion"
    assert r.json()["card"]["architecture"] == "cgan"
    r = client.get("/models/nope")
    assert r.status_code == 404
    assert "cgan-fashion" in r.json()["detail"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "models": ["cgan-fashion", "dcgan-fashion", "dcgan64-rgb"],
        "refused": {},
    }


def test_not_ready_before_startup_and_after_shutdown(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    client = TestClient(app)  # lifespan not entered: nothing loaded yet
    assert client.get("/healthz").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 503
    assert "loading" in r.json()["detail"]
    assert client.post("/generate", json={"n": 1}).status_code == 503
    with client:
        assert client.get("/readyz").status_code == 200
    assert client.get("/readyz").status_code == 503


def test_empty_models_dir_is_live_but_not_ready(
    make_app: Callable[..., FastAPI], tmp_path: Path
) -> None:
    with TestClient(make_app(models_dir=tmp_path)) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503
        assert "no model could be loaded" in r.json()["detail"]
        r = client.post("/generate", json={"n": 1})
        assert r.status_code == 404
        assert "no model is being served" in r.json()["detail"]
        assert client.get("/models").json()["models"] == []


def damage(models: Path, name: str, how: str) -> None:
    """Break one model directory in one way."""
    card_path = models / name / "card.json"
    card = json.loads(card_path.read_text())
    if how == "bytes":
        onnx = models / name / "model.onnx"
        data = bytearray(onnx.read_bytes())
        data[-1] ^= 0xFF
        onnx.write_bytes(bytes(data))
    elif how == "sha":
        card["sha256"] = "0" * 64
    elif how == "no-card":
        card_path.unlink()
        return
    elif how == "no-onnx":
        (models / name / "model.onnx").unlink()
    elif how == "bad-json":
        card_path.write_text("{not json")
        return
    elif how == "latent-dim":
        card["latent_dim"] = 64
    elif how == "conditional":
        card["conditional"] = not card["conditional"]
    elif how == "shape":
        card["image_shape"] = [32, 32, 1]
    elif how == "name":
        card["name"] = "someone-else"
    card_path.write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("bytes", "sha256 of model.onnx is"),
        ("sha", "the card says 0000"),
        ("no-card", "card.json is missing"),
        ("no-onnx", "model.onnx is missing"),
        ("bad-json", "not readable JSON"),
        ("latent-dim", "input z is"),
        ("conditional", "model inputs are"),
        ("shape", "warm-up gave uint8 [1, 28, 28, 1]"),
        ("name", "card names 'someone-else'"),
    ],
)
def test_bad_model_is_refused_and_the_others_serve(
    models_copy: Path,
    make_app: Callable[..., FastAPI],
    caplog: pytest.LogCaptureFixture,
    how: str,
    reason: str,
) -> None:
    damage(models_copy, "dcgan-fashion", how)
    with caplog.at_level(logging.ERROR, logger="service"):
        app = make_app(models_dir=models_copy)
        with TestClient(app) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["models"] == ["cgan-fashion", "dcgan64-rgb"]
            assert reason in ready.json()["refused"]["dcgan-fashion"]
            refused = client.get("/models/dcgan-fashion")  # there, but refused: 503 and why
            assert refused.status_code == 503
            assert reason in refused.json()["detail"]
            assert reason in client.get("/models").json()["refused"]["dcgan-fashion"]
            r = client.post("/generate", json={"model": "dcgan-fashion", "n": 1})
            assert r.status_code == 503
            assert r.json()["detail"].startswith("model 'dcgan-fashion' is not being served: ")
            assert reason in r.json()["detail"]
            r = client.post("/generate", json={"n": 1})
            assert r.status_code == 200
            assert r.headers["x-model"] == "dcgan64-rgb"  # the default moved on
            assert client.post("/conditional", json={"n": 1}).status_code == 200
    lines = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.ERROR]
    assert any(
        line.startswith("refused model dcgan-fashion: ") and reason in line for line in lines
    )


def test_configured_defaults_are_used(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(default_model="dcgan64-rgb", default_conditional_model="cgan-fashion")
    with TestClient(app) as client:
        body = client.get("/models").json()
        assert body["default_model"] == "dcgan64-rgb"
        assert client.post("/generate", json={"n": 1}).headers["x-model"] == "dcgan64-rgb"


def test_unknown_configured_default_falls_back(
    make_app: Callable[..., FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="service"):
        with TestClient(make_app(default_model="missing")) as client:
            assert client.get("/models").json()["default_model"] == "dcgan-fashion"
    assert any("missing" in rec.getMessage() for rec in caplog.records)


def test_cpu_provider_is_honoured(models_dir: Path) -> None:
    registry = load_registry(Settings(models_dir=models_dir, provider="cpu"))
    assert {m.provider for m in registry.models.values()} == {"CPUExecutionProvider"}
    assert all(not m.io_binding for m in registry.models.values())


def test_metrics_count_requests_batches_and_encoding(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as client:
        client.post("/generate", json={"n": 3, "seed": 1})
        client.get("/generate", params={"n": 2, "seed": 1, "format": "json"})
        client.get("/models/unknown")
        client.post("/generate", json={"n": 0})
        text = client.get("/metrics").text
    assert metric_value(text, "ganserve_requests_total", route="/generate", status="200") == 2
    assert metric_value(text, "ganserve_requests_total", route="/generate", status="422") == 1
    assert metric_value(text, "ganserve_requests_total", route="/models/{name}", status="404") == 1
    assert metric_value(text, "ganserve_session_runs_total", model="dcgan-fashion") == 2
    assert metric_value(text, "ganserve_images_total", model="dcgan-fashion") == 5
    assert metric_value(text, "ganserve_batch_size_sum", model="dcgan-fashion") == 5
    assert metric_value(text, "ganserve_batch_size_count", model="dcgan-fashion") == 2
    assert metric_value(text, "ganserve_queue_seconds_count", model="dcgan-fashion") == 2
    assert metric_value(text, "ganserve_inference_seconds_count", model="dcgan-fashion") == 2
    assert metric_value(text, "ganserve_encode_seconds_count", format="png") == 1
    assert metric_value(text, "ganserve_encode_seconds_count", format="json") == 1
    assert metric_value(text, "ganserve_request_seconds_count", route="/generate") == 3
    assert metric_value(text, "ganserve_ready") == 1
    assert metric_value(text, "ganserve_model_info", model="cgan-fashion") == 1


def test_apps_in_one_process_keep_separate_metrics(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as a, TestClient(make_app()) as b:
        a.post("/generate", json={"n": 1})
        count_a = metric_value(
            a.get("/metrics").text, "ganserve_images_total", model="dcgan-fashion"
        )
        count_b = metric_value(
            b.get("/metrics").text, "ganserve_images_total", model="dcgan-fashion"
        )
        assert (count_a, count_b) == (1, 0)


def test_service_never_imports_torch(models_dir: Path) -> None:
    """Loading, warming up and serving a request happen without torch (or training/export)."""
    code = f"""
import sys
from fastapi.testclient import TestClient
from service.app import create_app
from service.app import create_app
from service.config import Settings
with TestClient(create_app(Settings(models_dir={str(models_dir)!r}))) as client:
    assert client.post("/generate", json={{"n": 2}}).status_code == 200
    assert client.post("/conditional", json={{"n": 1}}).status_code == 200
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "training", "export"))
print(loaded)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_cors_is_off_unless_origins_are_configured(make_app: Callable[..., FastAPI]) -> None:
    origin = {"Origin": "https://gallery.example"}
    with TestClient(make_app()) as client:
        r = client.get("/generate", params={"n": 1}, headers=origin)
        assert "access-control-allow-origin" not in r.headers
    with TestClient(make_app(cors_origins=["https://gallery.example"])) as client:
        r = client.get("/generate", params={"n": 1}, headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://gallery.example"
        assert "X-Seed" in r.headers["access-control-expose-headers"]
        preflight = client.options(
            "/generate",
            headers=origin | {"Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200


def test_io_binding_path_gives_the_same_images(models_dir: Path) -> None:
    """The explicit IO binding used on CUDA, exercised here on the CPU provider."""
    registry = load_registry(Settings(models_dir=models_dir, provider="cpu"))
    for model in registry.models.values():
        bound = dataclasses.replace(model, io_binding=True)
        z = make_latents(3, 5, model.latent_dim)
        labels = np.arange(5) % model.num_classes if model.conditional else None
        assert np.array_equal(bound.run(z, labels), model.run(z, labels))


def _set_fid(models: Path, name: str, fid: float) -> None:
    card_path = models / name / "card.json"
    card = json.loads(card_path.read_text())
    card["quality"] = {"fid": fid}
    card["name"] = name
    card_path.write_text(json.dumps(card))


def test_default_model_is_the_lowest_fid_of_the_default_dataset(models_copy: Path) -> None:
    # dcgan64-rgb's FID is lower but of another data set: FIDs do not compare across them.
    _set_fid(models_copy, "dcgan-fashion", 30.0)
    _set_fid(models_copy, "dcgan64-rgb", 3.0)
    with TestClient(create_app(Settings(models_dir=models_copy))) as client:
        assert client.get("/models").json()["default_model"] == "dcgan-fashion"
    with TestClient(
        create_app(Settings(models_dir=models_copy, default_dataset="tiny-rgb64"))
    ) as client:
        assert client.get("/models").json()["default_model"] == "dcgan64-rgb"


def test_a_measured_fid_beats_an_unmeasured_model(models_copy: Path) -> None:
    # "zz-..." sorts last by name, so only its FID can make it the default.
    shutil.copytree(models_copy / "dcgan-fashion", models_copy / "zz-dcgan-fashion")
    _set_fid(models_copy, "zz-dcgan-fashion", 12.0)
    with TestClient(create_app(Settings(models_dir=models_copy))) as client:
        assert client.get("/models").json()["default_model"] == "zz-dcgan-fashion"
