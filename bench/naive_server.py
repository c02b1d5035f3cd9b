"""The naive baseline: FastAPI + the PyTorch generator called per request, no batching.

    python -m bench.naive_server (--checkpoint CKPT | --model-dir models/NAME) [--port 8001]
        [--workers N]

What the reports' sampling code becomes when put behind HTTP: each request
draws its latents, runs G in eager PyTorch under ``torch.no_grad()`` with
PyTorch's default threads, tiles the grid and saves it with Pillow's default
PNG settings, all inside a plain ``def`` endpoint (FastAPI runs it in its thread
pool). Latents follow the latent contract and the grid is laid out like
ganserve's, so both servers draw the same pixels for the same request.

With ``--model-dir`` and no checkpoint, G is an untrained generator of the
card's architecture: the same arithmetic as the trained one, other pixels.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import Response
from PIL import Image
from pydantic import BaseModel, Field

from ganserve.card import ModelCard
from ganserve.grid import make_grid
from ganserve.latent import make_latents
from training.checkpoint import CheckpointError, load_generator
from training.networks import ARCHITECTURES, build_generator


class GenerateBody(BaseModel):
    """The fields of ganserve's /generate that a PNG grid needs."""

    n: int = Field(default=16, ge=1, le=256)
    seed: int | None = Field(default=None, ge=0)
    columns: int | None = Field(default=None, ge=1)
    padding: int = Field(default=2, ge=0, le=16)
    model: str | None = None  # accepted and ignored: this server has one model


def generator_from_checkpoint(path: Path) -> tuple[torch.nn.Module, str]:
    """G (eval mode) rebuilt from a training checkpoint, and a description."""
    g, ckpt = load_generator(path)
    return g, f"{ckpt['arch']} from checkpoint {path}"


def generator_from_card(model_dir: Path) -> tuple[torch.nn.Module, str]:
    """An untrained G of the card's architecture, checked against the card's shapes."""
    card = ModelCard.load(model_dir)
    arch = card.architecture
    if arch is None or arch not in ARCHITECTURES:
        raise ValueError(f"card of {model_dir} names an unknown architecture {arch!r}")
    torch.manual_seed(0)
    g = build_generator(arch).eval()
    c, h, w = ARCHITECTURES[arch].image_shape
    if g.latent_dim != card.latent_dim or (h, w, c) != card.image_shape:
        raise ValueError(
            f"an untrained {arch} does not match the card of {model_dir} (other widths?); "
            "give --checkpoint"
        )
    return g, f"untrained {arch} (the card's architecture; no checkpoint given)"


def create_naive_app(g: torch.nn.Module, description: str = "") -> FastAPI:
    """The baseline app around generator ``g``."""
    app = FastAPI(title="naive GAN server", description=description)
    latent_dim = int(g.latent_dim)
    num_classes = int(getattr(g, "num_classes", 0) or 0)

    @app.get("/healthz")
    def get_health() -> dict[str, Any]:
        """Alive, with what it serves."""
        return {"status": "ok", "generator": description, "torch_threads": torch.get_num_threads()}

    @app.post("/generate")
    def generate_images(body: GenerateBody) -> Response:
        """A PNG grid of n images, G run on every request."""
        seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
        z = torch.from_numpy(make_latents(seed, body.n, latent_dim))
        with torch.no_grad():
            if num_classes:
                x = g(z, torch.arange(body.n) % num_classes)
            else:
                x = g(z)
        images = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        images_np = images.permute(0, 2, 3, 1).numpy()
        columns = body.columns or math.ceil(math.sqrt(body.n))
        grid = make_grid(images_np, columns, padding=body.padding)
        if grid.shape[2] == 1:
            grid = grid[:, :, 0]
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(grid)).save(buf, format="PNG")
        return Response(buf.getvalue(), media_type="image/png")

    @app.get("/generate")
    def generate_images_by_query(n: int = 16, seed: int | None = None) -> Response:
        """The same by query parameters."""
        if not 1 <= n <= 256:
            raise HTTPException(422, "n must be in [1, 256]")
        return generate_images(GenerateBody(n=n, seed=seed))

    return app


SOURCE_ENV = "NAIVE_SERVER_SOURCE"  # "--checkpoint=PATH" or "--model-dir=PATH", for workers


def load(flag: str, path: Path) -> tuple[torch.nn.Module, str]:
    """G and its description from ``--checkpoint`` or ``--model-dir``."""
    if flag == "--checkpoint":
        return generator_from_checkpoint(path)
    return generator_from_card(path)


def app_from_env() -> FastAPI:
    """The app of one uvicorn worker process (``--workers`` > 1), G named by SOURCE_ENV."""
    flag, path = os.environ[SOURCE_ENV].split("=", 1)
    return create_naive_app(*load(flag, Path(path)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.naive_server", description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="training checkpoint of G")
    src.add_argument("--model-dir", type=Path, help="ONNX model dir: untrained G of its card")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = p.parse_args(argv)
    flag, path = (
        ("--checkpoint", args.checkpoint)
        if args.checkpoint is not None
        else ("--model-dir", args.model_dir)
    )
    try:
        g, description = load(flag, path)
    except (CheckpointError, OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"naive server: {description}", file=sys.stderr, flush=True)
    if args.workers > 1:  # each worker process builds its own app (and G) from the environment
        os.environ[SOURCE_ENV] = f"{flag}={path}"
        uvicorn.run(
            "bench.naive_server:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            log_level="warning",
            workers=args.workers,
            # a worker answers uvicorn's health check only once torch is imported and G built:
            # on a busy machine that takes longer than uvicorn's default 5 s
            timeout_worker_healthcheck=120,
        )
        return 0
    uvicorn.run(
        create_naive_app(g, description), host=args.host, port=args.port, log_level="warning"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
