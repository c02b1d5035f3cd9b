"""End to end: real uvicorn processes on a free loopback port, called over HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_testlib import decode_png, metric_value

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        env=os.environ | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[str]:
    """``python -m service`` (what ``make serve`` runs) on a free port."""
    port = free_port()
    proc = start_server(
        [
            "-m",
            "service",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--models-dir",
            str(models_dir),
        ],
        {"GANSERVE_LOG_LEVEL": "warning"},  # default batching settings
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
        yield url
    finally:
        stop(proc)


def test_serves_png_grids_over_http(server: str) -> None:
    r = httpx.get(f"{server}/generate", params={"n": 16, "seed": 3})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-seed"] == "3"
    assert decode_png(r.content).shape == (122, 122, 1)
    assert httpx.post(f"{server}/generate", json={"n": 16, "seed": 3}).content == r.content
    bad = httpx.post(f"{server}/generate", json={"n": 0})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "n"]


def test_64_concurrent_requests_are_batched(server: str) -> None:
    """Every request succeeds, with the same bytes as alone, in fewer session runs than requests."""

    def runs() -> float:
        text = httpx.get(f"{server}/metrics").text
        return metric_value(text, "ganserve_session_runs_total", model="dcgan-fashion")

    alone = {
        seed: httpx.post(f"{server}/generate", json={"n": 2, "seed": seed}).content
        for seed in (0, 31, 63)
    }
    before = runs()

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server, limits=limits, timeout=60) as client:
            return await asyncio.gather(
                *(client.post("/generate", json={"n": 2, "seed": seed}) for seed in range(64))
            )

    responses = asyncio.run(burst())
    used = runs() - before
    assert [r.status_code for r in responses] == [200] * 64
    assert [int(r.headers["x-seed"]) for r in responses] == list(range(64))
    for seed, content in alone.items():
        assert responses[seed].content == content
    print(f"{used} session runs for 64 requests")
    assert 1 <= used < 64, f"{used} session runs for 64 requests"


def test_uvicorn_factory_command(models_dir: Path) -> None:
    """``uvicorn --factory service.app:create_app`` with settings from GANSERVE_* variables."""
    port = free_port()
    proc = start_server(
        ["-m", "uvicorn", "--factory", "service.app:create_app", "--port", str(port)],
        {"GANSERVE_MODELS_DIR": str(models_dir), "GANSERVE_DEFAULT_MODEL": "dcgan64-rgb"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
        r = httpx.get(f"{url}/generate", params={"n": 1, "seed": 0})
        assert r.status_code == 200
        assert r.headers["x-model"] == "dcgan64-rgb"
    finally:
        log = stop(proc)
    assert "loaded model dcgan64-rgb" in log


def test_missing_models_dir_is_a_one_line_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service", "--models-dir", str(tmp_path / "nope")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: models directory {tmp_path / 'nope'} does not exist"


def test_invalid_setting_is_a_one_line_error(models_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service", "--models-dir", str(models_dir)],
        cwd=REPO,
        env=os.environ | {"GANSERVE_MAX_BATCH": "zero"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: invalid settings: max_batch:")
    assert "Traceback" not in out.stderr


def test_worker_processes_share_the_cores_between_their_sessions(models_dir) -> None:
    """``--workers 2`` gives each worker's sessions half the usable cores (at least one)."""
    from ganserve.session import usable_cores
    from service.__main__ import worker_threads

    assert [worker_threads(2, n) for n in (1, 2, 3)] == [2, 1, 1]
    assert worker_threads(32, 2) == 8
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "service", "--port", str(port), "--models-dir", str(models_dir)]
    proc = start_server([*args, "--workers", "2"], {})
    try:
        wait_ready(proc, url)
        models = httpx.get(f"{url}/models", timeout=10).json()["models"]
        expected = worker_threads(usable_cores(), 2)
        assert {m["intra_op_threads"] for m in models} == {expected}
    finally:
        out = stop(proc)
    assert f"2 worker processes on {usable_cores()} cores: {expected}" in out
    explicit = start_server([*args, "--workers", "2"], {"GANSERVE_INTRA_OP_THREADS": "3"})
    try:
        wait_ready(explicit, url)
        models = httpx.get(f"{url}/models", timeout=10).json()["models"]
        assert {m["intra_op_threads"] for m in models} == {3}
    finally:
        stop(explicit)


def test_zero_workers_is_refused_in_one_line(models_dir) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--workers", "0", "--models-dir", str(models_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --workers must be at least 1, not 0"
