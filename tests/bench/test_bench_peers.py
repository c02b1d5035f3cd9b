"""The peers (BentoML, Ray Serve) start in their own environments and answer ganserve's images.

The same PNG bytes, or pixels within one grey level where ganserve's load-time graph
rewrite (service.graph_rewrite; the peers run the file's graph) rounds a value the other way.

Each peer's environment is built on first use under bench/.venvs (a few minutes,
from the package registry); a peer whose environment cannot be built is skipped,
naming why.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from bench import servers
from bench.peers import envs
from service import graph_rewrite

pytestmark = pytest.mark.slow

MODEL = "dcgan-fashion"
REQUESTS = [
    {"model": MODEL, "n": 1, "seed": 7},
    {"model": MODEL, "n": 64, "seed": 3},
    {"n": 5, "seed": 11, "columns": 2, "padding": 0},
]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory holding only the shipped dcgan-fashion."""
    out = tmp_path_factory.mktemp("models")
    shutil.copytree(servers.REPO / "models" / MODEL, out / MODEL)
    return out


@pytest.fixture(scope="module")
def ganserve_answers(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    log = tmp_path_factory.mktemp("logs") / "ganserve.log"
    with servers.ganserve(models_dir, log) as g:
        return [_post(g.url, body).content for body in REQUESTS]


def _post(url: str, body: dict[str, object]) -> httpx.Response:
    response = httpx.post(f"{url}/generate", json=body, timeout=60, trust_env=False)
    return response


def _python(peer: str) -> Path:
    try:
        return envs.ensure(peer)
    except (envs.EnvError, OSError) as exc:
        pytest.skip(f"the {peer} environment could not be built here: {exc}")


@pytest.fixture(scope="module", params=["bentoml", "bentoml-norefresh", "ray"])
def peer(
    request: pytest.FixtureRequest, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[servers.Server]:
    name = request.param
    log = tmp_path_factory.mktemp("logs") / f"{name}.log"
    if name.startswith("bentoml"):
        server = servers.bentoml(
            models_dir / MODEL,
            log,
            _python("bentoml"),
            session_refresh=name == "bentoml",
        )
    else:
        server = servers.ray(models_dir / MODEL, log, _python("ray"))
    with server:
        yield server
    assert not servers.server_pids(server.process.pid)  # nothing of it is left running


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_peer_answers_the_image_ganserve_answers(
    peer: servers.Server, ganserve_answers: list[bytes]
) -> None:
    for body, expected in zip(REQUESTS, ganserve_answers, strict=True):
        response = _post(peer.url, body)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        assert expected.startswith(b"\x89PNG"), body
        if response.content != expected:
            mismatch = graph_rewrite.check(_pixels(expected), _pixels(response.content))
            assert mismatch is None, (body, mismatch)


def test_peer_refuses_bad_requests_with_4xx(peer: servers.Server) -> None:
    for body in ({"n": 0}, {"n": 1, "model": "no-such-model"}, {"n": 257}):
        response = _post(peer.url, body)
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)


def test_peer_server_cpu_is_measured_over_its_processes(peer: servers.Server) -> None:
    assert peer.process is not None
    pids = servers.server_pids(peer.process.pid)
    assert peer.process.pid in pids and len(pids) >= 2  # the framework runs helper processes
    before = servers.server_cpu_s(peer.process.pid)
    for seed in range(20):
        assert _post(peer.url, {"n": 16, "seed": seed}).status_code == 200
    assert servers.server_cpu_s(peer.process.pid) > before
