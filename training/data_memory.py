"""Peak memory of one epoch over an image folder, held in memory or streamed.

    python -m training.data_memory --images 20000 [--size 64] [--folder DIR]

Writes a folder of random RGB PNGs (or uses ``--folder``), then, in a fresh
process per mode, loads it with ``load_dataset(..., mode=...)`` and walks one
epoch of batches, checking that every image is seen exactly once. Prints the
peak resident memory of each process (its DataLoader workers counted
separately) as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_folder(path: Path, n: int, size: int, seed: int = 0) -> Path:
    from PIL import Image

    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        # smooth colour fields (compress like real images, unlike white noise)
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR)
        im.save(path / f"{i:06d}.png")
    return path


def peak_rss_kb() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> None:
    """Start VmHWM again from the current resident size (Linux: ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def walk_epoch(folder: Path, mode: str, size: int, batch: int, workers: int) -> dict[str, object]:
    """Load ``folder`` in ``mode`` and walk one epoch; what a run of that mode holds."""
    import torch

    from training.data import load_dataset

    reset_peak_rss()  # the imports' transient peak is not what a mode holds
    t0 = time.perf_counter()
    data = load_dataset(f"folder:{folder}", image_shape=(3, size, size), mode=mode, workers=workers)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    lists = [order[i : i + batch] for i in range(0, len(data), batch)]
    seen = torch.zeros(len(data), dtype=torch.int64)
    total = 0.0
    for idx, x in data.batches(lists, "cpu"):
        seen[idx] += 1
        total += float(x.mean())
    self_kb = peak_rss_kb()
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "mode": data.mode,
        "images": len(data),
        "each_seen_once": bool((seen == 1).all()),
        "peak_mb": round(self_kb / 1024, 1),
        "worker_peak_mb": round(child_kb / 1024, 1) if data.mode == "stream" else 0.0,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def measure(folder: Path, mode: str, size: int, batch: int, workers: int) -> dict[str, object]:
    """``walk_epoch`` in a fresh interpreter, so each mode's peak is its own."""
    call = f"walk_epoch(Path({str(folder)!r}), {mode!r}, {size}, {batch}, {workers})"
    code = (
        "import json; from pathlib import Path; from training.data_memory import walk_epoch; "
        f"print(json.dumps({call}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.data_memory", description=__doc__)
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--folder", type=Path, help="an existing folder (default: a generated one)")
    p.add_argument("--modes", nargs="+", default=["stream", "memory"])
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or write_folder(Path(tmp) / "images", args.images, args.size)
        rows = [measure(folder, m, args.size, args.batch, args.workers) for m in args.modes]
    print("| mode | images | every image once | peak RSS (MB) | per worker peak (MB) | s |")
    print("|---|--:|---|--:|--:|--:|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['images']:,} | {r['each_seen_once']} | {r['peak_mb']} | "
            f"{r['worker_peak_mb']} | {r['seconds']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
