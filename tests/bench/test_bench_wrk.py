"""wrk as the load generator: its result line is parsed right and answers are counted by kind."""

from __future__ import annotations

import math

import pytest
from bench_testlib import LocalServer

from bench.loadgen import error_columns
from bench.wrk import WrkError, parse, run_wrk, wrk_binary

needs_wrk = pytest.mark.skipif(
    wrk_binary() is None, reason="wrk is not installed (Debian: apt-get install wrk)"
)

OUTPUT = """\
Running 2s test @ http://127.0.0.1:8000
  1 threads and 32 connections
  817 requests in 2.00s, 442.81KB read
WRK_JSON {"duration_us": 2000000, "requests": 800, "bytes": 453435, \
"counts": {"ok": 780, "503+retry-after": 12, "500": 3, "bad-body": 5}, \
"socket_errors": {"connect": 0, "read": 2, "write": 0, "timeout": 1}, \
"latency_us": {"min": 246, "mean": 4679.9, "max": 47997, \
"percentiles": {"50": 1380, "90": 12352, "95": 20654, "99": 36299}}}
"""


def test_parse_reads_counts_latency_and_rates() -> None:
    r = parse(OUTPUT, connections=32, images_per_request=64)
    assert r.completed == 800 and r.ok == 780 and r.duration_s == 2.0
    assert r.requests_per_s == 400.0
    assert r.images_per_s == 780 * 64 / 2.0
    assert r.latency_ms["50"] == pytest.approx(1.38) and r.latency_ms["99"] == pytest.approx(36.299)
    assert r.latency_ms["max"] == pytest.approx(47.997)
    assert dict(r.errors) == {
        "503+retry-after": 12,
        "500": 3,
        "bad-body": 5,
        "read": 2,
        "timeout": 1,
    }
    assert error_columns(r.errors) == {
        "errors": 23,
        "errors_503_retry_after": 12,
        "errors_503_no_retry_after": 0,
        "errors_timeout": 1,
        "errors_5xx": 3,
        "errors_other": 7,
    }


def test_parse_without_a_result_line_names_the_output() -> None:
    with pytest.raises(WrkError, match="(?s)no result line.*unable to connect"):
        parse("unable to connect to 127.0.0.1:1 Connection refused\n", connections=1)


def test_parse_of_no_answers_has_no_latency() -> None:
    empty = OUTPUT.replace('"requests": 800', '"requests": 0')
    assert all(math.isnan(v) for v in parse(empty, connections=1).latency_ms.values())


@needs_wrk
def test_wrk_counts_every_kind_of_answer(fresh: LocalServer) -> None:
    """Seeds count up from 0, and the test app fails every tenth seed of each kind."""
    r = run_wrk(fresh.url, "/generate", '{"n": 1, "seed": {seed}}', connections=4, duration_s=1)
    assert r.completed == sum(r.counts.values()) > 40
    assert set(r.counts) == {"ok", "500", "503", "503+retry-after", "bad-body"}
    for kind in ("500", "503", "503+retry-after", "bad-body"):
        assert abs(r.counts[kind] - r.completed / 10) <= 4 + 1  # in flight at the end: <= 4
    assert r.ok == pytest.approx(r.completed * 0.6, abs=5 * 4)
    assert fresh.hits["generate"] >= r.completed
    assert r.client_cpu_s > 0


@needs_wrk
def test_wrk_latency_percentiles_of_known_latencies(fresh: LocalServer) -> None:
    """One request in ten takes 300 ms, the rest 20 ms (one connection)."""
    r = run_wrk(fresh.url, "/slow", '{"seed": {seed}}', connections=1, duration_s=2)
    assert r.ok == r.completed >= 20
    assert 20 <= r.latency_ms["50"] < 200
    assert r.latency_ms["99"] >= 300


def test_wrk_only_targets_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        run_wrk("http://192.0.2.1:80", "/", "{}", connections=1, duration_s=1)
