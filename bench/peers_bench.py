"""ganserve against the serving frameworks users would pick instead, under wrk.

    python -m bench.peers_bench [--seconds 20] [--rounds 3] [--connections 32]
    python -m bench --peers     # the same after the serving benchmark (make bench ARGS=--peers)

The same exported generator, the same request (``POST /generate {"model", "n",
"seed"}``, the seed counting up) and the same images from every system (the same PNG
bytes, or pixels within one grey level where ganserve's load-time graph rewrite rounds a
value the other way):

- **ganserve** as ``make serve`` runs it (``python -m service``), 1 and 2 workers;
- **naive**: ``bench/naive_server.py`` (FastAPI + eager PyTorch per request), 1 and 2
  uvicorn workers (its own pixels: an untrained generator of the card's architecture
  unless a checkpoint is given);
- **BentoML** (``bench/peers/bentoml_service.py``): adaptive batching as its
  documentation shows it, and the same with the inter-service session refresh
  disabled (the workaround for its HTTP 500s under load), 1 and 2 API workers;
- **Ray Serve** (``bench/peers/ray_service.py``): ``@serve.batch``, 1 and 2 replicas.

Each round starts every system in turn on its own (nothing else of the bench
running), loads it with wrk (``bench/wrk.py``: ``connections`` connections, a
warm-up, then one measured cell per request shape), and stops it; rounds repeat
the order, so every system meets the machine's load of every phase. Figures are
medians over the rounds; errors are summed. Server CPU per image: the CPU time of
all the system's processes over the measured cell divided by the images it
answered; client CPU per request: wrk's own CPU time over the answers.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import servers
from bench.loadgen import ERROR_COLUMNS, error_columns, errors_by_kind
from bench.peers import envs
from bench.report import figure as _f
from bench.run import REPO, Config, machine, prepare_subject, write_csv
from bench.wrk import WrkError, WrkResult, measure_server, wrk_binary

SECTION = "serving-peers"
CSV_PATH = REPO / "bench" / "results" / "peers.csv"
SHAPES = (1, 64)
# The bars: ganserve's lead over every peer (same worker count, median over rounds).
LEAD = {1: 2.5, 64: 1.8}
NAIVE_LEAD = 3.0  # 1-image requests, ganserve over the naive server
CPU_BAR_MS = 0.8  # ganserve's server CPU per image, 1-image requests, 1 worker
CSV_COLUMNS = [
    "run_id",
    "round",
    "system",
    "framework",
    "workers",
    "images_per_request",
    "connections",
    "duration_s",
    "completed",
    "ok",
    "requests_per_s",
    "images_per_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    *ERROR_COLUMNS,
    "server_cpu_ms_per_image",
    "client_cpu_ms_per_request",
    "load_1min",
]


@dataclass(frozen=True)
class System:
    """One server configuration of the table."""

    name: str  # the CSV's system column
    framework: str  # ganserve, naive, bentoml, ray
    workers: int
    label: str  # how the docs table names it
    start: Callable[[Path], servers.Server]  # log path -> the server (not yet started)


@dataclass
class Options:
    seconds: float = 20.0  # one measured cell
    warmup_s: float = 3.0  # wrk before each measured cell, not recorded
    rounds: int = 3
    connections: int = 32
    shapes: tuple[int, ...] = SHAPES
    workers: tuple[int, ...] = (1, 2)
    systems: tuple[str, ...] = ()  # names or frameworks to keep; empty: all
    threads: int = 1  # wrk threads
    max_minutes: float = 90.0  # no new system starts after this


@dataclass
class Outcome:
    rows: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # systems that did not start


def systems(
    subject_models_dir: Path,
    model: str,
    naive_source: tuple[str, Path],
    workers: Sequence[int],
) -> list[System]:
    """Every system of the table, ganserve first."""
    model_dir = subject_models_dir / model
    ours: dict[str, tuple[str, Callable[[Path, int], servers.Server]]] = {
        "ganserve": (
            "ganserve",
            lambda log, w: servers.ganserve(subject_models_dir, log, workers=w),
        ),
        "naive": (
            "naive (FastAPI + PyTorch)",
            lambda log, w: servers.naive(naive_source, log, workers=w),
        ),
    }
    out: list[System] = []
    for framework, (label, start) in ours.items():
        for w in workers:
            out.append(
                System(
                    servers.named(framework, w),
                    framework,
                    w,
                    f"{label}, {_count(w, 'worker')}",
                    lambda log, w=w, start=start: start(log, w),
                )
            )
    for refresh in (True, False):
        for w in workers:
            name = "bentoml" if refresh else "bentoml-norefresh"
            how = "documented" if refresh else "session refresh off"
            out.append(
                System(
                    servers.named(name, w),
                    "bentoml",
                    w,
                    f"BentoML, {how}, {_count(w, 'API worker')}",
                    lambda log, w=w, refresh=refresh: servers.bentoml(
                        model_dir,
                        log,
                        envs.python_of("bentoml"),
                        workers=w,
                        session_refresh=refresh,
                    ),
                )
            )
    for w in workers:
        out.append(
            System(
                servers.named("ray", w),
                "ray",
                w,
                f"Ray Serve, {_count(w, 'replica')}",
                lambda log, w=w: servers.ray(model_dir, log, envs.python_of("ray"), replicas=w),
            )
        )
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n > 1 else ''}"


def body_for(model: str, images: int) -> str:
    """The JSON body template of one request shape (wrk puts the seed in)."""
    return f'{{"model": "{model}", "n": {images}, "seed": {{seed}}}}'


def result_row(
    run_id: str,
    round_: int,
    system: System,
    r: WrkResult,
    server_cpu_s: float,
) -> dict[str, Any]:
    """One CSV row of a measured cell."""
    errors = r.errors
    images = r.ok * r.images_per_request
    return {
        "run_id": run_id,
        "round": round_,
        "system": system.name,
        "framework": system.framework,
        "workers": system.workers,
        "images_per_request": r.images_per_request,
        "connections": r.connections,
        "duration_s": round(r.duration_s, 3),
        "completed": r.completed,
        "ok": r.ok,
        "requests_per_s": round(r.requests_per_s, 2),
        "images_per_s": round(r.images_per_s, 1),
        "p50_ms": round(r.latency_ms["50"], 2),
        "p90_ms": round(r.latency_ms["90"], 2),
        "p99_ms": round(r.latency_ms["99"], 2),
        "max_ms": round(r.latency_ms["max"], 2),
        **error_columns(errors),
        "errors_by_kind": errors_by_kind(errors),
        "server_cpu_ms_per_image": round(server_cpu_s * 1000 / images, 3) if images else math.nan,
        "client_cpu_ms_per_request": round(r.client_cpu_ms_per_request, 4),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def measure(
    server: servers.Server, model: str, images: int, options: Options, first_seed: int
) -> tuple[WrkResult, float]:
    """A warm-up, then the measured wrk cell; its result and the server's CPU seconds."""
    return measure_server(
        server,
        body_for(model, images),
        connections=options.connections,
        threads=options.threads,
        duration_s=options.seconds,
        warmup_s=options.warmup_s,
        first_seed=first_seed,
        images_per_request=images,
    )


