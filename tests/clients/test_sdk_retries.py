"""Retries: which failures are retried, how long the SDK waits, and timeouts."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from ganserve_client import (
    APIStatusError,
    APITimeoutError,
    Client,
    InternalServerError,
    ServiceUnavailableError,
)
from ganserve_client._base import retry_delay
from ganserve_client._constants import DEFAULT_TIMEOUT
from sdk_testlib import Api, error_response, png_response

# (lower, upper) bound of the n-th backoff wait: 0.5 s doubling, up to 25 % jitter off.
BACKOFF = [(0.375, 0.5), (0.75, 1.0), (1.5, 2.0)]

RETRYABLE = {
    "connect": lambda: httpx.ConnectError("refused"),
    "read-timeout": lambda: httpx.ReadTimeout("slow"),
    "reset": lambda: httpx.RemoteProtocolError("peer closed connection"),
    "408": lambda: error_response(408, "timeout"),
    "429": lambda: error_response(429, "slow down"),
    "502": lambda: error_response(502, "bad gateway"),
    "503": lambda: error_response(503, "queue full"),
    "504": lambda: error_response(504, "gateway timeout"),
}


@pytest.mark.parametrize("failure", list(RETRYABLE))
@pytest.mark.parametrize("failures", [0, 1, 2])
def test_fails_n_times_then_succeeds(make_api, failure: str, failures: int) -> None:
    api: Api = make_api(*[RETRYABLE[failure]() for _ in range(failures)], png_response(seed=9))
    grid = api.generate(n=4, seed=9)
    assert grid.seed == 9
    assert len(api.script.requests) == failures + 1
    assert all(api.script.body(i) == {"n": 4, "seed": 9} for i in range(failures + 1))
    assert len(api.sleeps) == failures
    for wait, (low, high) in zip(api.sleeps, BACKOFF, strict=False):
        assert low <= wait <= high


def test_gives_up_after_max_retries(make_api) -> None:
    api: Api = make_api(error_response(503, "queue full"))
    with pytest.raises(ServiceUnavailableError, match="queue full"):
        api.generate()
    assert len(api.script.requests) == 3  # the first attempt and the default 2 retries
    assert len(api.sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422, 500])
def test_no_retry_on_other_errors(make_api, status: int) -> None:
    api: Api = make_api(error_response(status), png_response())
    with pytest.raises(APIStatusError) as info:
        api.generate(n=0)
    assert info.value.status_code == status
    assert len(api.script.requests) == 1
    assert api.sleeps == []


def test_retry_after_seconds_is_honoured(make_api) -> None:
    api: Api = make_api(
        error_response(503, "queue full", **{"Retry-After": "3"}),
        error_response(429, "slow down", **{"Retry-After": "0.25"}),
        png_response(),
    )
    api.generate()
    assert api.sleeps == [3.0, 0.25]


def test_retry_after_http_date_is_honoured(make_api) -> None:
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    api: Api = make_api(error_response(503, "busy", **{"Retry-After": when}), png_response())
    api.generate()
    (wait,) = api.sleeps
    assert 3.0 <= wait <= 5.0


def test_retry_after_is_capped_and_garbage_ignored(make_api) -> None:
    api: Api = make_api(
        error_response(503, "busy", **{"Retry-After": "3600"}),
        error_response(503, "busy", **{"Retry-After": "soon"}),
        png_response(),
    )
    api.generate()
    assert api.sleeps[0] == 60.0
    assert BACKOFF[1][0] <= api.sleeps[1] <= BACKOFF[1][1]


def test_max_retries_per_client_and_per_call(make_api) -> None:
    api: Api = make_api(error_response(502, "down"), max_retries=5)
    with pytest.raises(InternalServerError):
        api.generate()
    assert len(api.script.requests) == 6
    assert api.sleeps[-1] == pytest.approx(8.0, rel=0.25)  # capped at 8 s

    with pytest.raises(InternalServerError):
        api.generate(max_retries=0)
    assert len(api.script.requests) == 7


def test_backoff_is_capped_at_eight_seconds() -> None:
    for retries_done in range(12):
        wait = retry_delay(retries_done, None)
        assert 0.375 <= wait <= 8.0
    assert retry_delay(20, None) >= 6.0
    assert retry_delay(5000, None) <= 8.0  # no overflow with absurd retry counts


def test_timeout_is_sent_with_every_request(make_api) -> None:
    api: Api = make_api(timeout=7.5)
    api.generate()
    assert api.script.last.extensions["timeout"] == httpx.Timeout(7.5).as_dict()
    api.generate(timeout=httpx.Timeout(1.0, connect=0.5))
    assert api.script.last.extensions["timeout"] == httpx.Timeout(1.0, connect=0.5).as_dict()

    default: Api = make_api()
    default.generate()
    assert default.script.last.extensions["timeout"] == DEFAULT_TIMEOUT.as_dict()


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A loopback TCP server that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_real_read_timeout_is_retried_then_raised(silent_server) -> None:
    url, accepted = silent_server
    sleeps: list[float] = []
    started = time.monotonic()
    with Client(url, timeout=0.2, max_retries=1, sleep=sleeps.append) as client:
        with pytest.raises(APITimeoutError, match="ReadTimeout"):
            client.generate(n=1)
    assert time.monotonic() - started < 5
    assert len(sleeps) == 1
    deadline = time.monotonic() + 2  # the accepting thread may lag behind the client
    while len(accepted) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(accepted) == 2  # one connection per attempt
