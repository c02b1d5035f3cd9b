"""Where a generator's ONNX Runtime session spends its time, per operator, on the CPU.

    python -m bench.session_profile models/dcgan-fashion-v2 [--batch 64] [--runs 30]

Runs the model file's graph and the graph the service serves (``service.graph_rewrite``)
side by side, each in its own one-thread session with ganserve's options: the session's
CPU time per run (process time, so another process on the machine changes it little),
and ONNX Runtime's own profile of its kernels (wall time, profiling on), per node and run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]

from ganserve.session import cpu_session_options
from service import graph_rewrite
from service.registry import probe_feeds


def feeds_for(session: ort.InferenceSession, batch: int, num_classes: int) -> dict[str, np.ndarray]:
    """Seeded latents (and labels for a conditional graph) of the session's latent size."""
    inputs = {i.name: i for i in session.get_inputs()}
    return probe_feeds(int(inputs["z"].shape[1]), num_classes if "label" in inputs else 0, batch)


def profile(model_bytes: bytes, feeds: dict[str, np.ndarray], runs: int) -> dict[str, object]:
    """CPU ms per run and ONNX Runtime's kernel ms per run by node, on one thread."""
    with tempfile.TemporaryDirectory() as tmp:
        options = cpu_session_options(1)
        session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        for _ in range(3):
            session.run(["image"], feeds)
        start = time.process_time()
        for _ in range(runs):
            session.run(["image"], feeds)
        cpu_ms = (time.process_time() - start) / runs * 1000
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "profile")
        profiled = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            profiled.run(["image"], feeds)
        events = json.loads(Path(profiled.end_profiling()).read_text())
    kernels: Counter[tuple[str, str]] = Counter()
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            kernels[(op, name.removesuffix("_kernel_time"))] += event["dur"] / 1000 / runs
    return {"cpu_ms": cpu_ms, "kernels": kernels}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.session_profile", description=__doc__)
    p.add_argument("model_dir", help="a model directory (model.onnx + card.json)")
    p.add_argument("--batch", type=int, default=64, help="latents per run (default 64)")
    p.add_argument("--runs", type=int, default=30, help="runs measured (default 30)")
    p.add_argument("--top", type=int, default=8, help="nodes listed per graph (default 8)")
    args = p.parse_args(argv)
    model_file = Path(args.model_dir) / "model.onnx"
    if not model_file.is_file():
        print(f"error: {model_file} does not exist", file=sys.stderr)
        return 2
    if args.batch < 1 or args.runs < 1:
        print("error: --batch and --runs must be at least 1", file=sys.stderr)
        return 2
    model_bytes = model_file.read_bytes()
    card_file = model_file.with_name("card.json")
    card = json.loads(card_file.read_text()) if card_file.is_file() else {}
    num_classes = int(card.get("num_classes") or 10)
    probe_session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = feeds_for(probe_session, args.batch, num_classes)
    served = graph_rewrite.rewrite(model_bytes, feeds_for(probe_session, 2, num_classes))
    graphs = {"file": model_bytes}
    if served.applied:
        graphs["served"] = served.model_bytes
    results = {name: profile(data, feeds, args.runs) for name, data in graphs.items()}
    print(f"{model_file}: {args.batch} latents per run, {args.runs} runs, 1 thread")
    for name, result in results.items():
        label = f"served ({', '.join(served.applied)})" if name == "served" else "file"
        print(f"\n{label}: {result['cpu_ms']:.2f} ms CPU per run; kernels, wall ms per run:")
        kernels: Counter[tuple[str, str]] = result["kernels"]  # type: ignore[assignment]
        for (op, node), ms in kernels.most_common(args.top):
            print(f"  {ms:8.2f} ms  {op:<20} {node}")
    if "served" in results:
        ratio = float(results["file"]["cpu_ms"]) / float(results["served"]["cpu_ms"])  # type: ignore[arg-type]
        print(f"\nfile / served CPU per run: {ratio:.2f}x")
    else:
        print("\nno rewrite applies to this graph: the service runs the file's graph")
    return 0


if __name__ == "__main__":
    sys.exit(main())