def _keep(system: System, wanted: tuple[str, ...]) -> bool:
    return not wanted or system.name in wanted or system.framework in wanted


def peer_versions() -> dict[str, str]:
    """The framework versions of the peers' environments."""
    out = {}
    for peer, module in (("bentoml", "bentoml"), ("ray", "ray")):
        python = envs.python_of(peer)
        if not python.exists():
            continue
        done = subprocess.run(
            [str(python), "-c", f"import {module}; print({module}.__version__)"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode == 0:
            out[peer] = done.stdout.strip()
    return out


def _start(
    system: System, log: Path, failures: list[str], round_: int, tries: int = 2
) -> servers.Server | None:
    """The system started on a fresh port, tried ``tries`` times (a peer that takes a few
    processes to start can lose its port to one of them); None, with the reason in
    ``failures``, when every try failed."""
    reason = ""
    for _ in range(tries):
        server = system.start(log)
        try:
            server.start()
            return server
        except servers.ServerError as exc:
            server.stop()
            reason = last_line(str(exc))
            print(f"  {system.name} did not start: {reason}", flush=True)
    failures.append(f"round {round_}, {system.name}: did not start in {tries} tries ({reason})")
    return None


def last_line(text: str) -> str:
    """The last non-blank line of a (log) message, without terminal colour codes."""
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run(options: Options, config: Config | None = None, csv_path: Path = CSV_PATH) -> Outcome:
    """Every system, every shape, ``options.rounds`` rounds; rows written to ``csv_path``."""
    if wrk_binary() is None:
        raise WrkError("wrk is not installed (Debian: apt-get install wrk)")
    config = config or Config()
    started = datetime.now(UTC)
    run_id = "peers-" + started.strftime("%Y%m%dT%H%M%SZ")
    logs = CSV_PATH.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = Outcome()
    out.info = {"run_id": run_id, "started": started.isoformat(timespec="seconds")}
    out.info["machine"] = machine()
    deadline = time.monotonic() + options.max_minutes * 60
    with tempfile.TemporaryDirectory(prefix="ganserve-peers-") as tmp:
        subject = prepare_subject(config, Path(tmp))
        if subject.card.conditional:
            raise SystemExit(f"error: {subject.name} is conditional; the peers serve unconditional")
        out.info.update(model=subject.name, card=subject.card.to_dict(), note=subject.note)
        every = systems(subject.models_dir, subject.name, subject.naive_source, options.workers)
        chosen = [s for s in every if _keep(s, options.systems)]
        for peer in sorted({s.framework for s in chosen} & set(envs.PEERS)):
            print(f"{peer} environment ...", flush=True)
            try:
                envs.ensure(peer)
            except (envs.EnvError, subprocess.TimeoutExpired) as exc:
                out.failures.append(f"{peer}: environment not built ({exc})")
                print(f"  skipped: {exc}", flush=True)
                chosen = [s for s in chosen if s.framework != peer]
        out.info["versions"] = peer_versions()
        out.info["systems"] = {s.name: s.label for s in chosen}
        seed = 0
        for round_ in range(1, options.rounds + 1):
            for system in chosen:
                if time.monotonic() > deadline:
                    out.failures.append(f"round {round_}, {system.name}: run time bound reached")
                    continue
                server = _start(system, logs / f"peers-{system.name}.log", out.failures, round_)
                if server is None:
                    continue
                try:
                    for images in options.shapes:
                        r, cpu = measure(server, subject.name, images, options, seed)
                        seed += 10**9
                        row = result_row(run_id, round_, system, r, cpu)
                        out.rows.append(row)
                        print(
                            f"  round {round_} {system.name:22s} {images:3d} img "
                            f"{row['images_per_s']:9.1f} img/s p50 {row['p50_ms']:8.1f} "
                            f"p99 {row['p99_ms']:8.1f} ms errors {row['errors']:5d} "
                            f"server {row['server_cpu_ms_per_image']:.3f} ms/img "
                            f"wrk {row['client_cpu_ms_per_request']:.3f} ms/req",
                            flush=True,
                        )
                finally:
                    server.stop()
    out.info["elapsed_s"] = (datetime.now(UTC) - started).total_seconds()
    out.info["csv"] = write_csv(out.rows, csv_path, CSV_COLUMNS)
    return out


def read_csv(path: Path = CSV_PATH) -> list[dict[str, Any]]:
    with path.open() as f:
        return list(csv.DictReader(f))


# -- summary and goals --------------------------------------------------------------------


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _median(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def summary(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """(system, images per request) -> medians over rounds, errors summed."""
    cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["system"], int(r["images_per_request"])), []).append(r)
    out = {}
    for key, rs in cells.items():
        completed = sum(int(r["completed"]) for r in rs)
        errors = sum(int(r["errors"]) for r in rs)
        kinds: dict[str, int] = {}
        for r in rs:
            for part in filter(None, str(r["errors_by_kind"]).split(";")):
                kind, n = part.rsplit(":", 1)
                kinds[kind] = kinds.get(kind, 0) + int(n)
        out[key] = {
            "system": key[0],
            "framework": rs[0]["framework"],
            "workers": int(rs[0]["workers"]),
            "images_per_request": key[1],
            "rounds": len(rs),
            "images_per_s": _median([_num(r["images_per_s"]) for r in rs]),
            "p50_ms": _median([_num(r["p50_ms"]) for r in rs]),
            "p99_ms": _median([_num(r["p99_ms"]) for r in rs]),
            "server_cpu_ms_per_image": _median([_num(r["server_cpu_ms_per_image"]) for r in rs]),
            "client_cpu_ms_per_request": _median(
                [_num(r["client_cpu_ms_per_request"]) for r in rs]
            ),
            "completed": completed,
            "errors": errors,
            "error_share": errors / completed if completed else math.nan,
            "errors_by_kind": kinds,
        }
    return out


def _round_ratios(rows: list[dict[str, Any]], mine: str, theirs: str, images: int) -> list[float]:
    """ganserve / other images/s, round by round (the rounds both were measured in)."""
    by: dict[tuple[int, str], float] = {}
    for r in rows:
        if int(r["images_per_request"]) == images and r["system"] in (mine, theirs):
            by[(int(r["round"]), r["system"])] = _num(r["images_per_s"])
    rounds = sorted({k for k, _ in by})
    out = []
    for k in rounds:
        a, b = by.get((k, mine), math.nan), by.get((k, theirs), math.nan)
        if a > 0 and b > 0:  # a system that answered nothing in a round gives no ratio
            out.append(a / b)
    return out


def _ratios_text(ratios: list[float]) -> str:
    if not ratios:
        return "no round in which both answered"
    each = ", ".join(f"{x:.2f}x" for x in ratios)
    return f"median {_median(ratios):.2f}x over {len(ratios)} rounds ({each})"


def goals(rows: list[dict[str, Any]], connections: int = 32) -> list[dict[str, Any]]:
    """The bars, each with its measured value and whether it holds."""
    table = summary(rows)
    out: list[dict[str, Any]] = []
    for (name, images), cell in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if cell["framework"] in ("ganserve", "naive"):
            continue
        mine = servers.named("ganserve", cell["workers"])
        g = table.get((mine, images))
        if g is None:
            continue
        ratios = _round_ratios(rows, mine, name, images)
        ratio = _median(ratios)
        bar = LEAD.get(images, 1.0)
        p99_ok = g["p99_ms"] <= cell["p99_ms"]
        out.append(
            {
                "goal": f"{images}-image requests, {connections} connections: {mine} >= "
                f"{bar:g}x {name} images/s at equal or better p99",
                "measured": _ratios_text(ratios)
                + f"; p99 {_f(g['p99_ms'])} vs {_f(cell['p99_ms'])} ms"
                + (f"; {name}: {cell['errors']} errors" if cell["errors"] else ""),
                "value": ratio,
                "met": ratio >= bar and p99_ok,
            }
        )
    for workers in (1, 2):
        mine, theirs = servers.named("ganserve", workers), servers.named("naive", workers)
        ratios = _round_ratios(rows, mine, theirs, 1)
        if ratios:
            ratio = _median(ratios)
            out.append(
                {
                    "goal": f"1-image requests, {connections} connections: {mine} >= "
                    f"{NAIVE_LEAD:g}x {theirs} images/s (wrk)",
                    "measured": _ratios_text(ratios),
                    "value": ratio,
                    "met": ratio >= NAIVE_LEAD,
                }
            )
    g1 = table.get(("ganserve", 1))
    if g1 is not None:
        cpu = g1["server_cpu_ms_per_image"]
        out.append(
            {
                "goal": f"1-image requests, {connections} connections: ganserve (1 worker) "
                f"server CPU <= {CPU_BAR_MS:g} ms per image",
                "measured": f"median {cpu:.3f} ms over {g1['rounds']} rounds",
                "value": cpu,
                "met": cpu <= CPU_BAR_MS,
            }
        )
    return out


# -- the docs section ----------------------------------------------------------------------


def _errors(cell: dict[str, Any]) -> str:
    if not cell["errors"]:
        return "0"
    kinds = ", ".join(f"{n} x {k}" for k, n in sorted(cell["errors_by_kind"].items()))
    return f"{cell['error_share']:.1%} ({kinds})"


def section(outcome: Outcome, options: Options, command: str) -> str:
    """The markdown of the peers section."""
    info, rows = outcome.info, outcome.rows
    m = info["machine"]
    card = info["card"]
    versions = info.get("versions", {})
    table = summary(rows)
    labels = info.get("systems", {})
    load = ", ".join(f"{x:.1f}" for x in m["load"])
    order = list(labels) + sorted({r["system"] for r in rows} - set(labels))
    out = [
        "## Serving: ganserve and the frameworks users would pick instead (wrk)",
        "",
        f"Run `{info['run_id']}` ({info['started']}, {info['elapsed_s'] / 60:.1f} min), "
        f"command: `{command}`.",
        "",
        f"- Machine: {m['nproc']} cores, {m['cpu']}, no GPU; load average {load} at the start.",
        f"- Model: `{info['model']}` ({card.get('architecture')}, latent "
        f"{card.get('latent_dim')}); every system but the naive one runs this ONNX file on "
        f"ONNX Runtime {m['onnxruntime']} (CPU) with ganserve's session options (ganserve "
        "runs the graph as its load-time rewrite serves it, `service/graph_rewrite.py`: the "
        "first layer, a ConvTranspose on a 1x1 input, as one Gemm for the batch; the peers run "
        "the file's graph) and answers the same images (the same PNG bytes, or pixels within "
        "one grey level where the rewrite rounds a value the other way: "
        "tests/bench/test_bench_peers.py); the naive server runs eager "
        "PyTorch (" + info["note"].removeprefix("naive server: ") + ").",
        "- Systems: ganserve as `make serve` runs it (`python -m service`, default settings, "
        "uvicorn); naive: `bench/naive_server.py`; BentoML "
        f"{versions.get('bentoml', '?')}: `bench/peers/bentoml_service.py`, two services "
        "joined by `bentoml.depends`, the model's API `batchable` (at most 64 latents per "
        "run), as BentoML's adaptive-batching documentation shows; Ray Serve "
        f"{versions.get('ray', '?')}: `bench/peers/ray_service.py`, one deployment with "
        "`@serve.batch` (at most 64 latents, 2 ms wait, `max_ongoing_requests` 128). Each "
        "peer in its own virtual environment (`bench/peers/requirements-*.txt`). "
        "*Workers*: uvicorn worker processes (ganserve, naive), BentoML API-service "
        "workers (its batching model service keeps one), Ray Serve replicas. No system "
        "writes an access log (ganserve's and the naive server's default; turned off in "
        "BentoML's and Ray Serve's configuration, whose default logs every request).",
        "- BentoML, *session refresh off*: BentoML's inter-service client replaces its "
        "aiohttp session every 100 requests and closes the old one while calls on it are "
        "still in flight; those requests fail with HTTP 500. The workaround raises the "
        "model service's `runner_connection` limits (`max_requests`, `max_age`, its "
        "service configuration) so the session is never replaced; both are measured.",
        f"- Method: wrk {options.connections} connections, 1 thread, a POST body per request "
        f"(`bench/wrk_post.lua`, the seed counting up); per system and round: start it alone, "
        f"{options.warmup_s:g} s of warm-up, then a {options.seconds:g} s cell per request "
        f"shape, stop it; {options.rounds} rounds in the same order, figures are medians over "
        "the rounds, errors summed (any answer but a 200 with a PNG, and socket errors). "
        "Server CPU: all the system's processes (`/proc`), over the cell, per image "
        "answered. wrk's own CPU per request is in the CSV "
        f"(median {_f(_median([_num(r['client_cpu_ms_per_request']) for r in rows]), 3)} ms).",
        "",
        "### Goals",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
    ]
    for g in goals(rows, options.connections):
        out.append(f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else '**no**'} |")
    out += [
        "",
        "### Results",
        "",
        "| system | images/request | images/s (median) | p50 / p99 ms | server CPU ms/image "
        "| errors |",
        "|---|--:|--:|---|--:|---|",
    ]
    for images in sorted({k[1] for k in table}):
        for name in order:
            cell = table.get((name, images))
            if cell is None:
                continue
            out.append(
                f"| {labels.get(name, name)} | {images} | {_f(cell['images_per_s'])} | "
                f"{_f(cell['p50_ms'])} / {_f(cell['p99_ms'])} | "
                f"{_f(cell['server_cpu_ms_per_image'], 2)} | {_errors(cell)} |"
            )
    if outcome.failures:
        out += ["", "Not measured: " + "; ".join(outcome.failures) + "."]
    out += ["", f"Data: `bench/results/peers.csv` (run `{info['run_id']}`), one row per cell."]
    return "\n".join(out) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.peers_bench", description=__doc__)
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per cell")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per cell")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--shapes", type=int, nargs="+", default=list(SHAPES), help="images/request")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--systems", nargs="+", default=[], help="systems or frameworks to run (default: all)"
    )
    p.add_argument("--models-dir", type=Path, default=REPO / "models")
    p.add_argument("--model", help="model to serve (default: the default unconditional model)")
    p.add_argument("--max-minutes", type=float, default=90.0)
    p.add_argument("--no-write", action="store_true", help="leave docs/ and bench/results/ alone")
    p.add_argument(
        "--csv",
        type=Path,
        help="where the rows go (default: bench/results/peers.csv; with --no-write, a temp file)",
    )
    return p.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        seconds=args.seconds,
        warmup_s=args.warmup,
        rounds=args.rounds,
        connections=args.connections,
        shapes=tuple(args.shapes),
        workers=tuple(args.workers),
        systems=tuple(args.systems),
        max_minutes=args.max_minutes,
    )


def run_and_write(
    options: Options, config: Config, command: str, write: bool, csv_path: Path | None = None
) -> int:
    """Run, print the goals, write the section (unless ``write`` is false).

    The rows go to ``csv_path``; unset, to bench/results/peers.csv when the section is
    written (the data it cites), else to a new file in the temporary directory, so a
    trial run never replaces the data behind the docs."""
    from bench.report import write_section

    if csv_path is None:
        if write:
            csv_path = CSV_PATH
        else:
            fd, name = tempfile.mkstemp(prefix="peers-", suffix=".csv")
            os.close(fd)
            csv_path = Path(name)
    try:
        outcome = run(options, config, csv_path)
    except (WrkError, servers.ServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {outcome.info['csv']}")
    for g in goals(outcome.rows, options.connections):
        print(f"  {'met ' if g['met'] else 'MISS'}  {g['goal']}: {g['measured']}")
    if write:
        print(f"wrote {write_section(SECTION, section(outcome, options, command))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    words = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m bench.peers_bench", *map(shlex.quote, words)])
    config = Config(models_dir=args.models_dir, model=args.model)
    return run_and_write(options_from(args), config, command, not args.no_write, args.csv)


if __name__ == "__main__":
    sys.exit(main())
