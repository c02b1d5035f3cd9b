"""The time-to-quality report reads runs' metric curves: first point at the target, CPU ratio."""

import json

import pytest

from training.time_to_quality import main, report


def _run(tmp_path, name, points, **options):
    run = tmp_path / name
    run.mkdir(parents=True)
    (run / "training_options.json").write_text(json.dumps({"arch": "dcgan", **options}))
    lines = [
        json.dumps(
            {"epoch": i, "step": 100 * i, "kimg": 6.4 * i, "cpu_minutes": m, "classifier_fd": f}
        )
        for i, (m, f) in enumerate(points, 1)
    ]
    (run / "metric-cfd.jsonl").write_text("\n".join(lines) + "\n")
    return run


def test_the_first_point_at_the_target_gives_cpu_minutes_and_the_ratio(tmp_path):
    slow = _run(tmp_path, "slow", [(10, 9.0), (20, 5.0), (30, 3.4), (40, 3.0)])
    fast = _run(tmp_path, "fast", [(5, 6.0), (10, 3.3), (15, 2.0)], lr=5e-4)
    text = report({"reports": slow, "project": fast}, 3.45)
    assert (
        "| reports | `python -m training.train` | 4 | 3.00 | epoch 3, step 300 | 30.0 | 19 |"
        in text
    )
    assert "--lr 0.0005" in text and "| 10.0 | 13 |" in text
    assert "CPU time to the target: 3.00x less with project than reports." in text  # no FIDs


def test_a_recipe_that_never_reaches_the_target_says_so(tmp_path):
    slow = _run(tmp_path, "slow", [(10, 9.0), (20, 5.0)])
    fast = _run(tmp_path, "fast", [(5, 3.0)])
    text = report({"reports": slow, "project": fast}, 3.45)
    assert "not reached | > 20.0 | > 13 |" in text and "x less" not in text


def test_each_recipe_is_compared_with_the_first_and_scored_by_fid(tmp_path):
    slow = _run(tmp_path, "slow", [(10, 9.0), (30, 3.4)])
    fast = _run(tmp_path, "fast", [(10, 3.3)])
    never = _run(tmp_path, "never", [(10, 9.0)])
    fids = {
        "reports": {"fid": 22.1, "kimg": 12.8, "num_gen": 5000},
        "cond": {"fid": 20.44, "kimg": 6.4, "num_gen": 5000},
    }
    text = report({"reports": slow, "cond": fast, "project": never}, 3.45, fids)
    assert "FID (5,000 images) |" in text
    assert "| 10.0 | 6 | 20.44 (6 kimg) |" in text and "| > 10.0 | > 6 | – |" in text
    assert "3.00x less with cond than reports, confirmed by FID (20.44 against 22.10)." in text
    assert "with project" not in text
    fids["cond"]["fid"] = 48.49  # the classifier FD said it was there; FID says otherwise
    text = report({"reports": slow, "cond": fast}, 3.45, fids)
    assert "3.00x less with cond than reports, NOT confirmed by FID (48.49 against 22.10)." in text


STOPPABLE_RUN = """
import json, signal, sys, time
from pathlib import Path

run = Path(sys.argv[1]) / "00000-fake"
run.mkdir(parents=True)
signal.signal(signal.SIGTERM, lambda *_: ((run / "stopped").write_text("1"), sys.exit(0)))
for i, cfd in enumerate(json.loads(sys.argv[2]), 1):
    with open(run / "metric-cfd.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 1, "step": i, "kimg": i, "cpu_minutes": i,
                            "classifier_fd": cfd}) + "\\n")
    time.sleep(0.5)
time.sleep(60 if sys.argv[3] == "linger" else 0)
"""


