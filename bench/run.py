"""One benchmark run: ganserve, the naive server and the in-process limit, side by side.

``run(config)`` prepares the model, starts both servers, measures every request
shape (1 image, a 64-image grid) closed loop at each concurrency, the in-process
limit before and after, open loop at fixed rates, and the queue bound with a
small ``GANSERVE_MAX_QUEUE``; it returns the rows (also written as CSV) and the
goals. Every step is bounded in requests and time, and the whole run by
``Config.max_minutes``: steps that would start after it are skipped and named.
"""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import servers
from bench.loadgen import (
    ERROR_COLUMNS,
    Measurement,
    Options,
    RequestSpec,
    closed_loop,
    error_columns,
    errors_by_kind,
    open_loop,
)
from ganserve.card import CardError, ModelCard, default_model

REPO = servers.REPO
SHAPES = (1, 64)  # images per request
CSV_COLUMNS = [
    "run_id",
    "round",
    "system",
    "images_per_request",
    "mode",
    "concurrency",
    "rate",
    "batch",
    "settings",
    "sent",
    "completed",
    "ok",
    "duration_s",
    "requests_per_s",
    "images_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    *ERROR_COLUMNS,
    "unfinished",
    "not_sent",
    "windows",
    "stable",
    "stop_reason",
    "server_cpu_ms_per_image",
    "client_cpu_ms_per_request",
    "notes",
]


@dataclass
class Config:
    """What to measure and for how long."""

    models_dir: Path = REPO / "models"
    model: str | None = None  # unset: the default unconditional model (lowest FID, then name)
    checkpoint: Path | None = None  # G for the naive server; unset: untrained G of the card
    bench_arch: str = "dcgan"  # architecture the bench exports when models_dir holds no model
    own_model: bool = False  # export an untrained bench_arch even when models_dir has models
    concurrency: tuple[int, ...] = (1, 8, 32, 128)
    # open loop: fixed rates per request shape; unset: these fractions of the requests/s
    # ganserve reached closed loop in this run (its capacity here and now)
    rates: dict[int, tuple[float, ...]] | None = None
    rate_fractions: tuple[float, ...] = (0.25, 0.75)
    open_loop_seconds: float = 15.0  # most seconds per open-loop cell
    inprocess_batches: tuple[int, ...] = (1, 8, 32, 64, 128, 256)
    goal_concurrency: int = 32  # the concurrency of the goals, measured in paired rounds
    rounds: int = 3  # paired rounds (in-process, ganserve, naive back to back) for the goals
    overload_queue: int | None = 4  # GANSERVE_MAX_QUEUE of the overload server; None: skip
    overload_concurrency: int = 128
    options: Options = field(
        default_factory=lambda: Options(
            warmup_s=1.0,
            max_warmup_s=15.0,
            window_s=2.0,
            min_window_requests=30,
            max_window_s=8.0,
            max_windows=5,
            max_seconds=25.0,
            timeout_s=60.0,
        )
    )
    inprocess_window_s: float = 1.0
    max_minutes: float = 14.0  # no new step starts after this
    out_dir: Path = REPO / "bench" / "results"
    quick: bool = False


def quick_config(**overrides: Any) -> Config:
    """A shorter run: concurrency 1 and 32, shorter windows, fewer batch sizes."""
    c = Config(
        concurrency=(1, 32),
        rounds=2,
        rate_fractions=(0.5,),
        open_loop_seconds=8.0,
        inprocess_batches=(1, 32, 64, 128),
        options=Options(
            warmup_s=0.5,
            max_warmup_s=8.0,
            window_s=1.0,
            min_window_requests=15,
            max_window_s=4.0,
            max_windows=4,
            max_seconds=15.0,
            timeout_s=30.0,
        ),
        inprocess_window_s=0.5,
        max_minutes=6.0,
        quick=True,
    )
    return replace(c, **overrides)


# -- the model ------------------------------------------------------------------------


@dataclass
class Subject:
    """The model every system runs and where each system gets it from."""

    models_dir: Path  # what ganserve serves
    name: str
    card: ModelCard
    naive_source: tuple[str, Path]  # ("--checkpoint", path) or ("--model-dir", path)
    note: str  # how the model and the naive server's G came to be


