"""The generators under models/: what `make serve` serves out of the box.

Every shipped model must match its card, load in the service, and draw images;
the conditional ones must draw the class they are asked for.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from export.card import verify_model_dir
from ganserve.latent import make_latents
from service.app import create_app
from service.config import Settings
from training.metrics.classifier import load_classifier

MODELS = Path(__file__).resolve().parent.parent / "models"
SHIPPED = sorted(p.name for p in MODELS.iterdir() if (p / "card.json").is_file())
SIZE_LIMIT = 72 * 1024 * 1024  # a budget on what a clone and the serving image carry


def card_of(name: str) -> dict[str, Any]:
    return verify_model_dir(MODELS / name)  # raises when model.onnx is not the card's


def test_the_shipped_set_covers_both_data_sets_and_the_defaults() -> None:
    cards = [card_of(name) for name in SHIPPED]
    kinds = {(c["dataset"], c["conditional"]) for c in cards}
    for dataset in ("fashion-mnist", "mnist"):
        assert (dataset, False) in kinds, f"no unconditional {dataset} model"
        assert (dataset, True) in kinds, f"no conditional {dataset} model"
    size = sum(f.stat().st_size for f in MODELS.rglob("*") if f.is_file())
    assert size < SIZE_LIMIT, f"models/ is {size / 2**20:.1f} MiB"


@pytest.mark.parametrize("name", SHIPPED)
def test_card_matches_the_model_and_says_how_it_was_trained(name: str) -> None:
    card = card_of(name)
    assert card["name"] == name
    training = card["training"]
    assert training["command"].startswith("python -m training.train ")
    assert training["device"] in ("cpu", "cuda") and training["train_seconds"] > 0
    assert card["epochs"] >= 1 and card["step"] > 0


@pytest.fixture(scope="module")
def client() -> Any:
    with TestClient(create_app(Settings(models_dir=MODELS))) as c:
        yield c


def test_the_service_serves_every_shipped_model(client: TestClient) -> None:
    body = client.get("/models").json()
    assert sorted(m["name"] for m in body["models"]) == SHIPPED
    assert client.get("/readyz").status_code == 200
    # The defaults are Fashion-MNIST models (the service's default data set).
    assert card_of(body["default_model"])["dataset"] == "fashion-mnist"
    assert card_of(body["default_conditional_model"])["conditional"]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_draws_distinct_images(client: TestClient, name: str) -> None:
    r = client.get("/generate", params={"model": name, "n": 8, "seed": 3, "columns": 8})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    grid = np.asarray(Image.open(io.BytesIO(r.content)))
    h, w = card_of(name)["image_shape"][:2]
    cells = [grid[2 : 2 + h, 2 + i * (w + 2) : 2 + i * (w + 2) + w] for i in range(8)]
    assert all(c.shape[:2] == (h, w) for c in cells)
    assert all(c.std() > 10 for c in cells), "a blank or flat image"
    assert (
        min(np.abs(a.astype(int) - b).mean() for a, b in zip(cells[:-1], cells[1:], strict=True))
        > 2
    )


CONDITIONAL = [n for n in SHIPPED if card_of(n)["conditional"]]


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_models_draw_the_class_asked_for(name: str) -> None:
    """The committed domain classifier recognises most images as their asked-for class."""
    card = card_of(name)
    session = ort.InferenceSession(str(MODELS / name / "model.onnx"))
    n = 200
    labels = np.arange(n, dtype=np.int64) % card["num_classes"]
    z = make_latents(11, n, card["latent_dim"])
    feeds = {i.name: (z if i.name == "z" else labels) for i in session.get_inputs()}
    images = session.run(None, feeds)[0]
    predicted = load_classifier(card["dataset"]).predict(images)
    accuracy = float((predicted == labels).mean())
    assert accuracy > 0.6, f"{name}: {accuracy:.0%} of images are the class asked for"
