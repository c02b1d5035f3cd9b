"""The reports' latent experiments, offline from a checkpoint.

    python -m training.experiments runs/00000-dcgan-fashion-mnist/checkpoint-000008.pt --out exp/

writes one PNG per experiment: ``fixed`` (8 samples), ``dims`` (5 dimensions x
(-3, 0, 3): the 15 x 8 grid), ``scale`` (x0.5, x1, x2), ``shift`` (-3, 0, +3 on
every dimension) and ``noise`` (0, 0.5, 1, 2 x N(0, 1)). Latents and
perturbations come from ``ganserve.latent``, the same functions the service's
``/perturb`` uses, so the service reproduces these grids.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganserve.grid import encode_png, make_grid
from ganserve.latent import REPORT_DIMS, REPORT_VALUES, make_latents, perturb_latents
from training.checkpoint import CheckpointError, load_generator
from training.loop import to_uint8_nhwc

#: name -> (dims, values, mode); dims None = the whole vector
EXPERIMENTS: dict[str, tuple[Sequence[int] | None, Sequence[float], str]] = {
    "dims": (REPORT_DIMS, REPORT_VALUES, "set"),
    "scale": (None, (0.5, 1.0, 2.0), "scale"),
    "shift": (None, (-3.0, 0.0, 3.0), "add"),
    "noise": (None, (0.0, 0.5, 1.0, 2.0), "noise"),
}


@torch.no_grad()
def render(g: nn.Module, z: np.ndarray, label: int | None = None) -> np.ndarray:
    """uint8 [N, H, W, C] images of latents ``z`` (one label for all, when conditional)."""
    zt = torch.from_numpy(z)
    if getattr(g, "num_classes", None):
        labels = torch.full((len(z),), 0 if label is None else label, dtype=torch.long)
        return to_uint8_nhwc(g(zt, labels))
    return to_uint8_nhwc(g(zt))


def run_experiments(
    g: nn.Module, out: Path, *, seed: int = 0, n: int = 8, scale: int = 2, label: int | None = None
) -> dict[str, Path]:
    """Write every experiment's grid under ``out``; returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    z = make_latents(seed, n, g.latent_dim)
    written = {"fixed": out / "fixed.png"}
    written["fixed"].write_bytes(encode_png(make_grid(render(g, z, label), n, scale=scale)))
    for name, (dims, values, mode) in EXPERIMENTS.items():
        rows = perturb_latents(z, values, dims=dims, mode=mode, seed=seed)
        grid = make_grid(render(g, rows, label), n, scale=scale)
        written[name] = out / f"{name}.png"
        written[name].write_bytes(encode_png(grid))
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.experiments", description=__doc__.split("\n")[0]
    )
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="folder for the PNGs")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed latent batch")
    p.add_argument("--n", type=int, default=8, help="base samples (columns)")
    p.add_argument("--scale", type=int, default=2, help="nearest-neighbour upscaling of each cell")
    p.add_argument("--label", type=int, default=None, help="class for conditional generators")
    args = p.parse_args(argv)
    try:
        g, ckpt = load_generator(args.checkpoint)
        if args.label is not None and not 0 <= args.label < getattr(g, "num_classes", 0):
            raise CheckpointError(f"--label {args.label} does not fit this generator")
        written = run_experiments(
            g, Path(args.out), seed=args.seed, n=args.n, scale=args.scale, label=args.label
        )
    except (CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
