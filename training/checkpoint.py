"""Checkpoints: everything needed to resume training, or to rebuild G without the CLI.

A checkpoint is one ``torch.save`` dict (see ``FORMAT``)::

    format        "ganserve-checkpoint/1"
    arch          registered architecture name (training.networks)
    g_kwargs      constructor arguments of G      d_kwargs  ... of D
    G, D          state dicts                    G_ema     EMA state dict of G, or None
    opt_G, opt_D  optimizer state dicts
    epoch, step   completed epochs and optimizer steps
    options       the run's training options (dict, as in training_options.json)
    dataset       {"name", "num_classes", "class_names", "image_shape"}
    loss          loss name                      rng       RNG states for exact resume
    stats         {"images_per_second", "train_seconds", "device"}

``load_generator`` rebuilds G (the EMA weights when present) from the file alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.networks import build_discriminator, build_generator, get_arch

FORMAT = "ganserve-checkpoint/1"
REQUIRED_KEYS = ("format", "arch", "g_kwargs", "d_kwargs", "G", "D", "epoch", "dataset", "loss")


class CheckpointError(ValueError):
    """A file that is missing, not a ganserve checkpoint, or does not fit its architecture."""


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically (temporary name, then rename)."""
    path = Path(path)
    payload = {"format": FORMAT, **payload}
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"checkpoint payload lacks {', '.join(missing)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def untrained_checkpoint(
    arch: str, *, dataset: dict[str, Any], seed: int = 0, **fields: Any
) -> dict[str, Any]:
    """The payload of freshly initialised (seeded) networks of ``arch``, for benchmarks and tests.

    ``fields`` add to it or replace its defaults (epoch 0, step 0, no EMA, loss ``bce``).
    """
    torch.manual_seed(seed)
    payload: dict[str, Any] = {
        "arch": arch,
        "g_kwargs": {},
        "d_kwargs": {},
        "G": build_generator(arch).state_dict(),
        "D": build_discriminator(arch).state_dict(),
        "G_ema": None,
        "epoch": 0,
        "step": 0,
        "dataset": dataset,
        "loss": "bce",
    }
    return {**payload, **fields}


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a checkpoint; raise ``CheckpointError`` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(exc).__name__})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganserve checkpoint (expected format {FORMAT})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
    try:
        get_arch(ckpt["arch"])
    except KeyError as exc:
        raise CheckpointError(f"{path}: {exc.args[0]}") from None
    return ckpt


def _load_state(net: nn.Module, state: dict[str, Any], what: str, path: Path | str) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: {what} weights do not fit the architecture: {first}"
        ) from None


def load_generator(
    path_or_ckpt: str | os.PathLike[str] | dict[str, Any], *, ema: bool = True
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild G in eval mode from a checkpoint; returns (G, checkpoint)."""
    if isinstance(path_or_ckpt, dict):
        ckpt, where = path_or_ckpt, "checkpoint"
    else:
        ckpt, where = load_checkpoint(path_or_ckpt), str(path_or_ckpt)
    g = build_generator(ckpt["arch"], **ckpt["g_kwargs"])
    state = ckpt.get("G_ema") if ema and ckpt.get("G_ema") is not None else ckpt["G"]
    _load_state(g, state, "generator", where)
    return g.eval(), ckpt
