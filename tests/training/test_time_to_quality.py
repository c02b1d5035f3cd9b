"""The time-to-quality report reads runs' metric curves: first point at the target, CPU ratio."""

import json

import pytest

from training.time_to_quality import main, report


def _run(tmp_path, name, points, **options):
    run = tmp_path / name
    run.mkdir()
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
    assert "3.00x less with the second recipe" in text


def test_a_recipe_that_never_reaches_the_target_says_so(tmp_path):
    slow = _run(tmp_path, "slow", [(10, 9.0), (20, 5.0)])
    fast = _run(tmp_path, "fast", [(5, 3.0)])
    text = report({"reports": slow, "project": fast}, 3.45)
    assert "not reached | > 20.0 | > 13 |" in text and "x less" not in text


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
