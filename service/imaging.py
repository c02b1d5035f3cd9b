"""Running a plan: its latents through the model's batcher, the images encoded as the response.

Plans come from ``service.planner``. Latents follow the latent contract
(``ganserve.latent``) and grids are laid out by ``ganserve.grid``, so a service
grid is byte for byte the grid the offline experiments draw for the same
model, seed and settings. A full queue raises ``service.batcher.QueueFull``
(answered 503 by the app).
"""

from __future__ import annotations

import base64
import time

import numpy as np
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ganserve.grid import FAST_PNG_LEVEL, encode_png, make_grid
from service.batcher import Batcher
from service.config import Settings
from service.metrics import Metrics
from service.planner import Plan
from service.registry import LoadedModel, Registry
from service.schemas import GridRequest, ImageCell, ImagesResponse

# Images of at most this many bytes (after scaling) are encoded on the event loop: a PNG
# that small takes well under a millisecond, less than the thread hop would cost.
INLINE_ENCODE_BYTES = 4096


class ImageService:
    """What the image routes share: the models, their batchers, the limits and the metrics."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        batchers: dict[str, Batcher],
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.batchers = batchers
        self.metrics = metrics
        # the encode-time series, looked up once (labels() takes a lock and a dict lookup)
        self._encode_time = {f: metrics.encode_time.labels(f) for f in ("png", "json")}

    async def images(self, plan: Plan) -> np.ndarray:
        """The plan's images through the model's batcher (``QueueFull`` when it is full)."""
        return await self.batchers[plan.model.name].generate(plan.z, plan.labels)

    async def respond(self, plan: Plan, req: GridRequest) -> Response:
        """Generate the plan's images and answer with a PNG grid or JSON cells."""
        images = await self.images(plan)
        columns = min(plan.columns, len(plan.z))
        headers = {
            "X-Model": plan.model.name,
            "X-Seed": str(plan.seed),
            "X-Grid-Rows": str(plan.rows),
            "X-Grid-Columns": str(columns),
        }
        # Small images are encoded on the event loop: less work than the thread hop.
        inline = images.nbytes * req.scale**2 <= INLINE_ENCODE_BYTES
        start = time.perf_counter()
        if req.format == "png":
            args = (images, plan.columns, req.padding, req.scale)
            png = encode_grid(*args) if inline else await run_in_threadpool(encode_grid, *args)
            self._encode_time["png"].observe(time.perf_counter() - start)
            return Response(png, media_type="image/png", headers=headers)
        if inline:
            pngs = encode_cells(images, req.scale)
        else:
            pngs = await run_in_threadpool(encode_cells, images, req.scale)
        self._encode_time["json"].observe(time.perf_counter() - start)
        body = ImagesResponse(
            model=plan.model.name,
            seed=plan.seed,
            rows=plan.rows,
            columns=columns,
            images=[
                ImageCell(
                    row=i // columns,
                    column=i % columns,
                    seed=plan.seed,
                    class_name=class_name(plan.model, cell.get("label")),
                    png_base64=png,
                    **cell,
                )
                for i, (cell, png) in enumerate(zip(plan.cells, pngs, strict=True))
            ],
        )
        return JSONResponse(body.model_dump(mode="json"), headers=headers)


def class_name(model: LoadedModel, index: int | None) -> str | None:
    """The card's name of a class, when it has one."""
    if index is None or not model.class_names or index >= len(model.class_names):
        return None
    return model.class_names[index]


def encode_grid(images: np.ndarray, columns: int, padding: int, scale: int) -> bytes:
    """One PNG of the images tiled row-major (blocking; run it in a thread)."""
    grid = make_grid(images, columns, padding=padding, scale=scale)
    return encode_png(grid, compress_level=FAST_PNG_LEVEL)


def encode_cells(images: np.ndarray, scale: int) -> list[str]:
    """Each image as a base64 PNG (blocking; run it in a thread)."""
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    return [
        base64.b64encode(encode_png(img, compress_level=FAST_PNG_LEVEL)).decode("ascii")
        for img in images
    ]