def _cards(models_dir: Path) -> dict[str, ModelCard]:
    """The readable cards of the models under ``models_dir`` that have their graph."""
    cards = {}
    if models_dir.is_dir():
        for d in sorted(models_dir.iterdir()):
            try:
                card = ModelCard.load(d)
            except CardError:
                continue
            if card.model_path(d).is_file():
                cards[d.name] = card
    return cards


def _default_model(cards: dict[str, ModelCard]) -> str:
    """The model ganserve serves to requests that name none (``ganserve.card``'s rule)."""
    best = default_model(cards.values(), conditional=False)
    assert best is not None, "no cards"
    return best.name


def build_bench_model(work: Path, arch: str = "dcgan") -> tuple[Path, Path]:
    """An untrained seeded checkpoint of ``arch`` and its export as ``<arch>-bench``.

    Returns the models directory and the checkpoint.
    """
    from export import export_checkpoint
    from training.checkpoint import save_checkpoint, untrained_checkpoint
    from training.networks import get_arch

    spec = get_arch(arch)
    dataset = {
        "name": "untrained",
        "num_classes": 10 if spec.conditional else None,
        "class_names": None,
        "image_shape": list(spec.image_shape),
    }
    options = {"arch": arch, "untrained": True}
    payload = untrained_checkpoint(arch, dataset=dataset, options=options)
    ckpt = save_checkpoint(work / f"{arch}-bench.pt", payload)
    export_checkpoint(ckpt, f"{arch}-bench", work / "models", force=True)
    return work / "models", ckpt


def prepare_subject(config: Config, work: Path) -> Subject:
    """The model to benchmark: from ``config.models_dir``, or one the bench exports itself."""
    cards = {} if config.own_model else _cards(config.models_dir)
    if config.model is not None and config.model not in cards:
        known = ", ".join(cards) or "none"
        raise SystemExit(f"error: no model {config.model!r} in {config.models_dir} ({known})")
    if cards:
        name = config.model or _default_model(cards)
        if config.checkpoint is not None:
            source = ("--checkpoint", config.checkpoint)
            note = f"naive server: G from checkpoint `{config.checkpoint}`"
        else:
            source = ("--model-dir", config.models_dir / name)
            note = (
                f"naive server: an untrained `{cards[name].architecture}` generator built "
                "from the card's architecture (no `--checkpoint` given): the same arithmetic as "
                "the trained weights, other pixels"
            )
        return Subject(config.models_dir, name, cards[name], source, note)
    arch = config.bench_arch
    models_dir, ckpt = build_bench_model(work, arch)
    name = f"{arch}-bench"
    card = ModelCard.load(models_dir / name)
    why = "as asked (`--arch`)" if config.own_model else f"(`{config.models_dir}` held no model)"
    note = (
        f"the bench exported an untrained seeded `{arch}` {why}, and the naive server loads the "
        "same checkpoint: untrained weights cost the same arithmetic as trained ones"
    )
    return Subject(models_dir, name, card, ("--checkpoint", ckpt), note)


# -- rows -------------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2) if math.isfinite(seconds) else math.nan


def measurement_row(
    run_id: str, system: str, m: Measurement, settings: str = "", round_: int | str = ""
) -> dict[str, Any]:
    """One CSV row of an HTTP measurement."""
    return {
        "run_id": run_id,
        "round": round_,
        "system": system,
        "images_per_request": m.images_per_request,
        "mode": m.mode,
        "concurrency": m.concurrency if m.concurrency is not None else "",
        "rate": m.rate if m.rate is not None else "",
        "batch": "",
        "settings": settings,
        "sent": m.sent,
        "completed": m.completed,
        "ok": m.ok,
        "duration_s": round(m.duration_s, 3),
        "requests_per_s": round(m.requests_per_s, 2),
        "images_per_s": round(m.images_per_s, 1),
        "p50_ms": _ms(m.percentile(50)),
        "p95_ms": _ms(m.percentile(95)),
        "p99_ms": _ms(m.percentile(99)),
        **error_columns(m.errors),
        "errors_by_kind": errors_by_kind(m.errors),
        "unfinished": m.unfinished,
        "not_sent": m.not_sent,
        "windows": len(m.windows),
        "stable": m.stable,
        "stop_reason": m.stop_reason,
    }


