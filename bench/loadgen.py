"""An async HTTP load generator on httpx: closed and open loop, warm-up, windows until stable.

Like Triton's perf_analyzer, a measurement keeps the load on while it takes
measurement windows, and stops once the last ``stable_windows`` windows agree
(throughput and median latency within ``stability`` of their mean) or a bound is
reached. Every measurement is bounded in requests (``max_requests``) and in time
(``max_seconds``); requests still in flight at the time bound are cancelled and
counted as ``unfinished``, never as server errors.

- Closed loop: ``concurrency`` workers, each sends its next request when the last
  one answered. Warm-up lasts at least ``warmup_s`` and until every worker has had
  one answer (so the queue has reached its steady depth).
- Open loop: requests start at a fixed ``rate`` (evenly spaced) whatever the
  answers; latency is measured from each request's scheduled start, so a client
  that falls behind does not hide queueing. At most ``max_in_flight`` requests are
  outstanding; a request due while that many are out is not sent and counted as
  ``not_sent``.

Throughput and latency come from the measured windows; error counts cover every
request of the measurement, warm-up included. Errors are counted by kind:
``503+retry-after``, ``503`` (without Retry-After), other status codes by number,
``timeout``, ``connect``, ``protocol``, ``bad-body`` (a 200 that is not a PNG).
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RETRY_AFTER_503 = "503+retry-after"
# The CSV's error columns: error_columns()'s counts, then every kind with its count.
ERROR_COLUMNS = (
    "errors",
    "errors_503_retry_after",
    "errors_503_no_retry_after",
    "errors_timeout",
    "errors_5xx",
    "errors_other",
    "errors_by_kind",
)


def error_columns(errors: Counter[str]) -> dict[str, int]:
    """The CSV's error counts: all, 503 with and without Retry-After, timeouts, other 5xx,
    the rest."""
    n503 = errors.get(RETRY_AFTER_503, 0)
    bare = errors.get("503", 0)
    timeouts = errors.get("timeout", 0)
    n5xx = sum(v for k, v in errors.items() if k.isdigit() and k.startswith("5") and k != "503")
    total = sum(errors.values())
    return {
        "errors": total,
        "errors_503_retry_after": n503,
        "errors_503_no_retry_after": bare,
        "errors_timeout": timeouts,
        "errors_5xx": n5xx,
        "errors_other": total - n503 - bare - timeouts - n5xx,
    }


def errors_by_kind(errors: Counter[str]) -> str:
    """The CSV's ``errors_by_kind``: ``kind:count`` pairs by kind, ``;`` between them."""
    return ";".join(f"{k}:{v}" for k, v in sorted(errors.items()))


class Rates:
    """Rates and error total of a result that has these counts (fields or properties)."""

    completed: int  # answers of any status
    ok: int  # successful answers
    duration_s: float
    images_per_request: int
    errors: Counter[str]  # by kind

    @property
    def requests_per_s(self) -> float:
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def images_per_s(self) -> float:
        return self.ok * self.images_per_request / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class RequestSpec:
    """One request shape: method, path, JSON body (or query), images per answer."""

    method: str = "POST"
    path: str = "/generate"
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    images: int = 1  # images in one successful answer
    vary_seed: bool = True  # set "seed" to the request's index, so no two answers are alike
    expect_png: bool = True  # a 200 whose body is not a PNG counts as "bad-body"

    def body(self, index: int) -> dict[str, Any] | None:
        """The JSON body of request ``index``."""
        if self.json is None:
            return None
        if not self.vary_seed:
            return self.json
        return {**self.json, "seed": index}


@dataclass(frozen=True)
class Options:
    """How long and how hard a measurement runs; every loop ends at these bounds."""

    warmup_s: float = 1.0  # least warm-up time
    max_warmup_s: float = 20.0  # most warm-up time (closed loop waits for one answer per worker)
    window_s: float = 2.0  # least window length
    min_window_requests: int = 30  # a window also waits for this many answers ...
    max_window_s: float = 10.0  # ... but never longer than this
    stable_windows: int = 3  # windows that must agree; the result aggregates them
    max_windows: int = 8  # most windows before giving up on stability
    stability: float = 0.10  # windows agree when each is within this fraction of their mean
    max_requests: int = 100_000  # most requests sent
    max_seconds: float = 60.0  # most seconds, warm-up included
    timeout_s: float = 60.0  # per-request timeout (also bounded by what is left of max_seconds)
    max_in_flight: int = 512  # open loop: most outstanding requests


