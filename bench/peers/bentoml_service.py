"""ganserve's /generate on BentoML: adaptive batching as BentoML's documentation shows it.

    PEER_MODEL_DIR=models/NAME bench/.venvs/bentoml/bin/python -m bentoml serve \
        bench.peers.bentoml_service:Images --host 127.0.0.1 --port 3000

Two services joined by ``bentoml.depends`` (BentoML's documented pattern for
adaptive batching): ``Images`` answers ``POST /generate`` (JSON body ``model``,
``n``, ``seed``, ``columns``, ``padding``), draws the latents and encodes the PNG
grid; ``Generator`` runs the ONNX session in a ``batchable`` API (at most 64
latents per run, ganserve's ``GANSERVE_MAX_BATCH``), which BentoML's dispatcher
fills from concurrent calls. ``PEER_WORKERS`` sets the workers of ``Images``.

``PEER_BENTOML_SESSION_REFRESH=off`` raises the ``runner_connection`` limits of
``Generator`` (BentoML's service configuration) so that the client ``Images`` uses
to call it never replaces its aiohttp session. By default BentoML replaces it
after 100 requests (or 300 s) and closes the old one while calls on it are still
in flight; under concurrent load those calls fail and their requests get HTTP 500.
Access logs are off in both services (ganserve writes none by default either).
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument
from starlette.responses import Response

from bench.peers.common import MAX_BATCH, WORKERS_ENV, BadRequest, Generator, png_grid

REFRESH_ENV = "PEER_BENTOML_SESSION_REFRESH"
NEVER = {"max_requests": 2**31 - 1, "max_age": 1e9}
NO_ACCESS_LOG = {"access": {"enabled": False}}  # as ganserve by default: no line per request
generator_config: dict[str, Any] = {"logging": NO_ACCESS_LOG}
if os.environ.get(REFRESH_ENV, "on") == "off":
    generator_config["runner_connection"] = NEVER


@bentoml.service(**generator_config)
class ImageGenerator:
    """The exported generator; concurrent calls are merged into one session run."""

    def __init__(self) -> None:
        self.generator = Generator()

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH)
    def generate(self, z: np.ndarray) -> np.ndarray:
        """uint8 images for a batch of latents."""
        return self.generator.run(z)


@bentoml.service(workers=int(os.environ.get(WORKERS_ENV, "1")), logging=NO_ACCESS_LOG)
class Images:
    """ganserve's POST /generate: a PNG grid of n images from one seed."""

    image_generator = bentoml.depends(ImageGenerator)

    def __init__(self) -> None:
        self.generator = Generator(session=False)  # the card: request fields and latents

    @bentoml.api(route="/generate")
    async def generate(
        self,
        model: str | None = None,
        n: int = 16,
        seed: int | None = None,
        columns: int | None = None,
        padding: int = 2,
    ) -> bytes:
        """A PNG grid of n images."""
        body = {"model": model, "n": n, "seed": seed, "columns": columns, "padding": padding}
        try:
            req = self.generator.request({k: v for k, v in body.items() if v is not None})
        except BadRequest as exc:
            raise InvalidArgument(str(exc)) from None
        images = await self.image_generator.to_async.generate(self.generator.latents(req))
        return Response(png_grid(images, req), media_type="image/png")  # type: ignore[return-value]