def inprocess_row(
    run_id: str, images: int, result: dict[str, Any], note: str, round_: int | str = ""
) -> dict[str, Any]:
    """One CSV row of an in-process measurement."""
    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update(
        run_id=run_id,
        round=round_,
        system="in-process",
        images_per_request=images,
        mode="in-process",
        batch=result["batch"],
        notes=f"{result['provider']}, {result['intra_op_threads']} intra-op threads; {note}",
        images_per_s=round(result["images_per_s"], 1),
        requests_per_s=round(result["images_per_s"] / images, 2),
        windows=len(result["windows"]),
        stable=result["stable"],
        errors=0,
        server_cpu_ms_per_image=round(result["cpu_ms_per_image"], 3),
    )
    return row


def write_csv(rows: list[dict[str, Any]], path: Path, columns: Sequence[str] = CSV_COLUMNS) -> Path:
    """``rows`` as a CSV file of ``columns`` (a column a row lacks is left empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})
    return path


# -- machine --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """nproc, the CPU model, the load average, versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import httpx
    import onnxruntime
    import uvicorn

    stack = [name for name in ("httptools", "uvloop") if importlib.util.find_spec(name)]
    return {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": cpu,
        "load": os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3,
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "uvicorn": uvicorn.__version__,
        "httpx": httpx.__version__,
        # uvicorn's "auto" picks httptools and uvloop when they are installed
        "uvicorn_stack": " + ".join(stack) if stack else "h11 + asyncio",
    }


# -- the run ----------------------------------------------------------------------------


class Clock:
    """The run's overall time bound."""

    def __init__(self, minutes: float) -> None:
        self.deadline = time.monotonic() + minutes * 60
        self.skipped: list[str] = []

    def left_s(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, what: str) -> bool:
        if self.left_s() > 0:
            return True
        self.skipped.append(what)
        print(f"  skipped (run time bound reached): {what}", flush=True)
        return False


def spec_for(images: int, model: str) -> RequestSpec:
    """The request of one shape: POST /generate with n images (seed varies per request)."""
    return RequestSpec("POST", "/generate", json={"model": model, "n": images}, images=images)


