"""The ``serving-benchmark`` section of docs/benchmarks.md from a run's rows and goals."""

from __future__ import annotations

from typing import Any

from bench.loadgen import Options
from bench.report import figure as _f
from bench.run import paired_rounds

SECTION = "serving-benchmark"


def _errors(r: dict[str, Any]) -> str:
    if not int(r.get("errors") or 0):
        return "0"
    return str(r["errors_by_kind"]).replace(";", ", ")


def _load(r: dict[str, Any]) -> str:
    if r["mode"] == "closed":
        return f"{r['concurrency']} concurrent"
    if r["mode"] == "open":
        return f"{_f(r['rate'])}/s offered"
    return f"batch {r['batch']}"


def sweep_rows(rows: list[dict[str, Any]], images: int) -> list[dict[str, Any]]:
    """The sweep of one shape: closed loop at every concurrency once, in-process per batch."""
    return [
        r
        for r in rows
        if r["images_per_request"] == images
        and not r["settings"]
        and (
            (r["mode"] == "closed" and r["round"] in ("", 1))
            or (r["mode"] == "in-process" and r["round"] == "")
        )
    ]


def shape_table(rows: list[dict[str, Any]], images: int) -> list[str]:
    """All three systems for one request shape: closed loop by concurrency, then the limit."""
    head = [
        "| system | load | requests/s | images/s | p50 ms | p95 ms | p99 ms | errors | "
        "server CPU ms/image | windows |",
        "|---|---|--:|--:|--:|--:|--:|---|--:|---|",
    ]
    mine = sweep_rows(rows, images)
    closed = sorted(
        (r for r in mine if r["mode"] == "closed"),
        key=lambda r: (int(r["concurrency"]), r["system"]),
    )
    inproc = [r for r in mine if r["mode"] == "in-process"]
    lines = []
    for r in closed:
        stable = "stable" if r["stable"] in (True, "True") else str(r["stop_reason"])
        lines.append(
            f"| {r['system']} | {_load(r)} | {_f(r['requests_per_s'], 1)} | "
            f"{_f(r['images_per_s'])} | {_f(r['p50_ms'], 1)} | {_f(r['p95_ms'], 1)} | "
            f"{_f(r['p99_ms'], 1)} | {_errors(r)} | {_f(r['server_cpu_ms_per_image'], 2)} | "
            f"{r['windows']} ({stable}) |"
        )
    if inproc:
        best = max(inproc, key=lambda r: float(r["images_per_s"]))
        for r in inproc:
            mark = " **(best)**" if r is best else ""
            lines.append(
                f"| in-process | {_load(r)}{mark} | {_f(r['requests_per_s'], 1)} | "
                f"{_f(r['images_per_s'])} | – | – | – | 0 | "
                f"{_f(r['server_cpu_ms_per_image'], 2)} | {r['windows']} |"
            )
    return head + lines


def rounds_table(rows: list[dict[str, Any]], images: int, concurrency: int) -> list[str]:
    """The paired rounds of one shape: the three systems back to back, round by round."""
    rounds = paired_rounds(rows, images, concurrency)
    if not rounds:
        return []
    lines = [
        "| round | in-process images/s (batch) | ganserve images/s | naive images/s | "
        "ganserve / naive | ganserve / in-process | ganserve p50 / p99 ms | "
        "server CPU ms/image: in-process / ganserve / naive |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for k in sorted(rounds):
        by = rounds[k]
        ip, gs, nv = by.get("in-process"), by.get("ganserve"), by.get("naive")

        def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, pct: bool) -> str:
            if not a or not b or not float(b["images_per_s"]):
                return "–"
            x = float(a["images_per_s"]) / float(b["images_per_s"])
            return f"{x:.0%}" if pct else f"{x:.2f}x"

        limit = f"{_f(ip['images_per_s'])} ({ip['batch']})" if ip else "–"
        ganserve = _f(gs["images_per_s"]) if gs else "–"
        naive = _f(nv["images_per_s"]) if nv else "–"
        tail = f"{_f(gs['p50_ms'])} / {_f(gs['p99_ms'])}" if gs else "–"
        cpu = " / ".join(_f(r["server_cpu_ms_per_image"], 2) if r else "–" for r in (ip, gs, nv))
        lines.append(
            f"| {k} | {limit} | {ganserve} | {naive} | {ratio(gs, nv, False)} | "
            f"{ratio(gs, ip, True)} | {tail} | {cpu} |"
        )
    return lines


