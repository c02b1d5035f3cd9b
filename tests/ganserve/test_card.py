"""The model card: every stage's one typed view of card.json, and the one ranking rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ganserve.card import (
    CARD_FORMAT,
    CardError,
    CardMissing,
    CardNotJSON,
    ModelCard,
    Quality,
    default_model,
    ranking_key,
)

MODELS = Path(__file__).resolve().parents[2] / "models"
SHIPPED = sorted(p.parent for p in MODELS.glob("*/card.json"))


def write(directory: Path, data: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else json.dumps(data)
    (directory / "card.json").write_text(text)
    return directory


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: p.name)
def test_shipped_cards_load_and_write_back_the_same_object(model_dir: Path) -> None:
    raw = json.loads((model_dir / "card.json").read_text())
    card = ModelCard.load(model_dir)
    assert card.name == model_dir.name and card.format == CARD_FORMAT
    assert card.image_shape == tuple(raw["image_shape"])
    assert card.fid == raw["quality"]["fid"]
    assert card.training is not None and card.training.command == raw["training"]["command"]
    assert card.to_dict() == raw
    assert card.model_path() == model_dir / "model.onnx"


def test_a_card_from_an_older_export_loads_and_is_saved_in_the_current_layout(
    tmp_path: Path,
) -> None:
    old = {
        "name": "old",
        "conditional": False,
        "dataset": {"name": "mnist", "num_classes": 10},  # the checkpoint's object, as once
        "latent_dim": 64,
        "image_shape": [28, 28, 1],
        "training": {"device": "cpu", "images_per_second": 90.5, "train_seconds": 60},
        "quality": None,
        "sha256": "ab" * 32,
        "notes": "a field this version does not know",
    }
    card = ModelCard.load(write(tmp_path / "old", old))
    assert card.format is None and card.dataset == "mnist" and card.quality is None
    assert card.training is not None and card.training.command is None
    assert card.architecture is None and card.fid is None
    card.quality = Quality({"fid": 12.5})
    saved = json.loads(card.save().read_text())
    assert list(saved) == [*list(ModelCard(name="x").to_dict())[:-1], "notes", "sha256"]
    assert saved["quality"] == {"fid": 12.5} and saved["notes"] == old["notes"]
    assert saved["dataset"] == "mnist" and saved["architecture"] is None
    assert ModelCard.load(tmp_path / "old") == card
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["card.json"]  # no temp left


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ("{not json", CardNotJSON, "is not valid JSON"),
        ("[1, 2]", CardError, "does not hold a JSON object"),
        ({"latent_dim": 8}, CardError, "lacks name"),
        ({"name": "m", "format": "ganserve-card/2"}, CardError, "has format 'ganserve-card/2'"),
        ({"name": "m", "latent_dim": "100"}, CardError, "malformed latent_dim: expected an int"),
        ({"name": "m", "conditional": "yes"}, CardError, "malformed conditional"),
        ({"name": "m", "image_shape": [28, 28]}, CardError, "malformed image_shape"),
        ({"name": "m", "class_names": ["a", 1]}, CardError, "malformed class_names"),
        ({"name": "m", "quality": {"fid": "low"}}, CardError, "malformed quality.fid"),
        ({"name": "m", "training": {"command": 3}}, CardError, "malformed training.command"),
    ],
)
def test_a_card_that_cannot_be_read_names_its_file(
    tmp_path: Path, content: Any, error: type[CardError], message: str
) -> None:
    model_dir = write(tmp_path / "m", content)
    with pytest.raises(error, match=message) as info:
        ModelCard.load(model_dir)
    assert str(info.value).startswith(str(model_dir / "card.json"))


def test_a_missing_card_is_a_card_error_and_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CardMissing, match="card.json is missing"):
        ModelCard.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        ModelCard.load(tmp_path / "elsewhere.json")


def test_require_names_every_missing_field(tmp_path: Path) -> None:
    card = ModelCard.load(write(tmp_path / "m", {"name": "m", "latent_dim": 8}))
    card.require("name", "latent_dim")
    with pytest.raises(CardError, match="lacks image_shape, sha256"):
        card.require("latent_dim", "image_shape", "sha256")


def test_quality_update_sets_figures_and_keeps_other_keys() -> None:
    quality = Quality.from_dict({"note": "kept", "measured": {"fid": {"command": "c"}}})
    quality.update({"fid": 20.0, "kid": 0.01, "new_metric": 3.0})
    assert quality.fid == 20.0 and quality.figures == {"fid": 20.0, "kid": 0.01}
    assert quality.to_dict() == {
        "fid": 20.0,
        "kid": 0.01,
        "note": "kept",
        "new_metric": 3.0,
        "measured": {"fid": {"command": "c"}},
    }


def card(name: str, dataset: str, fid: float | None, conditional: bool = False) -> ModelCard:
    quality = None if fid is None else Quality({"fid": fid})
    return ModelCard(name=name, dataset=dataset, conditional=conditional, quality=quality)


def test_the_best_model_is_the_lowest_fid_of_the_data_set_then_the_name() -> None:
    cards = [
        card("mnist-best", "mnist", 2.0),  # lower, but MNIST FIDs do not compare
        card("b-fashion", "fashion-mnist", 30.0),
        card("a-fashion", "fashion-mnist", 30.0),  # a tie goes to the name
        card("unmeasured", "fashion-mnist", None),
        card("not-finite", "fashion-mnist", float("nan")),
        card("cond", "fashion-mnist", 10.0, conditional=True),
    ]
    assert [c.name for c in sorted(cards, key=ranking_key)] == [
        "cond",
        "a-fashion",
        "b-fashion",
        "not-finite",
        "unmeasured",
        "mnist-best",
    ]
    assert default_model(cards, conditional=False).name == "a-fashion"  # type: ignore[union-attr]
    assert default_model(cards, conditional=True).name == "cond"  # type: ignore[union-attr]
    mnist = default_model(cards, conditional=False, dataset="mnist")
    assert mnist is not None and mnist.name == "mnist-best"


def test_without_an_unconditional_model_a_conditional_one_is_the_default() -> None:
    only = [card("cond", "fashion-mnist", 10.0, conditional=True)]
    assert default_model(only, conditional=False) == only[0]
    assert default_model([], conditional=True) is None


def test_the_card_module_needs_no_numpy() -> None:
    code = "import sys, ganserve.card; assert 'numpy' not in sys.modules, 'numpy imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=MODELS.parent)
