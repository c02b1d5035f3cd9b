"""Helpers for the export tests: seeded untrained checkpoints of any registered architecture."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from export.specs import SPECS, ExportSpec
from training.data import FASHION_MNIST_CLASSES
from training.networks import (
    MLPSmallDiscriminator,
    build_discriminator,
    build_generator,
    get_arch,
    register,
)

BATCH_BRANCH = "batch-branch"

FASHION_CLASSES = list(FASHION_MNIST_CLASSES)


def checkpoint_payload(arch: str, seed: int = 0, **extra: Any) -> dict[str, Any]:
    """A checkpoint of an untrained, seeded G and D with default constructor arguments."""
    spec = get_arch(arch)
    torch.manual_seed(seed)
    g, d = build_generator(arch), build_discriminator(arch)
    c, h, w = spec.image_shape
    gray = c == 1
    payload: dict[str, Any] = {
        "arch": arch,
        "g_kwargs": {},
        "d_kwargs": {},
        "G": g.state_dict(),
        "D": d.state_dict(),
        "epoch": 3,
        "step": 1407,
        "options": {"arch": arch, "batch_size": 128, "lr": 2e-4},
        "dataset": {
            "name": "fashion-mnist" if gray else "anime-faces",
            "num_classes": 10 if gray else 0,
            "class_names": FASHION_CLASSES if gray else None,
            "image_shape": [c, h, w],
        },
        "loss": "bce",
    }
    payload.update(extra)
    return payload


class BatchBranchGenerator(nn.Module):
    """Takes a Python branch on the batch size: tracing freezes it, so ONNX differs at batch 1."""

    Discriminator = MLPSmallDiscriminator

    def __init__(self, latent_dim: int = 8) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = (1, 4, 4)
        self.fc = nn.Linear(latent_dim, 16)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z) * 4
        if z.shape[0] == 1:
            x = -x
        return torch.tanh(x).view(-1, 1, 4, 4)


def register_batch_branch() -> str:
    """Register ``batch-branch`` and its export spec (callers undo it, e.g. with monkeypatch)."""
    register(BATCH_BRANCH, image_shape=(1, 4, 4), report="test", description="parity failure")(
        BatchBranchGenerator
    )
    SPECS[BATCH_BRANCH] = ExportSpec(arch=BATCH_BRANCH, conditional=False)
    return BATCH_BRANCH


def batch_branch_payload() -> dict[str, Any]:
    """A checkpoint of ``BatchBranchGenerator`` (no registration needed to build it)."""
    torch.manual_seed(0)
    return {
        "arch": BATCH_BRANCH,
        "g_kwargs": {},
        "d_kwargs": {"image_shape": (1, 4, 4)},
        "G": BatchBranchGenerator().state_dict(),
        "D": MLPSmallDiscriminator((1, 4, 4)).state_dict(),
        "epoch": 0,
        "dataset": {"name": "x", "num_classes": 0, "class_names": None, "image_shape": [1, 4, 4]},
        "loss": "bce",
    }