@dataclass(frozen=True)
class Sample:
    """One finished request."""

    start: float  # perf_counter seconds (open loop: the scheduled start)
    end: float
    outcome: str  # "ok" or an error kind

    @property
    def latency(self) -> float:
        return self.end - self.start


@dataclass
class Window:
    """Throughput and latency of one measurement window."""

    start: float
    end: float
    completed: int
    ok: int
    p50: float  # seconds; nan without successful answers

    @property
    def throughput(self) -> float:
        return self.completed / max(self.end - self.start, 1e-9)


@dataclass
class Measurement(Rates):
    """The result of one closed- or open-loop measurement."""

    mode: str  # "closed" or "open"
    concurrency: int | None
    rate: float | None
    images_per_request: int
    sent: int  # requests sent, warm-up included
    completed: int  # answers (of any status) in the measured windows
    ok: int  # successful answers in the measured windows
    duration_s: float  # length of the measured windows
    latencies: list[float]  # seconds, successful answers in the measured windows
    errors: Counter[str]  # by kind, over every request of the measurement
    ok_total: int = 0  # successful answers, warm-up included
    windows: list[Window] = field(default_factory=list)
    stable: bool = False
    stop_reason: str = ""
    unfinished: int = 0  # in flight when the time bound cancelled them
    not_sent: int = 0  # open loop: due while max_in_flight were outstanding
    elapsed_s: float = 0.0  # wall time of the whole measurement

    def percentile(self, q: float) -> float:
        """Latency percentile ``q`` (0..100) in seconds over the successful answers."""
        return percentile(self.latencies, q)


def percentile(values: list[float] | np.ndarray, q: float) -> float:
    """The ``q``-th percentile (linear interpolation between order statistics); nan if empty."""
    if len(values) == 0:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def check_loopback(base_url: str) -> None:
    """Raise ValueError unless ``base_url`` names a loopback host: the bench loads nothing else."""
    host = urlsplit(base_url).hostname or ""
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise ValueError(f"the load generator only targets loopback addresses, not {host!r}")


def classify(response: httpx.Response | None, exc: BaseException | None, spec: RequestSpec) -> str:
    """The outcome of one request: "ok" or an error kind."""
    if exc is not None:
        if isinstance(exc, httpx.TimeoutException):
            return "timeout"
        if isinstance(exc, httpx.ConnectError):
            return "connect"
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return "protocol"
        return type(exc).__name__
    assert response is not None
    status = response.status_code
    if 200 <= status < 300:
        if spec.expect_png and not response.content.startswith(PNG_SIGNATURE):
            return "bad-body"
        return "ok"
    if status == 503:
        return RETRY_AFTER_503 if response.headers.get("retry-after") else "503"
    return str(status)


class ClientPool:
    """httpx clients of one kept-alive connection each, one per request in flight.

    One shared ``AsyncClient`` with N connections costs several times more CPU per
    request at 32+ connections (its pool bookkeeping grows with N); on a machine
    where the load generator shares the cores with the server, that would be taken
    from the server being measured.
    """

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        check_loopback(base_url)
        self.base_url = base_url
        self.timeout_s = timeout_s
        # One TLS context for every client: httpx builds one per client otherwise (loading
        # the CA store, ~0.2 s of CPU each), although loopback HTTP never uses it.
        self._tls = ssl.create_default_context()
        self._free: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []

    def acquire(self) -> httpx.AsyncClient:
        """A client whose connection is idle (a new one when none is)."""
        return self._free.pop() if self._free else self._new()

    def _new(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        client = httpx.AsyncClient(
            base_url=self.base_url,
            limits=limits,
            trust_env=False,
            timeout=self.timeout_s,
            verify=self._tls,
        )
        self._all.append(client)
        return client

    def release(self, client: httpx.AsyncClient) -> None:
        self._free.append(client)

    def reserve(self, count: int) -> None:
        """Create clients up front so that none is built while the clock runs."""
        while len(self._all) < count:
            self._free.append(self._new())

    @property
    def size(self) -> int:
        return len(self._all)

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self._all), return_exceptions=True)
        self._all.clear()
        self._free.clear()