def run_inprocess(
    model_dir: Path, images: int, batches: tuple[int, ...], window_s: float, log: Path
) -> list[dict[str, Any]]:
    """The in-process sweep in its own process (as a server would be); its results."""
    out = log.with_suffix(".json")
    cmd = [sys.executable, "-m", "bench.inprocess", "--model-dir", str(model_dir)]
    cmd += ["--images", str(images), "--window", str(window_s), "--json", str(out), "--batches"]
    cmd += [str(b) for b in batches]
    with log.open("wb") as f:
        subprocess.run(
            cmd,
            cwd=REPO,
            env=servers.clean_env(),
            stdout=f,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=600,
        )
    return json.loads(out.read_text())


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process has used so far; nan off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _arun(coro: Any) -> Any:
    """Run the load generator's coroutine, on uvloop when it is installed (less client CPU)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def measure_http(
    server: servers.Server,
    spec: RequestSpec,
    options: Options,
    *,
    concurrency: int | None = None,
    rate: float | None = None,
) -> tuple[Measurement, dict[str, float]]:
    """One closed- or open-loop measurement and the CPU it cost the server and the client."""
    pid = server.process.pid if server.process else 0
    server_cpu, client_cpu = process_cpu_s(pid), time.process_time()
    if concurrency is not None:
        m = _arun(closed_loop(server.url, spec, concurrency, options))
    else:
        assert rate is not None
        m = _arun(open_loop(server.url, spec, rate, options))
    answered = max(m.ok_total, 1)
    cpu = {
        "server_cpu_ms_per_image": round(
            (process_cpu_s(pid) - server_cpu) * 1000 / (answered * m.images_per_request), 3
        ),
        "client_cpu_ms_per_request": round((time.process_time() - client_cpu) * 1000 / answered, 3),
    }
    return m, cpu


def _print(system: str, m: Measurement, round_: Any = "") -> None:
    load = f"c={m.concurrency}" if m.concurrency is not None else f"rate={m.rate:g}/s"
    print(
        f"  {system:9s} {m.images_per_request:3d} img {load:11s} {m.images_per_s:8.1f} img/s "
        f"{m.requests_per_s:7.1f} req/s p50 {_ms(m.percentile(50)):8.1f} ms "
        f"p99 {_ms(m.percentile(99)):8.1f} ms errors {m.error_count} "
        f"({'stable' if m.stable else m.stop_reason}, {len(m.windows)} windows) "
        f"{_round(round_)}",
        flush=True,
    )


@contextmanager
def _workdir(config: Config) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ganserve-bench-") as tmp:
        yield Path(tmp)


class _Bench:
    """The steps of one run, appending rows; each step checks the run's time bound first."""

    def __init__(self, config: Config, run_id: str, logs: Path) -> None:
        self.config = config
        self.run_id = run_id
        self.logs = logs
        self.clock = Clock(config.max_minutes)
        self.rows: list[dict[str, Any]] = []

    def options(self, cap_s: float | None = None) -> Options:
        o = self.config.options
        cap = min(o.max_seconds, cap_s or o.max_seconds, max(5.0, self.clock.left_s()))
        return replace(o, max_seconds=cap)

    def http(
        self,
        server: servers.Server,
        spec: RequestSpec,
        *,
        concurrency: int | None = None,
        rate: float | None = None,
        settings: str = "",
        round_: int | str = "",
        cap_s: float | None = None,
    ) -> dict[str, Any] | None:
        load = f"concurrency {concurrency}" if concurrency else f"open loop {rate:g}/s"
        what = f"{server.name}, {spec.images} image(s), {load}"
        if not self.clock.allows(what):
            return None
        m, cpu = measure_http(server, spec, self.options(cap_s), concurrency=concurrency, rate=rate)
        row = {**measurement_row(self.run_id, server.name, m, settings, round_), **cpu}
        self.rows.append(row)
        _print(server.name, m, round_)
        return row

    def inprocess(
        self, model_dir: Path, images: int, batches: tuple[int, ...], note: str, round_: Any = ""
    ) -> list[dict[str, Any]]:
        if not self.clock.allows(f"in-process, {images} image(s), batches {batches}"):
            return []
        tag = "sweep" if len(batches) > 1 else f"b{batches[0]}-r{round_}"
        results = run_inprocess(
            model_dir,
            images,
            batches,
            self.config.inprocess_window_s,
            self.logs / f"inprocess-{images}-{tag}.log",
        )
        for r in results:
            self.rows.append(inprocess_row(self.run_id, images, r, note, round_))
            print(
                f"  {'in-process':9s} {images:3d} img batch {r['batch']:<5d} "
                f"{r['images_per_s']:8.1f} img/s {_round(round_)}",
                flush=True,
            )
        return results


def _round(round_: Any) -> str:
    return f"(round {round_})" if round_ != "" else ""


