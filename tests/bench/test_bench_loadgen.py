"""The load generator: it counts errors by kind, stops at its bounds, gets percentiles right."""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np
import pytest
from bench_testlib import LocalServer, failure_of

from bench.loadgen import (
    Options,
    RequestSpec,
    Window,
    check_loopback,
    closed_loop,
    is_stable,
    open_loop,
    percentile,
)
from bench.servers import free_port

# Never stable (windows must agree exactly), so only the request or time bound ends a run.
UNSTABLE = Options(
    warmup_s=0.0,
    window_s=0.2,
    min_window_requests=1,
    max_window_s=1.0,
    max_windows=1000,
    stability=0.0,
    max_seconds=30.0,
    timeout_s=10.0,
)


def expected_errors(n: int) -> dict[str, int]:
    kinds = [failure_of(seed) for seed in range(n)]
    return {k: kinds.count(k) for k in set(kinds) if k is not None}


@pytest.mark.parametrize("concurrency", [1, 8])
def test_closed_loop_counts_every_error_by_kind(fresh: LocalServer, concurrency: int) -> None:
    options = Options(**{**UNSTABLE.__dict__, "max_requests": 100})
    m = asyncio.run(closed_loop(fresh.url, RequestSpec(json={}), concurrency, options))
    assert m.sent == 100 and fresh.hits["generate"] == 100
    assert dict(m.errors) == expected_errors(100)
    assert dict(m.errors) == {"500": 10, "503": 10, "503+retry-after": 10, "bad-body": 10}
    assert m.ok_total == 60
    assert m.stop_reason == "request bound"


def test_open_loop_counts_every_error_by_kind(fresh: LocalServer) -> None:
    options = Options(**{**UNSTABLE.__dict__, "max_requests": 60})
    m = asyncio.run(open_loop(fresh.url, RequestSpec(json={}), 200.0, options))
    assert m.sent == 60 and fresh.hits["generate"] == 60
    assert dict(m.errors) == expected_errors(60)
    assert m.not_sent == 0


def test_timeouts_and_refused_connections_are_errors(fresh: LocalServer) -> None:
    options = Options(**{**UNSTABLE.__dict__, "max_requests": 4, "timeout_s": 0.3})
    m = asyncio.run(closed_loop(fresh.url, RequestSpec(path="/hang", json={}), 2, options))
    assert dict(m.errors) == {"timeout": 4}
    closed_port = f"http://127.0.0.1:{free_port()}"
    m = asyncio.run(closed_loop(closed_port, RequestSpec(json={}), 2, options))
    assert dict(m.errors) == {"connect": 4}


def test_stops_at_its_request_bound(fresh: LocalServer) -> None:
    options = Options(**{**UNSTABLE.__dict__, "max_requests": 37})
    m = asyncio.run(closed_loop(fresh.url, RequestSpec(path="/steady", json={}), 8, options))
    assert m.sent == 37
    assert fresh.hits["steady"] == 37
    assert m.unfinished == 0


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_stops_at_its_time_bound(fresh: LocalServer, mode: str) -> None:
    options = Options(**{**UNSTABLE.__dict__, "max_seconds": 1.5, "max_requests": 10**6})
    spec = RequestSpec(path="/hang", json={})
    start = time.perf_counter()
    if mode == "closed":
        m = asyncio.run(closed_loop(fresh.url, spec, 4, options))
    else:
        m = asyncio.run(open_loop(fresh.url, spec, 20.0, options))
    elapsed = time.perf_counter() - start
    assert 1.4 <= elapsed < 4.0
    assert m.stop_reason.startswith("time bound")
    # every request hung past the bound: cut off and counted as unfinished, not as errors
    assert m.error_count == 0 and m.unfinished == m.sent > 0


def test_stops_once_windows_agree(fresh: LocalServer) -> None:
    options = Options(
        warmup_s=0.2, window_s=0.3, min_window_requests=5, stable_windows=3, stability=1.0
    )
    m = asyncio.run(closed_loop(fresh.url, RequestSpec(path="/steady", json={}), 4, options))
    assert m.stable and m.stop_reason == "stable"
    assert len(m.windows) == 3
    assert m.requests_per_s > 0 and m.images_per_s == pytest.approx(m.requests_per_s * 1)
    assert m.duration_s == pytest.approx(sum(w.end - w.start for w in m.windows), rel=0.05)


def test_percentiles_of_known_server_latencies(fresh: LocalServer) -> None:
    """One request in ten takes 300 ms, the rest 20 ms: p50 is fast, p95 and p99 slow."""
    options = Options(
        warmup_s=0.0,
        window_s=60.0,
        max_window_s=60.0,
        min_window_requests=1000,
        stable_windows=1,
        max_requests=100,
    )  # one window from the first answer to the request bound
    m = asyncio.run(closed_loop(fresh.url, RequestSpec(path="/slow", json={}), 1, options))
    slow = sum(1 for v in m.latencies if v >= 0.3)
    assert slow == 9  # seeds 10..90 (seed 0 answered during warm-up)
    assert 0.02 <= m.percentile(50) < 0.2
    assert 0.3 <= m.percentile(95) < 0.5
    assert 0.3 <= m.percentile(99) < 0.5


def test_percentile_on_known_distributions() -> None:
    assert percentile(list(range(1, 101)), 50) == pytest.approx(50.5)
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))
    # exponential(1): the q-quantile is -ln(1 - q)
    samples = np.random.default_rng(0).exponential(1.0, 200_000)
    for q in (50, 95, 99):
        assert percentile(samples, q) == pytest.approx(-math.log(1 - q / 100), rel=0.02)


def test_stability_rule() -> None:
    def w(throughput: float, p50: float) -> Window:
        return Window(0.0, 1.0, int(throughput), int(throughput), p50)

    assert is_stable([w(100, 0.1), w(105, 0.1), w(98, 0.105)], 3, 0.1)
    assert not is_stable([w(100, 0.1), w(105, 0.1)], 3, 0.1)  # too few windows
    assert not is_stable([w(100, 0.1), w(140, 0.1), w(98, 0.1)], 3, 0.1)
    assert not is_stable([w(100, 0.1), w(100, 0.2), w(100, 0.1)], 3, 0.1)
    assert not is_stable([w(100, math.nan)] * 3, 3, 0.1)


def test_only_loopback_targets() -> None:
    for url in ("http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:80"):
        check_loopback(url)
    for url in ("http://10.0.0.1:8000", "http://example.com"):
        with pytest.raises(ValueError, match="loopback"):
            check_loopback(url)
    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(closed_loop("http://192.0.2.1:80", RequestSpec(), 1, Options()))


def test_request_bodies_carry_the_request_index() -> None:
    spec = RequestSpec(json={"n": 64, "model": "m"})
    assert spec.body(7) == {"n": 64, "model": "m", "seed": 7}
    assert RequestSpec(json={"n": 1}, vary_seed=False).body(7) == {"n": 1}