class _Load:
    """Shared state of one measurement: request tickets, samples, the stop signal."""

    def __init__(self, clients: ClientPool, spec: RequestSpec, options: Options) -> None:
        self.clients = clients
        self.spec = spec
        self.options = options
        self.samples: list[Sample] = []
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self.in_flight = 0  # tickets taken whose request has not finished
        self.cut = 0  # requests that failed only because the time bound ended them
        self.started = time.perf_counter()
        self.deadline = self.started + options.max_seconds
        self.stop = asyncio.Event()

    def take(self) -> int | None:
        """A ticket (request index) while the request bound allows one more."""
        if self.stop.is_set() or self.sent >= self.options.max_requests:
            return None
        self.sent += 1
        self.in_flight += 1
        return self.sent - 1

    @property
    def drained(self) -> bool:
        """Every request the bound allows was sent and has finished."""
        return self.sent >= self.options.max_requests and self.in_flight == 0

    async def send(self, index: int, start: float) -> None:
        """Send request ``index`` (a ticket) and record its sample (latency from ``start``)."""
        try:
            await self._send(index, start)
        finally:
            self.in_flight -= 1

    async def _send(self, index: int, start: float) -> None:
        spec = self.spec
        timeout = max(0.01, min(self.options.timeout_s, self.deadline - time.perf_counter()))
        response: httpx.Response | None = None
        error: BaseException | None = None
        client = self.clients.acquire()
        try:
            response = await client.request(
                spec.method,
                spec.path,
                json=spec.body(index),
                params=spec.params,
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            error = exc
        finally:
            self.clients.release(client)
        if error is not None and time.perf_counter() >= self.deadline - 0.005:
            self.cut += 1  # ended by the time bound: unfinished, not a server error
            return
        outcome = classify(response, error, spec)
        if outcome != "ok":
            self.errors[outcome] += 1
        self.samples.append(Sample(start, time.perf_counter(), outcome))


def _window(samples: list[Sample], start: float, end: float) -> Window:
    inside = [s for s in samples if start <= s.end < end]
    ok = [s.latency for s in inside if s.outcome == "ok"]
    return Window(start, end, len(inside), len(ok), percentile(ok, 50))


def is_stable(windows: list[Window], count: int, tolerance: float) -> bool:
    """Whether the last ``count`` windows agree on throughput and median latency."""
    if len(windows) < count:
        return False
    last = windows[-count:]
    for values in ([w.throughput for w in last], [w.p50 for w in last]):
        if any(math.isnan(v) for v in values):
            return False
        mean = sum(values) / len(values)
        if mean <= 0 or any(abs(v - mean) > tolerance * mean for v in values):
            return False
    return True


async def _wait_until(load: _Load, ready: Callable[[float], bool], longest: float) -> str:
    """Sleep until ``ready(now)``, ``longest`` seconds passed, or a bound is hit; say which."""
    begin = time.perf_counter()
    while True:
        now = time.perf_counter()
        if now >= load.deadline:
            return "time bound"
        if load.drained:
            return "request bound"
        if ready(now):
            return ""
        if now - begin >= longest:
            return "timeout"
        await asyncio.sleep(0.02)


async def _control(load: _Load, warmup_answers: int) -> tuple[list[Window], bool, str, float]:
    """Warm up, then take windows until stable or bounded; return them and why it stopped."""
    o = load.options
    start = load.started
    reason = await _wait_until(
        load,
        lambda now: now - start >= o.warmup_s and len(load.samples) >= warmup_answers,
        o.max_warmup_s,
    )
    windows: list[Window] = []
    if reason and reason != "timeout":
        return windows, False, f"{reason} during warm-up", start
    measured_from = time.perf_counter()
    while len(windows) < o.max_windows:
        w_start = time.perf_counter()
        first = len(load.samples)
        reason = await _wait_until(
            load,
            lambda now, w=w_start, f=first: (
                now - w >= o.window_s and len(load.samples) - f >= o.min_window_requests
            ),
            o.max_window_s,
        )
        w_end = time.perf_counter()
        if reason in ("time bound", "request bound"):
            # a cut-short window counts when it is long enough, or is all there is
            last = _window(load.samples, w_start, w_end)
            if last.completed and (w_end - w_start >= o.window_s / 2 or not windows):
                windows.append(last)
            return windows, is_stable(windows, o.stable_windows, o.stability), reason, measured_from
        windows.append(_window(load.samples, w_start, w_end))
        if is_stable(windows, o.stable_windows, o.stability):
            return windows, True, "stable", measured_from
    return windows, False, "window bound", measured_from


def _result(
    load: _Load,
    mode: str,
    windows: list[Window],
    stable: bool,
    reason: str,
    concurrency: int | None,
    rate: float | None,
    unfinished: int,
    not_sent: int,
) -> Measurement:
    """Aggregate the last ``stable_windows`` windows (all of them when fewer)."""
    used = windows[-load.options.stable_windows :]
    if used:
        begin, end = used[0].start, used[-1].end
        inside = [s for s in load.samples if begin <= s.end < end]
    else:
        begin = end = 0.0
        inside = []
    latencies = [s.latency for s in inside if s.outcome == "ok"]
    return Measurement(
        mode=mode,
        concurrency=concurrency,
        rate=rate,
        images_per_request=load.spec.images,
        sent=load.sent,
        completed=len(inside),
        ok=len(latencies),
        duration_s=end - begin,
        latencies=latencies,
        errors=Counter(load.errors),
        ok_total=sum(1 for s in load.samples if s.outcome == "ok"),
        windows=windows,
        stable=stable,
        stop_reason=reason,
        unfinished=unfinished + load.cut,
        not_sent=not_sent,
        elapsed_s=time.perf_counter() - load.started,
    )


async def _finish(tasks: set[asyncio.Task[None]] | list[asyncio.Task[None]]) -> int:
    """Cancel what is still running; return how many were cut off."""
    pending = [t for t in tasks if not t.done()]
    for t in pending:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(pending)


async def closed_loop(
    base_url: str, spec: RequestSpec, concurrency: int, options: Options
) -> Measurement:
    """``concurrency`` workers send requests back to back until stable or bounded."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    clients = ClientPool(base_url, options.timeout_s)
    clients.reserve(min(concurrency, options.max_requests))
    load = _Load(clients, spec, options)

    async def worker() -> None:
        while (index := load.take()) is not None:
            await load.send(index, time.perf_counter())

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        windows, stable, reason, _ = await _control(load, warmup_answers=concurrency)
    finally:
        load.stop.set()
        unfinished = await _finish(workers)
        await clients.aclose()
    return _result(load, "closed", windows, stable, reason, concurrency, None, unfinished, 0)


async def open_loop(base_url: str, spec: RequestSpec, rate: float, options: Options) -> Measurement:
    """Requests start every ``1/rate`` seconds, answered or not, until stable or bounded."""
    if not rate > 0:
        raise ValueError("rate must be positive")
    clients = ClientPool(base_url, options.timeout_s)
    load = _Load(clients, spec, options)
    running: set[asyncio.Task[None]] = set()
    not_sent = 0

    async def schedule() -> None:
        nonlocal not_sent
        t0 = time.perf_counter()
        i = 0
        while not load.stop.is_set():
            due = t0 + i / rate
            i += 1
            await asyncio.sleep(max(0.0, due - time.perf_counter()))  # yields even when late
            if load.in_flight >= options.max_in_flight:
                not_sent += 1
                if time.perf_counter() >= load.deadline:
                    return
                continue
            index = load.take()
            if index is None:
                return
            task = asyncio.create_task(load.send(index, due))
            running.add(task)
            task.add_done_callback(running.discard)

    scheduler = asyncio.create_task(schedule())
    try:
        windows, stable, reason, _ = await _control(load, warmup_answers=1)
    finally:
        load.stop.set()
        await _finish([scheduler])
        unfinished = await _finish(set(running))
        await clients.aclose()
    return _result(load, "open", windows, stable, reason, None, rate, unfinished, not_sent)
