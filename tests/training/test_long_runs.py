"""Long runs: deadlines, checkpoints by time, resume of a run directory, signals, metrics."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from training_testlib import fake_options as testlib_options

from training.checkpoint import load_checkpoint
from training.loop import LATEST, resolve_resume, training_loop
from training.train import main as train_main

REPO = Path(__file__).resolve().parents[2]


def fake_options(tmp_path, **kw):
    """Two epochs of 128 fake images with narrow networks (several checkpoints, quickly)."""
    narrow = {"g_kwargs": {"width": 8}, "d_kwargs": {"width": 8}}
    return testlib_options(tmp_path, **{"limit": 128, "epochs": 2, **narrow, **kw})


def quiet(*_args):
    pass


def test_a_run_stopped_mid_epoch_resumes_exactly_like_an_uninterrupted_run(tmp_path):
    straight = training_loop(fake_options(tmp_path / "a", ema=0.9), log=quiet)
    # a deadline that has passed after the first step: stop with checkpoint-latest.pt
    said: list[str] = []
    opts = fake_options(tmp_path / "b", ema=0.9, max_minutes=1e-9)
    stopped = training_loop(opts, log=lambda *a: said.append(" ".join(map(str, a))))
    latest = load_checkpoint(stopped / LATEST)
    assert (latest["epoch"], latest["batch"], latest["step"]) == (0, 1, 1)
    assert not list(stopped.glob("checkpoint-0*.pt"))
    opts = fake_options(tmp_path / "b", ema=0.9, resume=str(stopped))
    resumed = training_loop(opts, log=lambda *a: said.append(" ".join(map(str, a))))
    assert resumed == stopped  # a run directory continues in place
    # the stop and the resume name the same place
    assert any("stopped (--max-minutes) at epoch 1, batch 1" in line for line in said)
    assert any(line.endswith("from epoch 1, batch 1") for line in said)
    a = load_checkpoint(straight / "checkpoint-000002.pt")
    b = load_checkpoint(resumed / "checkpoint-000002.pt")
    for key in ("G", "D", "G_ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)
    assert [e["d_loss"] for e in a["epoch_stats"]] == [e["d_loss"] for e in b["epoch_stats"]]
    kinds = [json.loads(line)["kind"] for line in (resumed / "stats.jsonl").open()]
    assert kinds.count("epoch") == 2


def test_resume_latest_picks_the_newest_run_with_a_checkpoint(tmp_path):
    first = training_loop(fake_options(tmp_path, epochs=1), log=quiet)
    second = training_loop(fake_options(tmp_path, epochs=1, max_minutes=1e-9), log=quiet)
    (tmp_path / "99999-empty").mkdir()
    ckpt, run = resolve_resume("latest", tmp_path)
    assert (ckpt, run) == (second / LATEST, second)
    ckpt, run = resolve_resume(str(first), tmp_path)
    assert (ckpt, run) == (first / "checkpoint-000001.pt", first)


def test_cli_resume_latest_continues_to_the_runs_own_epochs(tmp_path, capsys):
    args = ["--dataset", "fake", "--limit", "64", "--batch-size", "32", "--epochs", "2"]
    args += ["--g-kwargs", '{"width": 8}', "--d-kwargs", '{"width": 8}', "--no-progress"]
    args += ["--out", str(tmp_path)]
    assert train_main([*args, "--max-minutes", "1e-9"]) == 0
    assert "--resume" in capsys.readouterr().out
    assert train_main(["--resume", "latest", "--out", str(tmp_path), "--no-progress"]) == 0
    (run,) = tmp_path.glob("00000-*")
    assert load_checkpoint(run / "checkpoint-000002.pt")["epoch"] == 2


def test_resume_may_change_how_often_it_measures_and_checkpoints_but_not_the_recipe(tmp_path):
    args = ["--dataset", "fake", "--limit", "64", "--batch-size", "32", "--epochs", "1"]
    args += ["--g-kwargs", '{"width": 8}', "--d-kwargs", '{"width": 8}', "--no-progress"]
    args += ["--metrics-kimg", "30", "--lr", "0.001", "--out", str(tmp_path)]
    assert train_main(args) == 0
    (run,) = tmp_path.glob("00000-*")
    resume = ["--resume", str(run), "--epochs", "2", "--out", str(tmp_path), "--no-progress"]
    resume += ["--metrics-kimg=120", "--checkpoint-minutes", "5", "--lr", "0.001"]
    assert train_main(resume) == 0
    options = load_checkpoint(run / "checkpoint-000002.pt")["options"]
    assert (options["metrics_kimg"], options["checkpoint_minutes"]) == (120.0, 5.0)
    assert options["lr"] == 0.001  # the recipe is the checkpoint's


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (["--lr", "0.5"], "--lr 0.5"),
        (["--arch", "cgan"], "--arch cgan"),
        (["--dataset=mnist"], "--dataset mnist"),
        (["--g-kwargs", '{"width": 16}'], "--g-kwargs"),
    ],
)
def test_a_recipe_option_given_on_resume_is_refused_not_ignored(tmp_path, capsys, given, named):
    args = ["--dataset", "fake", "--limit", "64", "--batch-size", "32", "--epochs", "1"]
    args += ["--g-kwargs", '{"width": 8}', "--d-kwargs", '{"width": 8}', "--no-progress"]
    args += ["--lr", "0.001", "--out", str(tmp_path)]
    assert train_main(args) == 0
    (run,) = tmp_path.glob("00000-*")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    capsys.readouterr()
    resume = ["--resume", str(run), "--epochs", "2", "--out", str(tmp_path), "--no-progress"]
    assert train_main(resume + given) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {named}") and "keeps its checkpoint's" in err
    assert "\n" not in err
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before  # nothing written


@pytest.mark.slow
def test_sigterm_stops_cleanly_with_a_checkpoint(tmp_path):
    cmd = [sys.executable, "-m", "training.train", "--dataset", "fake", "--limit", "4096"]
    cmd += ["--epochs", "50", "--no-progress", "--out", str(tmp_path), "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    stats = None
    for _ in range(600):  # wait for the first logged step
        stats = next(tmp_path.glob("*/stats.jsonl"), None)
        if stats is not None and stats.stat().st_size > 0:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "stopped (signal)" in out
    assert load_checkpoint(stats.parent / LATEST)["step"] >= 1


def _write_folder(folder, images):
    folder.mkdir()
    for i, (mode, size, colour) in enumerate(images):
        Image.new(mode, size, colour).save(folder / f"{i:03d}.png")


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ([("RGB", (64, 64), "red"), ("RGB", (32, 32), "red")], "different sizes"),
        ([("RGB", (64, 64), "red"), ("L", (64, 64), 3)], "grayscale and colour"),
    ],
)
def test_a_folder_of_mixed_images_is_refused_in_one_line(tmp_path, capsys, images, message):
    _write_folder(tmp_path / "data", images)
    out = tmp_path / "runs"
    code = train_main(
        ["--arch", "dcgan64", "--dataset", f"folder:{tmp_path / 'data'}", "--out", str(out)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and "\n" not in err
    assert not out.exists() or not any(out.iterdir())


def test_a_corrupt_image_is_named(tmp_path, capsys):
    _write_folder(tmp_path / "data", [("RGB", (64, 64), "red")] * 2)
    (tmp_path / "data" / "001.png").write_bytes(b"\x89PNG not really")
    code = train_main(["--arch", "dcgan64", "--dataset", f"folder:{tmp_path / 'data'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "001.png" in err and "\n" not in err


def test_resume_refuses_another_architecture_or_data_set(tmp_path):
    run = training_loop(fake_options(tmp_path, epochs=1), log=quiet)
    ckpt = str(run / "checkpoint-000001.pt")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    opts = fake_options(tmp_path, arch="cgan", epochs=3, resume=ckpt)
    with pytest.raises(ValueError, match="holds a 'dcgan' model"):
        training_loop(opts, log=quiet)
    opts = fake_options(tmp_path, dataset="mnist", epochs=3, resume=ckpt)
    with pytest.raises(ValueError, match="trained on 'fake'"):
        training_loop(opts, log=quiet)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_minutes_must_be_positive(tmp_path, capsys, value):
    code = train_main(["--dataset", "fake", "--max-minutes", value, "--out", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.strip() == "error: --max-minutes must be > 0"
    assert not any(tmp_path.iterdir())


def test_quality_is_logged_while_training(tmp_path, data_dir):
    opts = fake_options(
        tmp_path,
        dataset="fashion-mnist",
        data_dir=str(data_dir),
        limit=256,
        epochs=1,
        metrics="cfd",
        metrics_kimg=0.128,
        metrics_images=200,
    )
    run = training_loop(opts, log=quiet)
    points = [json.loads(line) for line in (run / "metric-cfd.jsonl").open()]
    assert [p["kimg"] for p in points] == [0.1, 0.3][: len(points)] or len(points) == 2
    assert all(np.isfinite(p["classifier_fd"]) and p["classifier_fd"] > 0 for p in points)
    assert all(p["images"] == 200 for p in points)
    stats = [json.loads(line) for line in (run / "stats.jsonl").open()]
    assert sum(s["kind"] == "metric" for s in stats) == len(points)
    assert (run / "losses.png").stat().st_size > 0
