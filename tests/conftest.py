"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """The offline data sets: $GANSERVE_DATA_DIR, else ../shared/data beside the repository."""
    env = os.environ.get("GANSERVE_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not (path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"Fashion-MNIST is not at {path} (set GANSERVE_DATA_DIR)")
    return path