def open_table(rows: list[dict[str, Any]]) -> list[str]:
    opened = sorted(
        (r for r in rows if r["mode"] == "open"),
        key=lambda r: (r["images_per_request"], float(r["rate"]), r["system"]),
    )
    if not opened:
        return []
    lines = [
        "| system | images/request | offered/s | answered/s | images/s | p50 ms | p99 ms | "
        "errors | not sent |",
        "|---|--:|--:|--:|--:|--:|--:|---|--:|",
    ]
    for r in opened:
        lines.append(
            f"| {r['system']} | {r['images_per_request']} | {_f(r['rate'])} | "
            f"{_f(r['requests_per_s'], 1)} | {_f(r['images_per_s'])} | {_f(r['p50_ms'], 1)} | "
            f"{_f(r['p99_ms'], 1)} | {_errors(r)} | {r['not_sent']} |"
        )
    return lines


def overload_table(rows: list[dict[str, Any]]) -> list[str]:
    over = [r for r in rows if str(r["settings"]).startswith("GANSERVE_MAX_QUEUE")]
    if not over:
        return []
    lines = [
        "| settings | images/request | concurrency | sent | 200 | 503 + Retry-After | "
        "timeouts | 5xx (not 503) | other errors | p99 of 200s ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in over:
        lines.append(
            f"| `{r['settings']}` | {r['images_per_request']} | {r['concurrency']} | {r['sent']} | "
            f"{r['ok']} (in windows) | {r['errors_503_retry_after']} | {r['errors_timeout']} | "
            f"{r['errors_5xx']} | {int(r['errors_other']) + int(r['errors_503_no_retry_after'])} | "
            f"{_f(r['p99_ms'], 1)} |"
        )
    return lines


def section(
    result: dict[str, Any],
    command: str,
    images: dict[str, str],
    options: Options,
    goal_c: int = 32,
) -> str:
    """The markdown of a run: machine, command, goals, a table per shape, plots."""
    info, rows = result["info"], result["rows"]
    out = _description(info, command, options)
    out += ["", "### Goals", "", "| goal | measured | met |", "|---|---|---|"]
    for g in result["goals"]:
        out.append(f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else '**no**'} |")
    out += _shape_sections(rows, images, goal_c)
    out += _titled(
        "Open loop (fixed request rates)",
        "Requests start at a fixed rate whatever the answers: fractions of the requests/s "
        "ganserve reached closed loop earlier in this run, the same rates for both servers. "
        "Latency is measured from each request's scheduled start; beyond a system's "
        "capacity its queue grows for the whole cell, so its latency is bounded only by "
        "the cell's length.",
        open_table(rows),
        [f"![open loop]({images['open']})"] if "open" in images else [],
    )
    out += _titled(
        "Beyond the queue bound",
        "A second ganserve with a small queue, loaded closed loop well beyond it (the load "
        "generator does not back off, so refused requests come straight back):",
        overload_table(rows),
    )
    if info.get("skipped"):
        out += ["", "Skipped (run time bound): " + "; ".join(info["skipped"]) + "."]
    out += ["", f"Data: `bench/results/serving.csv` (run `{info['run_id']}`)."]
    return "\n".join(out) + "\n"


def _description(info: dict[str, Any], command: str, o: Options) -> list[str]:
    """The run, the machine, the model, the systems and the method."""
    m = info["machine"]
    card = info["card"]
    load = ", ".join(f"{x:.1f}" for x in m["load"])
    shape = "x".join(str(s) for s in card.get("image_shape", []))
    return [
        "## Serving: ganserve, a naive server and the in-process limit",
        "",
        f"Run `{info['run_id']}` ({info['started']}, {info['elapsed_s'] / 60:.1f} min), "
        f"command: `{command}`.",
        "",
        f"- Machine: {m['nproc']} cores (`nproc`), {m['cpu']} (`/proc/cpuinfo`), no GPU; "
        f"load average {load} at the start (the machine is shared with a training job, so "
        "absolute figures are noisy: the goals are ratios measured side by side in this run).",
        f"- Software: Python {m['python']}, onnxruntime {m['onnxruntime']}, uvicorn "
        f"{m['uvicorn']} ({m['uvicorn_stack']}, both servers), httpx {m['httpx']} (the load "
        "generator, on the same cores: its CPU per request is in the CSV).",
        f"- Model: `{info['model']}` ({card.get('architecture')}, {shape} images, latent "
        f"{card.get('latent_dim')}); {info['note']}.",
        '- Request: `POST /generate` `{"model": ..., "n": N, "seed": i}` (seed = request '
        "index) answered with one PNG grid (8 columns, padding 2 for N = 64).",
        "- Systems: **ganserve** as `make serve` runs it (`python -m service`, default settings, "
        "its own process); **naive**: `bench/naive_server.py`, FastAPI + the PyTorch generator "
        "per request in a `def` endpoint, no batching, Pillow PNG at its default compression "
        "(its own uvicorn process); **in-process**: `bench/inprocess.py`, the ONNX session + "
        "grid + PNG (ganserve's level) in a tight loop in one process, no HTTP, swept over "
        "batch sizes before the HTTP runs and re-measured at the best batch after them; the "
        "limit is the higher figure.",
        "- Method: httpx async load generator (`bench/loadgen.py`): warm-up, then measurement "
        f"windows (>= {o.window_s:g} s and >= {o.min_window_requests} answers, at most "
        f"{o.max_window_s:g} s) until the last {o.stable_windows} agree within "
        f"{o.stability:.0%} on throughput and median latency (as perf_analyzer does), at most "
        f"{o.max_windows} windows and {o.max_seconds:g} s per cell; figures aggregate the last "
        f"{o.stable_windows} windows, errors count every request of the cell. Server CPU "
        "ms/image: the server process's CPU time (all threads, `/proc/<pid>/stat`) over the "
        "cell divided by the images it answered; on a shared machine it varies less than "
        "images/s. The load generator's own CPU per request is in the CSV.",
    ]


def _shape_sections(rows: list[dict[str, Any]], images: dict[str, str], goal_c: int) -> list[str]:
    """Per request shape: the closed-loop table, the paired rounds and the plot."""
    rounds_note = (
        f"Rounds at concurrency {goal_c}: the in-process limit (at the sweep's best batch), "
        "ganserve and naive measured back to back, so each round's ratios share the machine's "
        "load of that moment; the goals take the median over rounds. Round 1 is the sweep's "
        f"concurrency-{goal_c} row."
    )
    out: list[str] = []
    for images_per_request in sorted({r["images_per_request"] for r in rows}):
        out += ["", f"### {images_per_request}-image requests (closed loop)", ""]
        out += shape_table(rows, images_per_request)
        table = rounds_table(rows, images_per_request, goal_c)
        if table:
            out += ["", rounds_note, ""] + table
        key = f"closed-{images_per_request}"
        if key in images:
            out += ["", f"![{images_per_request}-image requests]({images[key]})"]
    return out


def _titled(title: str, intro: str, table: list[str], plot: list[str] | None = None) -> list[str]:
    """A subsection with its table (and the plot's line), or nothing when the table is empty."""
    if not table:
        return []
    return ["", f"### {title}", "", intro, "", *table, *(["", *plot] if plot else [])]