def run(config: Config) -> dict[str, Any]:
    """The whole benchmark; returns the rows, the goals and what describes the run."""
    started = datetime.now(UTC)
    run_id = "serving-" + started.strftime("%Y%m%dT%H%M%SZ")
    logs = config.out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    bench = _Bench(config, run_id, logs)
    info: dict[str, Any] = {"run_id": run_id, "started": started.isoformat(timespec="seconds")}
    info["machine"] = machine()
    goal_c = config.goal_concurrency
    with _workdir(config) as work, ExitStack() as stack:
        subject = prepare_subject(config, work)
        info.update(model=subject.name, card=subject.card.to_dict(), note=subject.note)
        print(f"model {subject.name} from {subject.models_dir}; {subject.note}", flush=True)
        g = stack.enter_context(servers.ganserve(subject.models_dir, logs / "ganserve.log"))
        n = stack.enter_context(servers.naive(subject.naive_source, logs / "naive.log"))
        info["startup_s"] = {"ganserve": g.startup_s, "naive": n.startup_s}
        print(f"ganserve at {g.url} ({g.startup_s:.1f} s), naive at {n.url} ({n.startup_s:.1f} s)")
        model_dir = subject.models_dir / subject.name
        for images in SHAPES:
            spec = spec_for(images, subject.name)
            batches = tuple(
                b for b in config.inprocess_batches if b % images == 0 or images % b == 0
            )
            sweep = bench.inprocess(model_dir, images, batches, "batch sweep")
            best = (max(sweep, key=lambda r: r["images_per_s"])["batch"],) if sweep else None
            for c in config.concurrency:
                paired = c == goal_c
                if paired and best:
                    bench.inprocess(model_dir, images, best, "best batch", round_=1)
                for server in (g, n):
                    bench.http(server, spec, concurrency=c, round_=1 if paired else "")
            for r in range(2, config.rounds + 1):
                if best:
                    bench.inprocess(model_dir, images, best, "best batch", round_=r)
                for server in (g, n):
                    bench.http(server, spec, concurrency=goal_c, round_=r)
        for images, rates in open_loop_rates(bench.rows, config).items():
            spec = spec_for(images, subject.name)
            for rate in rates:
                for server in (g, n):
                    bench.http(server, spec, rate=rate, cap_s=config.open_loop_seconds)
        n.stop()
        g.stop()
        q = config.overload_queue
        if q is not None and bench.clock.allows("overload"):
            env = {"GANSERVE_MAX_QUEUE": str(q)}
            with servers.ganserve(subject.models_dir, logs / "ganserve-overload.log", env) as go:
                for images in SHAPES:
                    bench.http(
                        go,
                        spec_for(images, subject.name),
                        concurrency=config.overload_concurrency,
                        settings=f"GANSERVE_MAX_QUEUE={q}",
                        cap_s=20.0,
                    )
    info["skipped"] = bench.clock.skipped
    info["elapsed_s"] = (datetime.now(UTC) - started).total_seconds()
    info["csv"] = write_csv(bench.rows, config.out_dir / "serving.csv")
    return {"rows": bench.rows, "info": info, "goals": goals(bench.rows, config)}


def open_loop_rates(rows: list[dict[str, Any]], config: Config) -> dict[int, tuple[float, ...]]:
    """The configured rates, else fractions of ganserve's best closed-loop requests/s per shape."""
    if config.rates is not None:
        return config.rates
    rates: dict[int, tuple[float, ...]] = {}
    for images in SHAPES:
        peak = max(
            (
                float(r["requests_per_s"])
                for r in rows
                if r["system"] == "ganserve"
                and r["mode"] == "closed"
                and r["images_per_request"] == images
                and not r["settings"]
            ),
            default=0.0,
        )
        if peak > 0:
            rates[images] = tuple(round(f * peak, 1) for f in config.rate_fractions)
    return rates


# -- goals ------------------------------------------------------------------------------


