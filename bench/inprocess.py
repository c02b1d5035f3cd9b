"""The in-process limit: the ONNX session + PNG encoding in a tight loop, no HTTP.

    python -m bench.inprocess --model-dir models/NAME --images 64 [--batches 8 32 64 128]

One thread does what a request costs ganserve, with nothing between the steps:
latents from a seed, one session run of ``batch`` latents (the session built
with the service's own options, so the same provider and thread count), then
PNGs at the service's compression level: one grid per ``images`` images (or one
PNG per image when ``images`` is 1). Each batch size is timed in windows until
the last three agree within 10% (at most ``max_windows``); the best batch size's
images/s is the limit a server of this model can approach.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ganserve.grid import FAST_PNG_LEVEL, encode_png, make_grid
from ganserve.latent import make_latents
from service.config import Settings
from service.registry import LoadedModel, ModelError, load_model


@dataclass
class InprocessResult:
    """Images/s of one batch size (the median of the stable windows)."""

    batch: int
    images: int  # images per encoded unit (grid), 1 = one PNG per image
    images_per_s: float
    cpu_ms_per_image: float  # process CPU time (all threads) per image
    windows: list[float]
    stable: bool
    provider: str
    intra_op_threads: int


def encode(images: np.ndarray, per_unit: int) -> int:
    """PNG-encode ``images`` as grids of ``per_unit`` cells; return the bytes written."""
    total = 0
    if per_unit == 1:
        for img in images:
            total += len(encode_png(img, compress_level=FAST_PNG_LEVEL))
        return total
    columns = math.ceil(math.sqrt(per_unit))
    for i in range(0, len(images), per_unit):
        grid = make_grid(images[i : i + per_unit], columns, padding=2)
        total += len(encode_png(grid, compress_level=FAST_PNG_LEVEL))
    return total


def measure_batch(
    model_dir: Path,
    images: int,
    batch: int,
    *,
    window_s: float = 1.0,
    max_windows: int = 6,
    stability: float = 0.10,
    model: LoadedModel | None = None,
) -> InprocessResult:
    """Images/s of the tight loop at one batch size."""
    m = model or load_model(model_dir, Settings(models_dir=model_dir.parent))
    runs = max(1, images // batch)  # session runs per encoded unit (batch < images)
    rows = max(batch, images)  # images made per loop iteration
    labels = np.arange(batch, dtype=np.int64) % max(m.num_classes, 1)
    windows: list[float] = []
    seed = 0

    def step() -> None:
        nonlocal seed
        parts = []
        for _ in range(runs):
            z = make_latents(seed, batch, m.latent_dim)
            seed += 1
            parts.append(m.run(z, labels if m.conditional else None))
        encode(np.concatenate(parts) if len(parts) > 1 else parts[0], images)

    step()  # warm-up
    stable = False
    cpu_start, made = time.process_time(), 0
    for _ in range(max_windows):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < window_s or done == 0:
            step()
            done += rows
        made += done
        windows.append(done / elapsed)
        last = windows[-3:]
        mean = sum(last) / len(last)
        if len(last) == 3 and all(abs(v - mean) <= stability * mean for v in last):
            stable = True
            break
    threads = m.session.get_session_options().intra_op_num_threads
    return InprocessResult(
        batch=batch,
        images=images,
        images_per_s=float(np.median(windows[-3:])),
        cpu_ms_per_image=(time.process_time() - cpu_start) * 1000 / max(made, 1),
        windows=windows,
        stable=stable,
        provider=m.provider,
        intra_op_threads=threads,
    )


def sweep(
    model_dir: Path,
    images: int,
    batches: Sequence[int],
    *,
    window_s: float = 1.0,
    max_windows: int = 6,
) -> list[InprocessResult]:
    """Every batch size that tiles ``images`` (a divisor or a multiple of it)."""
    model = load_model(model_dir, Settings(models_dir=model_dir.parent))
    usable = [b for b in batches if b % images == 0 or images % b == 0]
    if not usable:
        raise ValueError(f"no batch size in {list(batches)} divides or is a multiple of {images}")
    return [
        measure_batch(model_dir, images, b, window_s=window_s, max_windows=max_windows, model=model)
        for b in usable
    ]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    p.add_argument("--model-dir", type=Path, required=True, help="models/<name> (model.onnx)")
    p.add_argument("--images", type=int, default=64, help="images per grid (1: a PNG each)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64, 128, 256])
    p.add_argument("--window", type=float, default=1.0, help="seconds per window")
    p.add_argument("--max-windows", type=int, default=6)
    p.add_argument("--json", type=Path, help="write the results here as JSON")
    args = p.parse_args(argv)
    try:
        results = sweep(
            args.model_dir,
            args.images,
            args.batches,
            window_s=args.window,
            max_windows=args.max_windows,
        )
    except (ModelError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in results:
        print(
            f"batch {r.batch:4d}: {r.images_per_s:9.1f} images/s"
            f" ({'stable' if r.stable else 'unstable'}, {r.provider})"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
