"""Tiny untrained models for tests: seeded checkpoints, exported like real ones.

``build_tiny_models(out_dir)`` writes a models directory the service and SDK
tests can serve::

    dcgan-fashion   dcgan, unconditional, 28x28x1, Fashion-MNIST class names
    cgan-fashion    cgan, conditional (label 0..9), 28x28x1
    dcgan64-rgb     dcgan64 at width 8, unconditional, 64x64x3, no classes

Weights are seeded (identical on every call and machine for the same torch
version) and BatchNorm statistics are calibrated on one seeded batch, so the
images span the 0..255 range and different seeds give visibly different images.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from export import export_checkpoint
from ganserve.latent import make_latents
from training.checkpoint import save_checkpoint
from training.data import FASHION_MNIST_CLASSES
from training.networks import build_discriminator, build_generator, get_arch

FASHION_CLASSES = list(FASHION_MNIST_CLASSES)
FASHION = {
    "name": "fashion-mnist",
    "num_classes": 10,
    "class_names": FASHION_CLASSES,
    "image_shape": [1, 28, 28],
}
RGB64 = {"name": "tiny-rgb64", "num_classes": 0, "class_names": None, "image_shape": [3, 64, 64]}

#: name -> (arch, generator kwargs, discriminator kwargs, dataset, seed)
TINY_MODELS: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], int]] = {
    "dcgan-fashion": ("dcgan", {}, {}, FASHION, 1),
    "cgan-fashion": ("cgan", {}, {}, FASHION, 2),
    "dcgan64-rgb": ("dcgan64", {"width": 8}, {"width": 8}, RGB64, 3),
}


def _calibrate_batchnorm(g: nn.Module, conditional: bool, latent_dim: int, seed: int) -> None:
    """Set BatchNorm running stats to one seeded batch's statistics (no weight changes)."""
    norms = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.momentum = None  # cumulative average: one batch sets the stats exactly
    z = torch.from_numpy(make_latents(seed, 256, latent_dim))
    args = (z, torch.arange(256) % g.num_classes) if conditional else (z,)
    with torch.no_grad():
        g.train()(*args)
    for m in norms:
        m.momentum = 0.1
    g.eval()


def tiny_checkpoint(name: str) -> dict[str, Any]:
    """The checkpoint payload of one tiny model (deterministic)."""
    arch, g_kwargs, d_kwargs, dataset, seed = TINY_MODELS[name]
    spec = get_arch(arch)
    torch.manual_seed(seed)
    g = build_generator(arch, **g_kwargs)
    d = build_discriminator(arch, **d_kwargs)
    _calibrate_batchnorm(g, spec.conditional, g.latent_dim, seed)
    return {
        "arch": arch,
        "g_kwargs": g_kwargs,
        "d_kwargs": d_kwargs,
        "G": g.state_dict(),
        "D": d.state_dict(),
        "G_ema": None,
        "epoch": 0,
        "step": 0,
        "options": {"arch": arch, "seed": seed, "untrained": True},
        "dataset": dict(dataset),
        "loss": "bce",
    }


def build_tiny_checkpoints(ckpt_dir: Path) -> dict[str, Path]:
    """Save every tiny model's checkpoint as ``ckpt_dir/<name>.pt``."""
    return {
        name: save_checkpoint(Path(ckpt_dir) / f"{name}.pt", tiny_checkpoint(name))
        for name in TINY_MODELS
    }


def build_tiny_models(out_dir: Path) -> Path:
    """Export every tiny model into ``out_dir/<name>/`` (model.onnx + card.json); return out_dir."""
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="ganserve-tiny-") as tmp:
        for name, path in build_tiny_checkpoints(Path(tmp)).items():
            export_checkpoint(path, name, out_dir, force=True)
    return out_dir