def paired_rounds(
    rows: list[dict[str, Any]], images: int, concurrency: int
) -> dict[int, dict[str, dict[str, Any]]]:
    """round -> system -> row, for the rounds measured back to back at ``concurrency``."""
    rounds: dict[int, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r["round"] == "" or r["images_per_request"] != images or r["settings"]:
            continue
        if r["mode"] == "closed" and r["concurrency"] != concurrency:
            continue
        rounds.setdefault(int(r["round"]), {})[r["system"]] = r
    return rounds


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _cpu_note(rounds: dict[int, dict[str, dict[str, Any]]], other: str) -> str:
    """ "; server CPU ms/image, ganserve vs ``other``" (medians over the rounds), or ""."""
    mine, theirs = [], []
    for r in rounds.values():
        try:
            a = float(r["ganserve"]["server_cpu_ms_per_image"])
            b = float(r[other]["server_cpu_ms_per_image"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(a) and math.isfinite(b) and a > 0:
            mine.append(a)
            theirs.append(b)
    if not mine:
        return ""
    a, b = _median(mine), _median(theirs)
    return f"; server CPU per image: ganserve {a:.2f} ms, {other} {b:.2f} ms ({b / a:.2f}x)"


def _ratio_goal(
    rounds: dict[int, dict[str, dict[str, Any]]],
    other: str,
    goal: str,
    target: float,
    show: Callable[[float], str],
) -> dict[str, Any] | None:
    """ganserve's images/s over ``other``'s, round by round; met when the median reaches target."""
    ratios = [
        r["ganserve"]["images_per_s"] / r[other]["images_per_s"]
        for r in rounds.values()
        if "ganserve" in r and other in r and r[other]["images_per_s"] > 0
    ]
    if not ratios:
        return None
    med = _median(ratios)
    by_round = ", ".join(show(x) for x in ratios)
    measured = f"median {show(med)} over {len(ratios)} rounds ({by_round})"
    return {
        "goal": goal,
        "measured": measured + _cpu_note(rounds, other),
        "value": med,
        "met": med >= target,
    }


def _tail_goal(grid: dict[int, dict[str, dict[str, Any]]], c: int) -> dict[str, Any] | None:
    tails = [
        r["ganserve"]["p99_ms"] / r["ganserve"]["p50_ms"]
        for r in grid.values()
        if "ganserve" in r and r["ganserve"]["p50_ms"] and r["ganserve"]["p50_ms"] > 0
    ]
    if not tails:
        return None
    worst = max(tails)
    return {
        "goal": f"64-image requests, concurrency {c}: ganserve p99 <= 3x p50",
        "measured": "p99/p50 " + ", ".join(f"{x:.2f}" for x in tails) + " by round",
        "value": worst,
        "met": worst <= 3,
    }


def _errors_goal(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    plain = [
        r for r in rows if r["system"] == "ganserve" and r["mode"] == "closed" and not r["settings"]
    ]
    if not plain:
        return None
    errors = sum(int(r["errors"]) for r in plain)
    unfinished = sum(int(r["unfinished"]) for r in plain)
    top = max(int(r["concurrency"]) for r in plain)
    return {
        "goal": f"no errors at any concurrency up to {top} (default settings)",
        "measured": f"{errors} errors in {sum(int(r['sent']) for r in plain)} requests "
        f"({unfinished} still in flight when their cell ended, cancelled, not errors)",
        "value": errors,
        "met": errors == 0,
    }


def _queue_goal(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    over = [r for r in rows if str(r["settings"]).startswith("GANSERVE_MAX_QUEUE")]
    if not over:
        return None
    n503 = sum(int(r["errors_503_retry_after"]) for r in over)
    bad = sum(
        int(r["errors_503_no_retry_after"])
        + int(r["errors_timeout"])
        + int(r["errors_5xx"])
        + int(r["errors_other"])
        for r in over
    )
    return {
        "goal": "beyond the queue bound: 503 with Retry-After, no timeouts or 500s",
        "measured": f"{over[0]['settings']}, concurrency {over[0]['concurrency']}: "
        f"{n503} x 503 with Retry-After, {bad} other errors",
        "value": bad,
        "met": n503 > 0 and bad == 0,
    }


def goals(rows: list[dict[str, Any]], config: Config) -> list[dict[str, Any]]:
    """Each goal: the per-round ratios measured back to back, their median, and whether it holds."""
    c = config.goal_concurrency
    grid = paired_rounds(rows, 64, c)
    found = [
        _ratio_goal(
            paired_rounds(rows, 1, c),
            "naive",
            f"1-image requests, concurrency {c}: ganserve images/s >= 3x naive",
            3,
            lambda x: f"{x:.2f}x",
        ),
        _ratio_goal(
            grid,
            "in-process",
            f"64-image requests, concurrency {c}: ganserve >= 85% of the in-process "
            "limit (its best batch size)",
            0.85,
            lambda x: f"{x:.0%}",
        ),
        _tail_goal(grid, c),
        _errors_goal(rows),
        _queue_goal(rows),
    ]
    return [g for g in found if g is not None]
