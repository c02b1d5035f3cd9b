"""wrk (Debian's ``wrk`` package) as a load generator: closed loop, one JSON line back.

``run_wrk(url, path, body, connections, duration_s)`` runs ``wrk`` with
``bench/wrk_post.lua`` (a POST body per request, the seed counting up), waits for
it, and returns a ``WrkResult``: answers by kind (``ok`` = 200 with a PNG body),
socket errors, latency percentiles and the CPU time wrk itself used (user +
system, from ``wait4``), so the load generator's cost per request is known.

wrk keeps ``connections`` requests in flight for the whole duration (closed loop,
as many connections as concurrency). Requests still in flight when the duration
ends are not counted. Its latency percentiles cover every answer, errors included.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import servers
from bench.loadgen import Rates, check_loopback

LUA = Path(__file__).with_name("wrk_post.lua")
MARKER = "WRK_JSON "


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result line."""


@dataclass
class WrkResult(Rates):
    """One wrk run: what came back, how fast, and what wrk cost."""

    connections: int
    duration_s: float
    completed: int  # answers of any status
    counts: Counter[str]  # "ok", "bad-body", "503+retry-after", other statuses by number
    socket_errors: Counter[str]  # connect, read, write, timeout (non-zero ones)
    latency_ms: dict[str, float]  # "50", "90", "95", "99", "mean", "max"
    bytes_read: int
    client_cpu_s: float = math.nan
    images_per_request: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.counts.get("ok", 0)

    @property
    def errors(self) -> Counter[str]:
        """Every answer or socket event that is not a 200 with a PNG, by kind."""
        out = Counter({k: v for k, v in self.counts.items() if k != "ok" and v})
        out.update({k: v for k, v in self.socket_errors.items() if v})
        return out

    @property
    def client_cpu_ms_per_request(self) -> float:
        return self.client_cpu_s * 1000 / max(self.completed, 1)


def parse(output: str, *, connections: int, images_per_request: int = 1) -> WrkResult:
    """The result of a wrk run from its output (the script's ``WRK_JSON`` line)."""
    lines = [line for line in output.splitlines() if line.startswith(MARKER)]
    if not lines:
        tail = "\n".join(output.strip().splitlines()[-5:])
        raise WrkError(f"wrk printed no result line; its output ended with:\n{tail}")
    data = json.loads(lines[-1][len(MARKER) :])
    latency = data["latency_us"]
    ms = {k: v / 1000 for k, v in latency["percentiles"].items()}
    ms.update(mean=latency["mean"] / 1000, max=latency["max"] / 1000)
    if not data["requests"]:  # wrk's histogram of nothing holds zeros: no latency to report
        ms = dict.fromkeys(ms, math.nan)
    return WrkResult(
        connections=connections,
        duration_s=data["duration_us"] / 1e6,
        completed=int(data["requests"]),
        counts=Counter({str(k): int(v) for k, v in data["counts"].items()}),
        socket_errors=Counter({k: int(v) for k, v in data["socket_errors"].items() if v}),
        latency_ms=ms,
        bytes_read=int(data["bytes"]),
        images_per_request=images_per_request,
    )


def wrk_binary() -> str | None:
    """The path of ``wrk``, or None when it is not installed."""
    return shutil.which("wrk")


def run_wrk(
    url: str,
    path: str,
    body: str,
    *,
    connections: int,
    duration_s: float,
    threads: int = 1,
    first_seed: int = 0,
    images_per_request: int = 1,
    timeout_s: float = 30.0,
) -> WrkResult:
    """Run wrk against ``url`` (loopback only) for ``duration_s`` and parse its result.

    ``body`` is the JSON body with ``{seed}`` where each request's seed goes.
    """
    check_loopback(url)
    binary = wrk_binary()
    if binary is None:
        raise WrkError("wrk is not installed (Debian: apt-get install wrk)")
    seconds = max(1, round(duration_s))
    cmd = [
        binary,
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        str(LUA),
        url,
        "--",
        path,
        body,
        str(first_seed),
    ]
    begin = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise WrkError(f"wrk exited with status {process.returncode}:\n{output.strip()}")
    result = parse(output, connections=connections, images_per_request=images_per_request)
    result.client_cpu_s = usage.ru_utime + usage.ru_stime
    result.extra["wall_s"] = time.perf_counter() - begin
    result.extra["command"] = cmd
    return result


def measure_server(
    server: servers.Server, body: str, *, warmup_s: float = 0.0, **options: Any
) -> tuple[WrkResult, float]:
    """``warmup_s`` of unrecorded load, then one measured wrk run on ``server``'s POST
    /generate (``options``: run_wrk's, the warm-up takes its connections and threads);
    its result and the CPU seconds the server's processes spent during it."""
    assert server.process is not None
    if warmup_s > 0:
        warmup = {k: options[k] for k in ("connections", "threads") if k in options}
        run_wrk(server.url, "/generate", body, duration_s=warmup_s, **warmup)
    before = servers.server_cpu_s(server.process.pid)
    r = run_wrk(server.url, "/generate", body, **options)
    return r, servers.server_cpu_s(server.process.pid) - before
