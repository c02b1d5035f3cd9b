"""Fixtures for the service tests: tiny exported models and apps built on them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tiny_models import build_tiny_models

from service.app import create_app
from service.config import Settings


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dcgan-fashion, cgan-fashion and dcgan64-rgb, exported like real models (read-only use)."""
    return build_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def models_copy(models_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the models directory, for tests that damage or add models."""
    return Path(shutil.copytree(models_dir, tmp_path / "models"))


@pytest.fixture(scope="session", autouse=True)
def _no_ganserve_env() -> Iterator[None]:
    """Settings come from the tests alone, never from the caller's GANSERVE_* variables."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("GANSERVE_")}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def make_app(models_dir: Path) -> Callable[..., FastAPI]:
    """create_app with the tiny models and any settings overridden."""

    def make(**overrides: Any) -> FastAPI:
        overrides.setdefault("models_dir", models_dir)
        return create_app(Settings(**overrides))

    return make


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    """One running app (lifespan entered) with default settings, shared by a module."""
    with TestClient(create_app(Settings(models_dir=models_dir))) as c:
        yield c