def test_side_by_side_runs_are_stopped_once_they_reach_the_target(tmp_path):
    import subprocess
    import sys
    import time

    from training.time_to_quality import stop_on_target

    script = tmp_path / "run.py"
    script.write_text(STOPPABLE_RUN)
    curves = {"fast": ([9.0, 3.0, 2.0], "linger"), "slow": ([9.0, 8.0], "exit")}
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / name), json.dumps(c), end]
        )
        for name, (c, end) in curves.items()
    }
    began = time.monotonic()
    stop_on_target(procs, {name: tmp_path / name for name in curves}, 3.45)
    assert all(p.returncode == 0 for p in procs.values())
    assert (tmp_path / "fast" / "00000-fake" / "stopped").is_file()  # stopped at 3.0 ...
    assert not (tmp_path / "slow" / "00000-fake" / "stopped").exists()  # ... ran to its end
    assert time.monotonic() - began < 45  # the fast run was not left to linger its 60 s


def test_a_run_without_a_metric_curve_is_one_line(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(SystemExit, match="has no metric-cfd.jsonl"):
        main(["--runs", str(tmp_path / "a"), str(tmp_path / "b")])


def test_the_recipe_table_lists_each_curve(tmp_path, capsys):
    a = _run(tmp_path, "a", [(10, 9.0), (20, 5.0)], lr=5e-4)
    assert main(["--table", str(a)]) == 0
    out = capsys.readouterr().out
    assert "| a | `python -m training.train --lr 0.0005` | 6: 9.00, 13: 5.00 | 20.0 | 5.00 |" in out


def test_the_recipe_table_names_runs_of_one_name_by_their_folder(tmp_path, capsys):
    a = _run(tmp_path / "b32", "00000-fake", [(10, 9.0)])
    b = _run(tmp_path / "b64", "00000-fake", [(10, 8.0)])
    assert main(["--table", str(a), str(b)]) == 0
    rows = [line.split(" | ")[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows == ["| b32/00000-fake", "| b64/00000-fake"]


def test_the_recipe_table_shows_recall_and_accuracy_where_logged(tmp_path, capsys):
    run = _run(tmp_path, "c", [(10, 9.0)], arch="cdcgan")
    point = json.loads((run / "metric-cfd.jsonl").read_text())
    point.update(classifier_recall=0.714, conditional_accuracy=0.956)
    (run / "metric-cfd.jsonl").write_text(json.dumps(point) + "\n")
    assert main(["--table", str(run)]) == 0
    assert "| 6: 9.00 (r 0.71, acc 96%) | 10.0 | 9.00 |" in capsys.readouterr().out


def _baseline(tmp_path, fid=22.47, epochs=14, seconds=4987.0):
    model = tmp_path / "baseline"
    model.mkdir()
    card = {
        "name": "dcgan-fashion",
        "dataset": "fashion-mnist",
        "epochs": epochs,
        "quality": {"fid": fid},
        "training": {"command": "python -m training.train --epochs 14", "train_seconds": seconds},
    }
    (model / "card.json").write_text(json.dumps(card))
    return model


def _fid_line(epoch, kimg, cpu_minutes, fid, num_gen=10000):
    source = {"kind": "checkpoint", "epoch": epoch, "kimg": kimg, "cpu_minutes": cpu_minutes}
    return json.dumps(
        {"metric": "fid", "results": {"fid": fid}, "source": source, "num_gen": num_gen,
         "command": f"python -m training.evaluate ckpt-{epoch}"}
    )  # fmt: skip


def test_fid_of_checkpoints_against_the_baselines_card(tmp_path, capsys):
    run = _run(tmp_path, "00007-dcgan-fashion-mnist", [(1, 9.0)], lr=5e-4)
    for epoch in (2, 4):  # scored already, so nothing is evaluated again
        (run / f"checkpoint-{epoch:06d}.pt").write_bytes(b"")
    lines = [_fid_line(4, 240.0, 21.5, 21.0), _fid_line(2, 120.0, 10.7, 30.2)]
    lines.append(_fid_line(4, 240.0, 21.5, 99.0, num_gen=2000))  # another protocol: ignored
    (run / "metric-fid.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["--fid", str(run), "--baseline", str(_baseline(tmp_path))]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "120 kimg / 10.7 CPU min: 30.20, 240 kimg / 21.5 CPU min: 21.00" in out
    assert "| epoch 4, 240 kimg | 1,290 (CPU) |" in out
    assert "| 14 epochs: 22.47 | epoch 14 | 4,987 (wall) |" in out
    assert "Time to FID 22.47: 3.87x less with 00007-dcgan-fashion-mnist." in out


def test_fid_of_checkpoints_refuses_a_missing_checkpoint_or_run(tmp_path):
    run = _run(tmp_path, "r", [(1, 9.0)])
    with pytest.raises(SystemExit, match="no such checkpoint"):
        main(["--fid", str(run), "--epochs", "3", "--baseline", str(_baseline(tmp_path))])
    with pytest.raises(SystemExit, match="no such run directory"):
        main(["--fid", str(tmp_path / "nothing")])


def test_a_checkpoint_says_where_in_its_run_it_was_taken(tmp_path):
    from training_testlib import fake_options

    from training.checkpoint import load_checkpoint
    from training.loop import training_loop
    from training.metrics.sources import open_generator

    narrow = {"g_kwargs": {"width": 8}, "d_kwargs": {"width": 8}}
    run = training_loop(fake_options(tmp_path, epochs=2, **narrow), log=lambda *_: None)
    described = open_generator(run / "checkpoint-000002.pt", "cpu").describe()
    assert described["epoch"] == 2 and described["kimg"] == 0.1  # 2 epochs of 64 images
    cpu_seconds = load_checkpoint(run / "checkpoint-000002.pt")["stats"]["cpu_seconds"]
    assert cpu_seconds > 0 and described["cpu_minutes"] == round(cpu_seconds / 60, 2)


def test_a_resumed_run_shows_what_the_resume_changed(tmp_path, capsys):
    from training.checkpoint import save_checkpoint

    run = _run(tmp_path, "r", [(10, 9.0)], epochs=12, max_minutes=3.0)
    options = {**json.loads((run / "training_options.json").read_text()), "epochs": 24}
    payload = {"arch": "dcgan", "g_kwargs": {}, "d_kwargs": {}, "G": {}, "D": {}, "epoch": 1}
    payload |= {"dataset": "fake", "loss": "bce", "options": {**options, "max_minutes": 70.0}}
    save_checkpoint(run / "checkpoint-000001.pt", payload)
    assert main(["--table", str(run)]) == 0
    out = capsys.readouterr().out
    assert "`, resumed with `--epochs 24 --max-minutes 70.0` |" in out
    assert "`python -m training.train --epochs 12 --max-minutes 3.0`" in out


def test_a_resume_without_a_deadline_says_so_in_words(tmp_path, capsys):
    from training.checkpoint import save_checkpoint

    run = _run(tmp_path, "r", [(10, 9.0)], epochs=12, max_minutes=3.0)
    options = {**json.loads((run / "training_options.json").read_text()), "epochs": 24}
    payload = {"arch": "dcgan", "g_kwargs": {}, "d_kwargs": {}, "G": {}, "D": {}, "epoch": 1}
    payload |= {"dataset": "fake", "loss": "bce", "options": {**options, "max_minutes": None}}
    save_checkpoint(run / "checkpoint-000001.pt", payload)
    assert main(["--table", str(run)]) == 0
    out = capsys.readouterr().out
    assert "`, resumed with `--epochs 24` and no `--max-minutes` |" in out


@pytest.mark.parametrize("native, fastest", [(True, "project-bf16-b32"), (False, "project-b32")])
def test_the_default_recipes_use_bf16_only_where_the_cpu_computes_it(monkeypatch, native, fastest):
    import training.loop
    from training.time_to_quality import RECIPES, default_recipes

    monkeypatch.setattr(training.loop, "cpu_bf16_native", lambda: native)
    assert default_recipes() == ["reports", fastest]
    assert ("--precision" in RECIPES[fastest]) is native


def test_a_recipe_judged_by_fid_is_placed_by_its_checkpoints_not_its_curve(tmp_path):
    """A D on the classifier's features drives the classifier FD down early; its place
    is where its checkpoints' FID reached the baseline's, and the ratio says so."""
    slow = _run(tmp_path, "slow", [(10, 9.0), (30, 3.4)])
    feats = _run(tmp_path, "feats", [(2, 3.0), (4, 2.0), (6, 1.5)])
    fids = {"reports": {"fid": 22.1, "kimg": 12.8, "num_gen": 5000}}
    hit = {"epoch": 4, "kimg": 240.0, "cpu_minutes": 7.5, "fid": 21.9}
    text = report(
        {"reports": slow, "project-features": feats}, 3.45, fids, {"project-features": hit}
    )
    assert "| 1.50 | epoch 4 checkpoint, by FID <= 22.10 | 7.5 | 240 | 21.90 (240 kimg) |" in text
    assert "4.00x less with project-features than reports, by FID itself." in text
    text = report(
        {"reports": slow, "project-features": feats}, 3.45, fids, {"project-features": None}
    )
    assert "not reached by FID <= 22.10 | > 6.0 |" in text and "x less" not in text


def test_checkpoints_are_scored_from_the_last_down_until_one_misses_the_target(tmp_path):
    from training.time_to_quality import first_checkpoint_under

    run = _run(tmp_path, "run", [(1, 9.0)])
    for epoch in range(1, 7):
        (run / f"checkpoint-{epoch:06d}.pt").write_bytes(b"")  # not loadable: never scored
    lines = [_fid_line(6, 360.0, 12.0, 21.0), _fid_line(5, 300.0, 10.0, 22.0)]
    lines += [_fid_line(4, 240.0, 8.0, 22.2), _fid_line(3, 180.0, 6.0, 24.0)]
    (run / "metric-fid.jsonl").write_text("\n".join(lines) + "\n")
    hit = first_checkpoint_under(run, 22.47, 10000)  # epochs 1 and 2 are never reached
    assert hit is not None and (hit["epoch"], hit["cpu_minutes"]) == (4, 8.0)
    assert first_checkpoint_under(run, 20.0, 10000) is None  # the last is already above


def test_a_recipe_judged_by_fid_is_stopped_after_its_epochs(tmp_path):
    import subprocess
    import sys

    from training.time_to_quality import FID_JUDGED, stop_on_target

    name = "project-features"
    epochs = FID_JUDGED[name]
    script = tmp_path / "run.py"
    script.write_text(
        STOPPABLE_RUN.replace(
            "    time.sleep(0.5)\n",
            f"    (run / 'checkpoint-{epochs:06d}.pt').write_text('') if i == 2 else None\n"
            "    time.sleep(0.5)\n",
        )
    )
    out = tmp_path / name  # its curve reaches the classifier FD target at once: not a stop
    proc = subprocess.Popen([sys.executable, str(script), str(out), "[1.0, 1.0, 1.0]", "linger"])
    stop_on_target({name: proc}, {name: out}, 3.45)
    assert (out / "00000-fake" / "stopped").is_file()
    lines = (out / "00000-fake" / "metric-cfd.jsonl").read_text().splitlines()
    assert len(lines) >= 2  # not stopped at the first point, under the cfd target


def test_fid_judged_recipes_need_fid_scoring_and_a_curve_judged_baseline(tmp_path):
    a = _run(tmp_path / "reports", "00000-a", [(10, 3.0)])
    b = _run(tmp_path / "project-features", "00000-b", [(10, 3.0)])
    with pytest.raises(SystemExit, match="judged by FID: --fid-num-gen must be > 0"):
        main(["--runs", str(a), str(b), "--fid-num-gen", "0"])
    with pytest.raises(SystemExit, match="must be judged by its curve"):
        main(["--runs", str(b), str(a)])
