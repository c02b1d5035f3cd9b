"""ONNX Runtime (CPU) against PyTorch eager (CPU): the same generator, the same uint8 images.

    python -m bench.export_bench [--repeats 7] [--batches 1 64 512] [--archs dcgan mlp] [--no-write]

Both sides run the exported contract end to end: float32 latents in, uint8
NHWC images out (the tanh -> 0..255 mapping included). PyTorch runs the
wrapper that export traces (``export.graph.ImageGenerator``) under
``torch.inference_mode()`` with ``torch.set_num_threads(cores)``; ONNX Runtime
runs the exported ``model.onnx`` with ``intra_op_num_threads = cores``. Each
repeat times enough calls to fill about ``--seconds`` seconds, the two runtimes
alternate repeat by repeat, and the table shows medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from bench.report import write_section
from export import export_checkpoint
from export.graph import ImageGenerator
from ganserve.latent import make_latents
from training.checkpoint import load_generator
from training.networks import build_discriminator, build_generator, get_arch

SECTION = "export-ort-vs-torch"


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _checkpoint(arch: str) -> dict:
    """An untrained seeded checkpoint: the weights' values do not change the arithmetic's cost."""
    torch.manual_seed(0)
    g, d = build_generator(arch), build_discriminator(arch)
    c, h, w = get_arch(arch).image_shape
    return {
        "arch": arch,
        "g_kwargs": {},
        "d_kwargs": {},
        "G": g.state_dict(),
        "D": d.state_dict(),
        "epoch": 0,
        "dataset": {
            "name": "bench",
            "num_classes": 0,
            "class_names": None,
            "image_shape": [c, h, w],
        },
        "loss": "bce",
    }


def _time(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second over about ``seconds`` (at least 2 calls)."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if calls >= 2 and elapsed >= seconds:
            return calls / elapsed


def ort_op_times(
    model_file: Path, feeds: dict[str, np.ndarray], threads: int, calls: int = 3
) -> dict[str, float]:
    """Milliseconds per call spent in each ONNX op type (ORT's own profiler, kernel time)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(
            str(model_file), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        for _ in range(calls + 1):
            sess.run(None, feeds)
        events = _kernel_events(Path(sess.end_profiling()))
    per_node: dict[str, list[float]] = defaultdict(list)
    op_of: dict[str, str] = {}
    for op, node, dur in events:  # chronological: each node's first run is the warm-up
        per_node[node].append(dur)
        op_of[node] = op
    totals: dict[str, float] = defaultdict(float)
    for node, durs in per_node.items():
        totals[op_of[node]] += sum(durs[1:]) / max(len(durs) - 1, 1) / 1000
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def _kernel_events(path: Path) -> list[tuple[str, str, float]]:
    events = json.loads(path.read_text())
    path.unlink(missing_ok=True)
    return [
        (e["args"]["op_name"], e["name"], float(e["dur"]))
        for e in events
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
    ]


def torch_op_times(g: torch.nn.Module, z: np.ndarray, calls: int = 3) -> dict[str, float]:
    """Milliseconds per call spent in each leaf module type of G (forward hooks, wall clock)."""
    totals: dict[str, float] = defaultdict(float)
    starts: dict[int, float] = {}
    leaves = [m for m in g.modules() if not list(m.children())]
    recording = False

    def pre(module: torch.nn.Module, _args: object) -> None:
        starts[id(module)] = time.perf_counter()

    def post(module: torch.nn.Module, _args: object, _out: object) -> None:
        if recording:
            totals[type(module).__name__] += (time.perf_counter() - starts[id(module)]) * 1000

    hooks = [m.register_forward_pre_hook(pre) for m in leaves]
    hooks += [m.register_forward_hook(post) for m in leaves]
    try:
        with torch.inference_mode():
            g(torch.from_numpy(z))
            recording = True
            for _ in range(calls):
                g(torch.from_numpy(z))
    finally:
        for h in hooks:
            h.remove()
    return {k: v / calls for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def measure(
    arch: str, batches: Sequence[int], repeats: int, seconds: float, threads: int, workdir: Path
) -> list[dict]:
    """Images/s of PyTorch eager and ORT for one architecture at each batch size."""
    ckpt = _checkpoint(arch)
    model_dir = export_checkpoint(ckpt, f"bench-{arch}", workdir, force=True)
    model_file = model_dir / "model.onnx"
    g, _ = load_generator(ckpt)
    wrapper = ImageGenerator(g, conditional=False).eval()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(
        str(model_file), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    assert sess.get_providers() == ["CPUExecutionProvider"]
    torch.set_num_threads(threads)

    rows = []
    for n in batches:
        z = make_latents(0, n, g.latent_dim)

        def run_torch(z: np.ndarray = z) -> np.ndarray:
            with torch.inference_mode():
                return wrapper(torch.from_numpy(z))[0].numpy()

        def run_ort(z: np.ndarray = z) -> np.ndarray:
            return sess.run(["image"], {"z": z})[0]

        same = np.abs(run_torch().astype(int) - run_ort().astype(int)).max()
        for _ in range(2):  # warm-up: allocators, kernels, thread pools
            run_torch()
            run_ort()
        t_rates, o_rates = [], []
        for _ in range(repeats):
            t_rates.append(_time(run_torch, seconds) * n)
            o_rates.append(_time(run_ort, seconds) * n)
        row = {
            "arch": arch,
            "batch": n,
            "threads": threads,
            "torch": statistics.median(t_rates),
            "ort": statistics.median(o_rates),
            "torch_spread": (min(t_rates), max(t_rates)),
            "ort_spread": (min(o_rates), max(o_rates)),
            "max_diff": int(same),
        }
        if row["ort"] < row["torch"]:  # explain it: where each runtime spends its time
            row["ort_ops"] = ort_op_times(model_file, {"z": z}, threads)
            row["torch_ops"] = torch_op_times(g, z)
        rows.append(row)
        print(
            f"{arch:>10} batch {n:>4} threads {threads}: torch {row['torch']:>9.0f} img/s, "
            f"ort {row['ort']:>9.0f} img/s",
            file=sys.stderr,
        )
    return rows


def _ops(times: dict[str, float], top: int = 4) -> str:
    return ", ".join(f"{op} {ms:.1f}" for op, ms in list(times.items())[:top])


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| generator | batch | PyTorch eager (img/s) | ONNX Runtime (img/s) | ORT / PyTorch |"
        " max pixel diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arch']} | {r['batch']} | {r['torch']:,.0f} "
            f"({r['torch_spread'][0]:,.0f}-{r['torch_spread'][1]:,.0f}) | {r['ort']:,.0f} "
            f"({r['ort_spread'][0]:,.0f}-{r['ort_spread'][1]:,.0f}) | "
            f"{r['ort'] / r['torch']:.2f}x | {r['max_diff']} |"
        )
    return lines


def slower_notes(rows: list[dict]) -> list[str]:
    """For every row where ORT is slower: per-op milliseconds per call, measured."""
    notes = []
    for r in rows:
        if "ort_ops" not in r:
            continue
        notes.append(
            f"- {r['arch']}, batch {r['batch']}, {r['threads']} thread(s): ORT "
            f"{1000 * r['batch'] / r['ort']:.1f} ms per call vs PyTorch "
            f"{1000 * r['batch'] / r['torch']:.1f} ms. Time per call by op, ORT profiler "
            f"(fused graph; BatchNorm folded into the convolutions): {_ops(r['ort_ops'])}; "
            f"PyTorch, per module: {_ops(r['torch_ops'])} (ms)."
            + (
                " The min-max ranges of the two overlap: the gap is within this run's noise."
                if r["ort_spread"][1] >= r["torch_spread"][0]
                else ""
            )
        )
    return notes


def thread_notes(results: dict[int, list[dict]], load_end: tuple) -> list[str]:
    """Rows where a runtime got faster with fewer threads (measured in this run)."""
    if len(results) < 2:
        return []
    most, least = max(results), min(results)
    notes = []
    for side, label in (("torch", "PyTorch"), ("ort", "ONNX Runtime")):
        pairs = [
            (a, b) for a, b in zip(results[most], results[least], strict=True) if a[side] < b[side]
        ]
        if not pairs:
            continue
        a, b = max(pairs, key=lambda p: p[1][side] / p[0][side])
        notes.append(
            f"- {label} ran faster with {least} thread than with {most} in {len(pairs)} of "
            f"{len(results[most])} rows (most: {a['arch']} batch {a['batch']}, "
            f"{a[side]:,.0f} vs {b[side]:,.0f} img/s). The cores were shared: load average "
            f"{load_end[0]:.1f} on {cores()} cores at the end of the run, so a thread pool "
            f"that waits for all its threads at every op waits for a descheduled one."
        )
    return notes


def to_markdown(
    results: dict[int, list[dict]],
    *,
    command: str,
    repeats: int,
    load: tuple,
    cores: int,
    load_end: tuple = (0.0, 0.0, 0.0),
) -> str:
    lines = [
        "## Export: ONNX Runtime vs PyTorch eager on CPU",
        "",
        f"Machine: {cpu_name()}, {cores} cores available to the process "
        f"({platform.system()} {platform.machine()}), load average {load[0]:.1f} / "
        f"{load[1]:.1f} (1 / 5 min) when the run started; Python {platform.python_version()}, "
        f"torch {torch.__version__.split('+')[0]}, onnxruntime {ort.__version__} "
        f"(CPUExecutionProvider).",
        "",
        f"Command: `{command}`",
        "",
        "Both columns make the same uint8 images from the same float32 latents (the exported "
        "graph against the PyTorch module export traced, tanh -> 0..255 included). "
        f"Median of {repeats} alternating repeats, images/s (min-max in brackets). "
        "Untrained seeded weights: the values do not change the arithmetic.",
    ]
    for threads, rows in results.items():
        lines += [
            "",
            f"### {threads} thread{'s' if threads > 1 else ''} "
            f"(`torch.set_num_threads({threads})`, ORT `intra_op_num_threads={threads}`)",
            "",
            *table(rows),
        ]
        notes = slower_notes(rows)
        if notes:
            lines += ["", "Where ORT is slower, measured:", "", *notes]
    notes = thread_notes(results, load_end)
    if notes:
        lines += ["", "Threads:", "", *notes]
    return "\n".join(lines) + "\n"


def run(
    archs: Sequence[str] = ("dcgan", "mlp"),
    batches: Sequence[int] = (1, 64, 512),
    repeats: int = 7,
    seconds: float = 0.5,
    threads: Sequence[int] | None = None,
    command: str = "python -m bench.export_bench",
) -> str:
    """Measure every (threads, architecture, batch); return the markdown section.

    ``threads`` defaults to (cores,): both runtimes use every core available.
    """
    settings = list(threads or [cores()])
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    results: dict[int, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="ganserve-bench-") as tmp:
        for t in settings:
            results[t] = []
            for arch in archs:
                results[t] += measure(arch, batches, repeats, seconds, t, Path(tmp))
    load_end = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return to_markdown(
        results, command=command, repeats=repeats, load=load, cores=cores(), load_end=load_end
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.export_bench", description=__doc__)
    p.add_argument("--archs", nargs="+", default=["dcgan", "mlp"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 64, 512])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--seconds", type=float, default=0.5, help="time per repeat")
    p.add_argument(
        "--threads", nargs="+", type=int, default=None, help="thread settings (default: cores)"
    )
    p.add_argument("--no-write", action="store_true", help="print, do not touch docs/")
    args = p.parse_args(argv)
    command = "python -m bench.export_bench " + " ".join(argv if argv is not None else sys.argv[1:])
    md = run(args.archs, args.batches, args.repeats, args.seconds, args.threads, command.strip())
    print(md)
    if not args.no_write:
        print(f"wrote {write_section(SECTION, md)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
