"""Fixtures of the bench tests: the test app served by uvicorn on a loopback port."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import uvicorn
from bench_testlib import LocalServer, make_app

from bench.servers import free_port


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """The test app served by uvicorn in a thread on a free 127.0.0.1 port."""
    port = free_port()
    hits: Counter[str] = Counter()
    config = uvicorn.Config(
        make_app(hits), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield LocalServer(f"http://127.0.0.1:{port}", hits)
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def fresh(server: LocalServer) -> LocalServer:
    """The server with its hit counters reset."""
    server.hits.clear()
    return server
