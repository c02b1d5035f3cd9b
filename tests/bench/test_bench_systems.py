"""The naive server, the in-process limit and the server processes of a run."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from bench import servers
from bench.inprocess import encode, measure_batch, sweep
from bench.naive_server import create_naive_app, generator_from_card, generator_from_checkpoint
from bench.run import Config, build_bench_model, prepare_subject
from ganserve.grid import grid_shape
from training.networks import build_generator


@pytest.fixture(scope="module")
def bench_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An untrained mlp-small exported as models/mlp-small-bench, and its checkpoint."""
    return build_bench_model(tmp_path_factory.mktemp("bench"), "mlp-small")


def test_naive_server_draws_the_grid_ganserve_draws(bench_model: tuple[Path, Path]) -> None:
    g, description = generator_from_checkpoint(bench_model[1])
    assert "mlp-small" in description
    with TestClient(create_naive_app(g, description)) as client:
        first = client.post("/generate", json={"n": 6, "seed": 3})
        again = client.post("/generate", json={"n": 6, "seed": 3})
        other = client.post("/generate", json={"n": 6, "seed": 4})
        assert client.post("/generate", json={"n": 0}).status_code == 422
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert first.content == again.content != other.content
    rows, columns = grid_shape(6, math.ceil(math.sqrt(6)))
    image = Image.open(io.BytesIO(first.content))
    assert image.mode == "L"
    assert image.size == (columns * 30 + 2, rows * 30 + 2)  # 28-pixel cells, padding 2


def test_naive_server_untrained_generator_from_a_card(
    bench_model: tuple[Path, Path], tmp_path: Path
) -> None:
    models_dir = bench_model[0]
    g, description = generator_from_card(models_dir / "mlp-small-bench")
    assert description.startswith("untrained mlp-small")
    assert isinstance(g, type(build_generator("mlp-small")))
    card = json.loads((models_dir / "mlp-small-bench" / "card.json").read_text())
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "card.json").write_text(json.dumps({**card, "latent_dim": 7}))
    with pytest.raises(ValueError, match="--checkpoint"):
        generator_from_card(tmp_path / "odd")


def test_inprocess_limit_runs_the_exported_model(bench_model: tuple[Path, Path]) -> None:
    model_dir = bench_model[0] / "mlp-small-bench"
    r = measure_batch(model_dir, 16, 8, window_s=0.2, max_windows=3)
    assert r.batch == 8 and r.images == 16 and r.provider == "CPUExecutionProvider"
    assert r.images_per_s > 0 and r.cpu_ms_per_image > 0 and 1 <= len(r.windows) <= 3
    assert [x.batch for x in sweep(model_dir, 4, (1, 3, 8), window_s=0.1, max_windows=1)] == [1, 8]
    with pytest.raises(ValueError, match="divides"):
        sweep(model_dir, 4, (3,))
    images = np.zeros((8, 28, 28, 1), dtype=np.uint8)
    assert encode(images, 4) > 0 and encode(images, 1) > 0


def test_subject_from_a_models_dir(bench_model: tuple[Path, Path], tmp_path: Path) -> None:
    models_dir = bench_model[0]
    subject = prepare_subject(Config(models_dir=models_dir), tmp_path)
    assert subject.name == "mlp-small-bench" and subject.models_dir == models_dir
    assert subject.naive_source == ("--model-dir", models_dir / "mlp-small-bench")
    assert "untrained" in subject.note
    ckpt = bench_model[1]
    subject = prepare_subject(Config(models_dir=models_dir, checkpoint=ckpt), tmp_path)
    assert subject.naive_source == ("--checkpoint", ckpt)
    with pytest.raises(SystemExit, match="no model 'nope'"):
        prepare_subject(Config(models_dir=models_dir, model="nope"), tmp_path)


def test_a_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    server = servers.ganserve(tmp_path / "missing", tmp_path / "ganserve.log")
    with pytest.raises(servers.ServerError, match="does not exist"):
        server.start()


