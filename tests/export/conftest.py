"""Fixtures for the export tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from export_testlib import checkpoint_payload

from training.checkpoint import save_checkpoint


@pytest.fixture
def make_checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """Write ``checkpoint_payload(arch, ...)`` to a file under tmp_path; return its path."""

    def make(arch: str = "dcgan", seed: int = 0, name: str | None = None, **extra: Any) -> Path:
        path = tmp_path / "checkpoints" / (name or f"{arch}-{seed}.pt")
        return save_checkpoint(path, checkpoint_payload(arch, seed, **extra))

    return make
