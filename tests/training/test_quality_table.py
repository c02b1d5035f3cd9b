"""The quality table of docs/models.md is built from the cards and the floor reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.quality_table import main, render, render_training


def _card(root: Path, name: str, dataset: str, conditional: bool, quality: Any) -> None:
    (root / name).mkdir(parents=True)
    card = {"name": name, "dataset": dataset, "conditional": conditional, "epochs": 3}
    card["quality"] = quality
    (root / name / "card.json").write_text(json.dumps(card))


def _measured(fid: float, **more: float) -> dict[str, Any]:
    cmd = "python -m training.evaluate models/x --write-card"
    return {"fid": fid, **more, "measured": {"fid": {"command": cmd}}}


def test_rows_are_sorted_by_fid_and_unmeasured_figures_are_dashes(tmp_path: Path) -> None:
    models, floors = tmp_path / "models", tmp_path / "floors"
    _card(models, "worse", "fashion-mnist", False, _measured(30.5, kid=0.0123))
    _card(models, "better", "fashion-mnist", False, _measured(8.25))
    _card(models, "cond", "fashion-mnist", True, _measured(9.0, conditional_accuracy=0.9))
    _card(models, "digits", "mnist", False, None)
    floors.mkdir()
    floor = {"results": {"fid": 1.234, "conditional_accuracy": 0.931}, "num_gen": 10000}
    floor["command"] = "python -m training.evaluate real --dataset fashion-mnist"
    (floors / "real-fashion-mnist.json").write_text(json.dumps(floor))

    text = render(models, floors)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    table = [r.split(" | ")[0] for r in rows if "Fashion-MNIST |" in r and "best" not in r]
    assert table == ["| real test vs train (the floor)", "| `better`", "| `cond`", "| `worse`"]
    assert "| `worse` | Fashion-MNIST | 3 | 30.50 | 12.30 |" in text  # KID shown x 10^3
    assert "| `digits` | MNIST | 3 | – | – | – | – | – | – |" in text
    assert "| real test vs train (the floor) | Fashion-MNIST | | 1.23 |" in text
    # Goals: FID 8.25 <= 10 is met; the conditional model misses the accuracy goal.
    assert "`better`: FID 8.25 | yes |" in text
    assert "`cond`: FID 9.00, accuracy 90.0% | **no** |" in text
    assert "| best unconditional MNIST | FID <= 5 | not measured | – |" in text
    assert "real --dataset fashion-mnist" in text


def test_the_conditional_goal_names_the_lowest_fid_that_meets_the_accuracy_goal(tmp_path):
    models = tmp_path / "models"
    _card(models, "low", "fashion-mnist", True, _measured(9.0, conditional_accuracy=0.9))
    _card(models, "true", "fashion-mnist", True, _measured(9.5, conditional_accuracy=0.97))
    _card(models, "true-worse", "fashion-mnist", True, _measured(12.0, conditional_accuracy=0.99))
    text = render(models, tmp_path)
    got = "`low`: FID 9.00, accuracy 90.0%; over 95% accuracy: `true`: FID 9.50, accuracy 97.0%"
    assert f"| {got} | yes |" in text
    # the class-true model misses the FID goal: not met
    (models / "true").rename(tmp_path / "gone")
    text = render(models, tmp_path)
    assert "over 95% accuracy: `true-worse`: FID 12.00, accuracy 99.0% | **no** |" in text


def test_main_rewrites_only_its_section(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _card(models, "m", "mnist", False, _measured(4.0))
    doc = tmp_path / "models.md"
    doc.write_text(
        "# Models\n\n<!-- begin:quality-table -->\nold\n<!-- end:quality-table -->\n\ntail\n"
    )
    assert main(["--models-dir", str(models), "--floors", str(tmp_path), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "old" not in text and "`m`: FID 4.00 | yes |" in text
    assert text.startswith("# Models\n") and text.rstrip().endswith("tail")


def test_a_summary_section_gets_the_table_without_the_commands(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _card(models, "m", "mnist", False, _measured(4.0))
    doc = tmp_path / "README.md"
    doc.write_text("<!-- begin:quality-summary -->\n<!-- end:quality-summary -->\n")
    main(["--models-dir", str(models), "--floors", str(tmp_path), "--doc", str(doc)])
    text = doc.read_text()
    assert "| `m` | MNIST | 3 | 4.00 |" in text
    assert "Commands" not in text and "quality-table" not in text


def test_the_training_table_says_how_each_model_was_trained(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _card(models, "stopped", "fashion-mnist", True, _measured(20.0))
    _card(models, "unknown", "mnist", False, None)
    path = models / "stopped" / "card.json"
    card = json.loads(path.read_text())
    card["architecture"] = "dcgan-cond"
    card["options"] = {"epochs": 9, "ema": 0.999, "g_kwargs": {"width": 32}, "resume": "r/c-4.pt"}
    card["training"] = {"command": "python -m training.train --arch dcgan-cond", "device": "cpu"}
    card["training"] |= {"train_seconds": 5432.1, "images_per_second": 88.4}
    path.write_text(json.dumps(card))

    text = render_training(models)
    assert (
        "| `stopped` | `dcgan-cond` (ganserve), width 32, EMA of G 0.999 | Fashion-MNIST "
        "| 3 of 9 (stopped) | 5,432 s on cpu, 88 images/s "
        "| `python -m training.train --arch dcgan-cond`, resumed from `c-4.pt` |"
    ) in text
    # A card without training information says so instead of inventing it.
    assert "| `unknown` | `?` | MNIST | 3 | – | – |" in text
    assert text.index("`stopped`") < text.index("`unknown`")  # Fashion-MNIST first


def test_an_image_folder_model_follows_mnist_under_its_folder_name(tmp_path: Path) -> None:
    models, floors = tmp_path / "models", tmp_path / "floors"
    _card(models, "faces", "folder:../shared/data/emoji64", False, _measured(40.0))
    _card(models, "digits", "mnist", False, _measured(4.0))
    floors.mkdir()
    floor = {"results": {"fid": 5.5}, "command": "python -m training.evaluate real --dataset x"}
    (floors / "real-emoji64.json").write_text(json.dumps(floor))

    text = render(models, floors)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "best" not in line]
    names = [r.split(" | ")[0] for r in rows[2:]]
    assert names == ["| `digits`", "| real: second half vs first (the floor)", "| `faces`"]
    assert "| `faces` | emoji64 | 3 | 40.00 |" in text
    assert "emoji64 |" not in "".join(r for r in text.splitlines() if "best" in r)  # no goal
    assert "| `faces` | `?` | emoji64 |" in render_training(models)