SHUTDOWN_SPAWNER = """
import http.server, os, signal, subprocess, sys

pids = open(sys.argv[2], "w")
worker = subprocess.Popen(["sleep", "300"], start_new_session=True)  # as BentoML's workers
pids.write(f"{worker.pid}\\n"); pids.flush()

def on_term(*_):  # as Ray does: a process started while shutting down
    late = subprocess.Popen(["sleep", "300"])
    pids.write(f"{late.pid}\\n"); pids.flush()
    os._exit(0)

signal.signal(signal.SIGTERM, on_term)
handler = http.server.SimpleHTTPRequestHandler
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
"""


def test_stopping_a_server_leaves_none_of_its_processes(tmp_path: Path) -> None:
    script, pid_file = tmp_path / "spawner.py", tmp_path / "pids"
    script.write_text(SHUTDOWN_SPAWNER)
    server = servers.Server(
        "spawner", [str(script), "{port}", str(pid_file)], health="/", log_path=tmp_path / "log"
    )
    with server:
        assert server.process is not None
        assert len(servers.server_pids(server.process.pid)) == 2
    pids = [int(line) for line in pid_file.read_text().split()]
    assert len(pids) == 2  # the worker and the one started at SIGTERM
    assert not servers.server_pids(server.process.pid, also=pids)


def test_servers_get_a_clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANSERVE_MAX_QUEUE", "3")
    env = servers.clean_env({"GANSERVE_MAX_BATCH": "8"})
    assert "GANSERVE_MAX_QUEUE" not in env and env["GANSERVE_MAX_BATCH"] == "8"
    assert str(servers.REPO) in env["PYTHONPATH"]


def test_torch_is_not_needed_to_import_the_load_generator() -> None:
    import subprocess
    import sys

    code = "import sys, bench.loadgen, bench.run; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=servers.REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
    assert torch.__version__  # the naive server's side does need it


@pytest.mark.slow
def test_a_short_run_measures_all_three_systems(
    bench_model: tuple[Path, Path], tmp_path: Path
) -> None:
    """End to end with tiny bounds: both servers as processes, the in-process limit, goals."""
    from bench.loadgen import Options
    from bench.markdown import section
    from bench.plot import plot_closed_loop
    from bench.run import run

    models_dir, ckpt = bench_model
    config = Config(
        models_dir=models_dir,
        checkpoint=ckpt,
        concurrency=(2,),
        goal_concurrency=2,
        rounds=1,
        rate_fractions=(),  # the open loop and the queue bound have their own tests
        overload_queue=None,
        inprocess_batches=(64,),
        options=Options(
            warmup_s=0.2, window_s=0.3, min_window_requests=3, max_windows=3, max_seconds=4.0
        ),
        inprocess_window_s=0.2,
        out_dir=tmp_path,
    )
    result = run(config)
    rows = result["rows"]
    systems = {(r["system"], r["images_per_request"], r["mode"]) for r in rows}
    for images in (1, 64):
        assert ("ganserve", images, "closed") in systems
        assert ("naive", images, "closed") in systems
        assert ("in-process", images, "in-process") in systems
    for r in rows:
        if r["mode"] == "closed":
            assert r["errors"] == 0 and r["ok"] > 0 and r["images_per_s"] > 0
            assert r["server_cpu_ms_per_image"] > 0
    assert result["info"]["csv"].is_file()
    goals = [g["goal"] for g in result["goals"]]
    assert any(g.startswith("1-image requests, concurrency 2") for g in goals)
    assert any("in-process limit" in g for g in goals)
    md = section(result, "python -m bench", {}, config.options, 2)
    assert "| ganserve |" in md and "| naive |" in md and "| in-process |" in md
    assert plot_closed_loop(rows, 64, tmp_path / "plot.png", "t").stat().st_size > 0
