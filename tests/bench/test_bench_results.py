"""Rows, CSV, goals and the docs section of a serving run."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import pytest
from bench_testlib import LocalServer

from bench.loadgen import Options, RequestSpec, closed_loop
from bench.markdown import section
from bench.run import CSV_COLUMNS, Config, _default_model, goals, measurement_row, write_csv
from ganserve.card import ModelCard


def test_csv_has_the_expected_columns_and_error_counts(fresh: LocalServer, tmp_path: Path) -> None:
    # windows never agree often enough to stop early: exactly max_requests are sent
    options = Options(
        warmup_s=0.0,
        window_s=0.2,
        min_window_requests=1,
        max_requests=50,
        stable_windows=1000,
        max_windows=1000,
    )
    m = asyncio.run(closed_loop(fresh.url, RequestSpec(json={}), 2, options))
    path = write_csv([measurement_row("run-1", "ganserve", m)], tmp_path / "out.csv")
    with path.open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == CSV_COLUMNS
    for column in (
        "system",
        "concurrency",
        "requests_per_s",
        "images_per_s",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "errors",
        "errors_503_retry_after",
        "errors_by_kind",
    ):
        assert column in CSV_COLUMNS
    (row,) = rows
    assert row["system"] == "ganserve" and row["mode"] == "closed" and row["concurrency"] == "2"
    assert row["sent"] == "50" and row["errors"] == "20"
    assert row["errors_503_retry_after"] == "5" and row["errors_503_no_retry_after"] == "5"
    assert row["errors_5xx"] == "5" and row["errors_other"] == "5"  # the non-PNG 200s
    assert row["errors_timeout"] == "0"
    assert row["errors_by_kind"] == "500:5;503:5;503+retry-after:5;bad-body:5"
    assert float(row["p50_ms"]) <= float(row["p95_ms"]) <= float(row["p99_ms"])


def _row(system: str, images: int, ips: float, round_: int | str = 1, **kw: Any) -> dict[str, Any]:
    row = dict.fromkeys(CSV_COLUMNS, "")
    mode = "in-process" if system == "in-process" else "closed"
    row.update(
        system=system,
        images_per_request=images,
        images_per_s=ips,
        round=round_,
        mode=mode,
        concurrency=32 if mode == "closed" else "",
        errors=0,
        sent=100,
        unfinished=0,
        p50_ms=100.0,
        p99_ms=150.0,
        batch=64 if mode != "closed" else "",
    )
    row.update(kw)
    return row


def _rounds(ratios: list[float], shares: list[float]) -> list[dict[str, Any]]:
    rows = []
    for k, (ratio, share) in enumerate(zip(ratios, shares, strict=True), 1):
        rows += [_row("ganserve", 1, 300 * ratio, k), _row("naive", 1, 300, k)]
        rows += [_row("in-process", 64, 1000, k), _row("ganserve", 64, 1000 * share, k)]
    return rows


def test_goals_take_the_median_of_the_paired_rounds() -> None:
    by_goal = {g["goal"]: g for g in goals(_rounds([2.0, 3.5, 4.0], [0.8, 0.9, 0.95]), Config())}
    one = next(g for k, g in by_goal.items() if k.startswith("1-image"))
    share = next(g for k, g in by_goal.items() if "in-process" in k)
    assert one["value"] == pytest.approx(3.5) and one["met"]
    assert share["value"] == pytest.approx(0.9) and share["met"]
    missed = goals(_rounds([2.0, 2.5, 4.0], [0.5, 0.9, 0.6]), Config())
    one = next(g for g in missed if g["goal"].startswith("1-image"))
    share = next(g for g in missed if "in-process" in g["goal"])
    assert one["value"] == pytest.approx(2.5) and not one["met"]
    assert share["value"] == pytest.approx(0.6) and not share["met"]


def test_goal_errors_and_queue_bound() -> None:
    rows = _rounds([3.0], [1.0])
    rows.append(_row("ganserve", 1, 300, "", concurrency=128, errors=2, errors_by_kind="500:2"))
    overload = {
        "errors_503_retry_after": 40,
        "errors_503_no_retry_after": 0,
        "errors_timeout": 0,
        "errors_5xx": 0,
        "errors_other": 0,
        "concurrency": 128,
    }
    rows.append(_row("ganserve", 1, 50, "", settings="GANSERVE_MAX_QUEUE=4", **overload))
    result = {g["goal"]: g["met"] for g in goals(rows, Config())}
    assert result["no errors at any concurrency up to 128 (default settings)"] is False
    assert result["beyond the queue bound: 503 with Retry-After, no timeouts or 500s"] is True
    rows[-1]["errors_5xx"] = 1
    result = {g["goal"]: g["met"] for g in goals(rows, Config())}
    assert result["beyond the queue bound: 503 with Retry-After, no timeouts or 500s"] is False


def test_section_names_the_machine_the_command_and_every_shape() -> None:
    rows = _rounds([3.2, 3.4], [0.9, 0.92])
    result = {
        "rows": rows,
        "goals": goals(rows, Config()),
        "info": {
            "run_id": "serving-x",
            "started": "2026-01-01T00:00:00+00:00",
            "elapsed_s": 60.0,
            "model": "dcgan-bench",
            "card": {"architecture": "dcgan", "image_shape": [28, 28, 1], "latent_dim": 100},
            "note": "a note",
            "machine": {
                "nproc": 2,
                "cpu": "Some CPU",
                "load": (1.0, 2.0, 3.0),
                "python": "3.11",
                "onnxruntime": "1",
                "uvicorn": "1",
                "uvicorn_stack": "h11 + asyncio",
                "httpx": "1",
            },
        },
    }
    md = section(
        result, "python -m bench --quick", {"closed-1": "images/bench-1-image.png"}, Options()
    )
    assert "`python -m bench --quick`" in md and "Some CPU" in md and "2 cores" in md
    assert "### 1-image requests" in md and "### 64-image requests" in md
    assert "![1-image requests](images/bench-1-image.png)" in md
    assert "| 1-image requests, concurrency 32: ganserve images/s >= 3x naive |" in md


def _cards(**fields: dict[str, Any]) -> dict[str, ModelCard]:
    return {name: ModelCard.from_dict({"name": name, **f}) for name, f in fields.items()}


def test_default_model_is_the_best_unconditional_one_of_the_services_data_set() -> None:
    fashion = {"conditional": False, "dataset": "fashion-mnist"}
    cards = _cards(
        a_cond={"conditional": True, "dataset": "fashion-mnist", "quality": {"fid": 1.0}},
        b={**fashion, "quality": {"fid": 9.0}},
        c={**fashion, "quality": {"fid": 4.0}},
        d={**fashion, "quality": None},
        digits={"conditional": False, "dataset": "mnist", "quality": {"fid": 2.0}},
    )
    assert _default_model(cards) == "c"  # as the service picks: an MNIST FID does not compare
    assert _default_model(_cards(z=fashion, y=fashion)) == "y"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--arch", "nope"], "unknown architecture 'nope'"),
        (["--arch", "dcgan", "--model", "x"], "takes no --model"),
        (["--checkpoint", "/nonexistent/g.pt"], "not found"),
    ],
)
def test_cli_refuses_bad_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.__main__ import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
