"""What every peer service shares with ganserve: the session, the latents, the PNG grid.

Numpy, onnxruntime and Pillow only, so it imports in a peer's own environment. The
session gets ganserve's CPU options (intra-op threads for the usable cores, no
spinning) and answers are built exactly as ganserve builds them for
``POST /generate {"n": N, "seed": S}`` (latent contract, ``make_grid`` with
ceil(sqrt(N)) columns and padding 2, PNG at ganserve's level), so every server
answers the same request with the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ganserve.grid import FAST_PNG_LEVEL, encode_png, make_grid
from ganserve.latent import make_latents
from ganserve.session import cpu_session_options

MODEL_DIR_ENV = "PEER_MODEL_DIR"  # the model directory (model.onnx + card.json) a peer serves
WORKERS_ENV = "PEER_WORKERS"  # worker processes (BentoML) or replicas (Ray Serve)
MAX_N = 256  # ganserve's default GANSERVE_MAX_N
MAX_PADDING = 16
MAX_BATCH = 64  # ganserve's default GANSERVE_MAX_BATCH: latents per session run
MAX_WAIT_S = 0.002  # ganserve's default GANSERVE_MAX_WAIT_MS


class BadRequest(ValueError):
    """A request field out of range; peers answer it with 4xx."""


@dataclass(frozen=True)
class Request:
    """The fields of ganserve's /generate that a PNG grid needs."""

    n: int
    seed: int
    columns: int
    padding: int


class Generator:
    """One unconditional exported generator on the CPU provider."""

    def __init__(self, model_dir: Path | str | None = None, *, session: bool = True) -> None:
        """The card of ``model_dir`` (default $PEER_MODEL_DIR) and, unless ``session`` is
        false (a front service that only parses requests), its ONNX Runtime session."""
        model_dir = Path(model_dir or os.environ[MODEL_DIR_ENV])
        self.card: dict[str, Any] = json.loads((model_dir / "card.json").read_text())
        if self.card.get("conditional"):
            raise ValueError(f"{model_dir.name} is conditional; the peers serve unconditional ones")
        self.name: str = self.card["name"]
        self.latent_dim = int(self.card["latent_dim"])
        self.session: ort.InferenceSession | None = None
        if session:
            self.session = ort.InferenceSession(
                str(model_dir / "model.onnx"),
                sess_options=cpu_session_options(),
                providers=["CPUExecutionProvider"],
            )

    def run(self, z: np.ndarray) -> np.ndarray:
        """uint8 images [n, H, W, C] for float32 latents [n, latent_dim]."""
        if self.session is None:
            raise RuntimeError("this Generator was made without a session")
        return self.session.run(["image"], {"z": z})[0]

    def request(self, body: dict[str, Any]) -> Request:
        """The request a JSON body asks for; BadRequest when a field is out of range."""
        known = {"model", "n", "seed", "columns", "padding"}
        extra = sorted(set(body) - known)
        if extra:
            raise BadRequest(f"unknown field(s): {', '.join(extra)}")
        model = body.get("model")
        if model is not None and model != self.name:
            raise BadRequest(f"unknown model {model!r}; this server serves {self.name!r}")
        n = _int(body, "n", 16, 1, MAX_N)
        seed = body.get("seed")
        seed = secrets.randbelow(2**31) if seed is None else _int(body, "seed", 0, 0, 2**63 - 1)
        columns = body.get("columns")
        columns = math.ceil(math.sqrt(n)) if columns is None else _int(body, "columns", 1, 1, None)
        padding = _int(body, "padding", 2, 0, MAX_PADDING)
        return Request(n=n, seed=seed, columns=columns, padding=padding)

    def latents(self, req: Request) -> np.ndarray:
        return make_latents(req.seed, req.n, self.latent_dim)


def _int(body: dict[str, Any], key: str, default: int, low: int, high: int | None) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be an integer")
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise BadRequest(f"{key} must be in {bound}")
    return value


def png_grid(images: np.ndarray, req: Request) -> bytes:
    """The PNG grid ganserve answers for these images and request."""
    grid = make_grid(images, req.columns, padding=req.padding)
    return encode_png(grid, compress_level=FAST_PNG_LEVEL)


def split(images: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Rows of one session run handed back per request, in order."""
    return np.split(images, np.cumsum(sizes)[:-1])
