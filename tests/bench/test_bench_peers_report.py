"""The peers benchmark: medians over rounds, the bars, its docs section, and one real cell."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from bench import peers_bench
from bench.peers_bench import CSV_COLUMNS, Options, Outcome, goals, section, summary
from bench.run import REPO, Config
from bench.wrk import wrk_binary


def _row(system: str, round_: int, images: int, ips: float, **kw: Any) -> dict[str, Any]:
    framework = system.split("-")[0]
    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update(
        run_id="peers-x",
        round=round_,
        system=system,
        framework=framework,
        workers=2 if system.endswith("-w2") else 1,
        images_per_request=images,
        connections=32,
        completed=1000,
        ok=1000,
        images_per_s=ips,
        p50_ms=30.0,
        p99_ms=90.0,
        errors=0,
        errors_by_kind="",
        server_cpu_ms_per_image=0.7,
        client_cpu_ms_per_request=0.02,
    )
    row.update(kw)
    return row


def _rows() -> list[dict[str, Any]]:
    rows = []
    for k, (g, b, r) in enumerate([(900, 300, 200), (1000, 350, 420), (950, 310, 380)], 1):
        rows.append(_row("ganserve", k, 1, g))
        rows.append(_row("naive", k, 1, g / 3.5))
        rows.append(_row("bentoml", k, 1, b, errors=20, completed=1000, errors_by_kind="500:20"))
        rows.append(_row("ray", k, 1, r, p99_ms=80.0 if k == 2 else 120.0))
    return rows


def test_summary_takes_medians_and_sums_errors() -> None:
    cells = summary(_rows())
    g, b = cells[("ganserve", 1)], cells[("bentoml", 1)]
    assert g["images_per_s"] == 950 and g["rounds"] == 3
    assert b["images_per_s"] == 310 and b["errors"] == 60 and b["completed"] == 3000
    assert b["error_share"] == pytest.approx(0.02) and b["errors_by_kind"] == {"500": 60}
    assert cells[("ray", 1)]["p99_ms"] == 120.0


def test_goals_compare_round_by_round() -> None:
    by = {g["goal"].split(":")[1].split(" images/s")[0].strip(): g for g in goals(_rows())}
    bento = by["ganserve >= 2.5x bentoml"]
    assert bento["value"] == pytest.approx(3.0) and bento["met"]  # median of 3.0, 2.86, 3.06
    assert "60 errors" in bento["measured"]
    ray = by["ganserve >= 2.5x ray"]
    assert ray["value"] == pytest.approx(2.5) and ray["met"]  # median of 4.5, 2.38, 2.5
    naive = by["ganserve >= 3x naive"]
    assert naive["value"] == pytest.approx(3.5) and naive["met"]
    cpu = next(g for g in goals(_rows()) if "server CPU" in g["goal"])
    assert cpu["value"] == 0.7 and cpu["met"]


def test_goals_miss_on_ratio_p99_or_cpu() -> None:
    rows = _rows()
    for r in rows:
        if r["system"] == "ray":
            r["images_per_s"] = 600.0  # ~1.6x
        if r["system"] == "bentoml":
            r["p99_ms"] = 50.0  # better tail than ganserve's 90 ms
        if r["system"] == "ganserve":
            r["server_cpu_ms_per_image"] = 1.1
    result = {g["goal"]: g for g in goals(rows)}
    missed = {k for k, g in result.items() if not g["met"]}
    assert any("ray" in k for k in missed)
    assert any("bentoml" in k for k in missed)
    assert any("server CPU" in k for k in missed)
    assert not any("naive" in k for k in missed)


def test_a_peer_that_answered_nothing_gives_no_ratio() -> None:
    rows = [_row("ganserve", 1, 64, 3000.0), _row("ray", 1, 64, 0.0, ok=0, p99_ms=math.nan)]
    (goal,) = [g for g in goals(rows) if "ray" in g["goal"]]
    assert not goal["met"] and "no round" in goal["measured"]


def test_section_has_every_system_the_bars_and_the_workaround() -> None:
    rows = _rows()
    outcome = Outcome(
        rows=rows,
        info={
            "run_id": "peers-x",
            "started": "2026-12-01T00:00:00+00:00",
            "elapsed_s": 600.0,
            "model": "dcgan-fashion",
            "card": {"architecture": "dcgan", "latent_dim": 100},
            "note": "naive server: an untrained `dcgan` generator",
            "machine": {"nproc": 2, "cpu": "CPU", "load": (0.1, 0.2, 0.3), "onnxruntime": "1"},
            "versions": {"bentoml": "1.4.40", "ray": "2.60.0"},
            "systems": {"ganserve": "ganserve, 1 worker", "bentoml": "BentoML, documented"},
        },
        failures=["round 2, ray-w2: did not start"],
    )
    md = section(outcome, Options(), "python -m bench.peers_bench")
    assert "| ganserve, 1 worker | 1 | 950 | 30 / 90 | 0.70 | 0 |" in md
    assert "| BentoML, documented | 1 | 310 |" in md and "2.0% (60 x 500)" in md
    assert "| ray | 1 | 380 |" in md  # no label: the system's name
    assert "BentoML 1.4.40" in md and "Ray Serve 2.60.0" in md
    assert "runner_connection" in md and "ray-w2: did not start" in md
    assert md.count("| yes |") + md.count("| **no** |") == len(goals(rows))


@pytest.mark.skipif(wrk_binary() is None, reason="wrk is not installed (apt-get install wrk)")
def test_one_short_cell_of_ganserve_under_wrk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(REPO / "models" / "dcgan-fashion", tmp_path / "models" / "dcgan-fashion")
    options = Options(
        seconds=1, warmup_s=0, rounds=1, shapes=(1,), workers=(1,), systems=("ganserve",)
    )
    outcome = peers_bench.run(
        options, Config(models_dir=tmp_path / "models"), tmp_path / "peers.csv"
    )
    (row,) = outcome.rows
    assert row["system"] == "ganserve" and row["images_per_request"] == 1
    assert row["ok"] > 0 and row["errors"] == 0 and row["images_per_s"] > 0
    assert 0 < row["server_cpu_ms_per_image"] < 1000 and row["client_cpu_ms_per_request"] > 0
    assert row["p50_ms"] <= row["p99_ms"]
    assert (tmp_path / "peers.csv").read_text().count("\n") == 2


def test_a_trial_run_leaves_the_data_behind_the_docs_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Path] = []

    def run(options: Options, config: Config, csv_path: Path) -> Outcome:
        written.append(csv_path)
        return Outcome(rows=[], info={"csv": csv_path})

    monkeypatch.setattr(peers_bench, "run", run)
    assert peers_bench.main(["--no-write", "--rounds", "1"]) == 0
    assert written[0] != peers_bench.CSV_PATH
    assert written[0].parent == Path(tempfile.gettempdir()) and written[0].suffix == ".csv"
    written[0].unlink()


def test_a_start_failure_is_reported_by_its_last_line() -> None:
    log = (
        "Traceback (most recent call last):\n  File x\n"
        "\x1b[36mray::Proxy\x1b[39m\nRuntimeError: Failed to bind\n\n"
    )
    assert peers_bench.last_line(log) == "RuntimeError: Failed to bind"
    assert peers_bench.last_line("") == ""
