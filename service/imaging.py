"""From a validated request to a response: latents and labels, batched inference, encoding.

Latents follow the latent contract (``ganserve.latent``) and grids are laid out by
``ganserve.grid``, so a service grid is byte for byte the grid the offline
experiments draw for the same model, seed and settings.
"""

from __future__ import annotations

import base64
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ganserve.grid import FAST_PNG_LEVEL, encode_png, grid_shape, make_grid
from ganserve.latent import REPORT_DIMS, make_latents, perturb_latents
from service.batcher import Batcher, BatcherStopped, QueueFull
from service.config import Settings
from service.metrics import Metrics
from service.registry import LoadedModel, ModelNotFound, Registry
from service.schemas import (
    ConditionalRequest,
    GenerateRequest,
    GridRequest,
    ImageCell,
    ImagesResponse,
    Label,
    PerturbRequest,
)

RANDOM_SEED_BOUND = 2**31
# Images of at most this many bytes (after scaling) are encoded on the event loop: a PNG
# that small takes well under a millisecond, less than the thread hop would cost.
INLINE_ENCODE_BYTES = 4096


def invalid(source: str, field_name: str | None, message: str, value: Any = None) -> Exception:
    """A 422 in FastAPI's validation-error shape, located at ``source`` (body or query)."""
    loc = (source, field_name) if field_name else (source,)
    error = {"type": "value_error", "loc": loc, "msg": message, "input": value}
    return RequestValidationError([error])


@dataclass
class Plan:
    """What one request will generate and how the cells are laid out."""

    model: LoadedModel
    seed: int
    z: np.ndarray  # float32 [cells, latent_dim]
    labels: np.ndarray | None  # int64 [cells] for conditional models
    columns: int
    cells: list[dict[str, Any]] = field(default_factory=list)  # per cell: index, label, dim, value

    @property
    def rows(self) -> int:
        return grid_shape(len(self.z), self.columns)[0]


class ImageService:
    """Turns image requests into plans, runs them through the batchers and encodes them."""

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

    # -- validation helpers -------------------------------------------------------------

    def model(self, name: str | None, *, conditional: bool = False) -> LoadedModel:
        """The requested (or default) model; 404 naming the available ones."""
        try:
            return self.registry.get(name, conditional=conditional)
        except ModelNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, exc.message) from None

    def label_index(self, model: LoadedModel, label: Label, source: str, field_name: str) -> int:
        """The class index a label (index, digit string or class name) names; 422 otherwise."""
        if not model.conditional:
            raise invalid(
                source,
                field_name,
                f"model {model.name} is unconditional and takes no labels",
                label,
            )
        if isinstance(label, str) and label.strip().lstrip("-").isdigit():
            label = int(label)
        if isinstance(label, int):
            if not 0 <= label < model.num_classes:
                raise invalid(
                    source,
                    field_name,
                    f"label {label} is outside [0, {model.num_classes}) for model {model.name}",
                    label,
                )
            return label
        names = [n.casefold() for n in model.class_names or []]
        wanted = label.strip().casefold()
        if wanted in names:
            return names.index(wanted)
        known = (
            ", ".join(f"{i} {n!r}" for i, n in enumerate(model.class_names or []))
            or f"indices 0..{model.num_classes - 1}"
        )
        raise invalid(
            source,
            field_name,
            f"unknown label {label!r} for model {model.name}; classes: {known}",
            label,
        )

    def class_name(self, model: LoadedModel, index: int | None) -> str | None:
        """The card's name of a class, when it has one."""
        if index is None or not model.class_names or index >= len(model.class_names):
            return None
        return model.class_names[index]

    def check_size(
        self, req: GridRequest, source: str, model: LoadedModel, n: int, cells: int, columns: int
    ) -> None:
        """422 unless n, the cell count, scale, padding and the output size are within limits."""
        s = self.settings
        if n > s.max_n:
            raise invalid(source, "n", f"n must be at most {s.max_n}", n)
        if req.scale > s.max_scale:
            raise invalid(source, "scale", f"scale must be at most {s.max_scale}", req.scale)
        if req.padding > s.max_padding:
            message = f"padding must be at most {s.max_padding}"
            raise invalid(source, "padding", message, req.padding)
        if cells > s.max_images:
            rows, columns = grid_shape(cells, columns)
            raise invalid(
                source,
                None,
                f"the request asks for {cells} images ({rows} rows x {columns} columns); "
                f"at most {s.max_images} per request",
            )
        h, w, _ = model.image_shape
        h, w = h * req.scale, w * req.scale
        if req.format == "png":
            rows, columns = grid_shape(cells, columns)
            pad = req.padding
            pixels = (rows * (h + pad) + pad) * (columns * (w + pad) + pad)
        else:
            pixels = cells * h * w
        if pixels > s.max_grid_pixels:
            raise invalid(
                source,
                "scale",
                f"the response would have {pixels} pixels; at most {s.max_grid_pixels}",
                req.scale,
            )

    @staticmethod
    def seed_of(req: GridRequest) -> int:
        """The request's seed, or a fresh random one."""
        return req.seed if req.seed is not None else secrets.randbelow(RANDOM_SEED_BOUND)

    # -- plans ------------------------------------------------------------------------

    def plan_generate(self, req: GenerateRequest, source: str) -> Plan:
        """n images, image i from latent row i; conditional models cycle through the classes."""
        model = self.model(req.model)
        n = req.n
        columns = req.columns or math.ceil(math.sqrt(n))
        self.check_size(req, source, model, n, n, columns)
        seed = self.seed_of(req)
        z = make_latents(seed, n, model.latent_dim)
        labels = np.arange(n, dtype=np.int64) % model.num_classes if model.conditional else None
        cells = [
            {"index": i, "label": None if labels is None else int(labels[i])} for i in range(n)
        ]
        return Plan(model, seed, z, labels, columns, cells)

    def plan_conditional(self, req: ConditionalRequest, source: str) -> Plan:
        """One row per label; column j uses latent row j in every row."""
        model = self.model(req.model, conditional=True)
        if not model.conditional:
            conditional = sorted(m.name for m in self.registry.models.values() if m.conditional)
            raise invalid(
                source,
                "model",
                f"model {model.name} is unconditional; /conditional needs a conditional model "
                f"({', '.join(conditional) or 'none is being served'})",
                req.model,
            )
        if req.labels is not None and not req.labels:
            raise invalid(source, "labels", "labels is empty; omit it for every class", [])
        if req.labels is None:
            classes = list(range(model.num_classes))
        else:
            classes = [self.label_index(model, lab, source, "labels") for lab in req.labels]
        n = req.n
        columns = req.columns or n
        self.check_size(req, source, model, n, n * len(classes), columns)
        seed = self.seed_of(req)
        z = make_latents(seed, n, model.latent_dim)
        labels = np.repeat(np.asarray(classes, dtype=np.int64), n)
        cells = [{"index": j, "label": c} for c in classes for j in range(n)]
        return Plan(model, seed, np.tile(z, (len(classes), 1)), labels, columns, cells)

    def plan_perturb(self, req: PerturbRequest, source: str) -> Plan:
        """Rows of (dim, value) perturbations of n base latents, or rows of labels."""
        model = self.model(req.model)
        n = req.n
        if req.mode == "label":
            return self._plan_label_rows(req, source, model)
        if req.labels is not None:
            raise invalid(
                source,
                "labels",
                "labels sets the rows of mode=label; use label for the class of every cell",
                req.labels,
            )
        if req.dims is None:
            dims: list[int] | None = list(REPORT_DIMS) if req.mode == "set" else None
        else:
            dims = list(req.dims) or None
        for d in dims or []:
            if d >= model.latent_dim:
                raise invalid(
                    source,
                    "dims",
                    f"dimension {d} is outside [0, {model.latent_dim}) for model {model.name}",
                    d,
                )
        bound = self.settings.max_abs_value
        for v in req.values:
            if abs(v) > bound:
                raise invalid(source, "values", f"value {v} is beyond the bound of ±{bound}", v)
        row_keys: list[tuple[int | None, float]] = [
            (d, v) for d in (dims if dims is not None else [None]) for v in req.values
        ]
        self.check_size(req, source, model, n, n * len(row_keys), n)
        label = None
        if req.label is not None:
            label = self.label_index(model, req.label, source, "label")
        seed = self.seed_of(req)
        z = perturb_latents(
            make_latents(seed, n, model.latent_dim), req.values, dims=dims, mode=req.mode, seed=seed
        )
        column_labels = None
        if model.conditional:  # one class for every cell, 0 unless given (as offline)
            column_labels = np.full(n, label or 0, dtype=np.int64)
        labels = None if column_labels is None else np.tile(column_labels, len(row_keys))
        cells = [
            {
                "index": j,
                "dim": d,
                "value": v,
                "label": None if column_labels is None else int(column_labels[j]),
            }
            for d, v in row_keys
            for j in range(n)
        ]
        return Plan(model, seed, z, labels, n, cells)

    def _plan_label_rows(self, req: PerturbRequest, source: str, model: LoadedModel) -> Plan:
        """mode=label: the n base latents fixed, one row per class."""
        if not model.conditional:
            message = f"mode=label needs a conditional model; {model.name} is unconditional"
            raise invalid(source, "mode", message, "label")
        if req.dims is not None:
            raise invalid(source, "dims", "dims does not apply to mode=label", req.dims)
        if req.label is not None:
            raise invalid(source, "label", "mode=label takes its rows from labels", req.label)
        if req.labels is not None and not req.labels:
            raise invalid(source, "labels", "labels is empty; omit it for every class", [])
        if req.labels is None:
            classes = list(range(model.num_classes))
        else:
            classes = [self.label_index(model, lab, source, "labels") for lab in req.labels]
        n = req.n
        self.check_size(req, source, model, n, n * len(classes), n)
        seed = self.seed_of(req)
        z = make_latents(seed, n, model.latent_dim)
        labels = np.repeat(np.asarray(classes, dtype=np.int64), n)
        cells = [{"index": j, "label": c} for c in classes for j in range(n)]
        return Plan(model, seed, np.tile(z, (len(classes), 1)), labels, n, cells)

    # -- running and encoding ------------------------------------------------------------

    async def images(self, plan: Plan) -> np.ndarray:
        """The plan's images through the model's batcher; 503 when its queue is full."""
        batcher = self.batchers[plan.model.name]
        try:
            return await batcher.generate(plan.z, plan.labels)
        except QueueFull as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                str(exc),
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        except BatcherStopped as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "1"}
            ) from None

    async def respond(self, plan: Plan, req: GridRequest) -> Response:
        """Generate the plan's images and answer with a PNG grid or JSON cells."""
        images = await self.images(plan)
        headers = {
            "X-Model": plan.model.name,
            "X-Seed": str(plan.seed),
            "X-Grid-Rows": str(plan.rows),
            "X-Grid-Columns": str(min(plan.columns, len(plan.z))),
        }
        start = time.perf_counter()
        if req.format == "png":
            if images.nbytes * req.scale**2 <= INLINE_ENCODE_BYTES:
                png = encode_grid(images, plan.columns, req.padding, req.scale)
            else:
                png = await run_in_threadpool(
                    encode_grid, images, plan.columns, req.padding, req.scale
                )
            self.metrics.encode_time.labels("png").observe(time.perf_counter() - start)
            return Response(png, media_type="image/png", headers=headers)
        if images.nbytes * req.scale**2 <= INLINE_ENCODE_BYTES:
            pngs = encode_cells(images, req.scale)
        else:
            pngs = await run_in_threadpool(encode_cells, images, req.scale)
        self.metrics.encode_time.labels("json").observe(time.perf_counter() - start)
        columns = min(plan.columns, len(plan.z))
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
                    class_name=self.class_name(plan.model, cell.get("label")),
                    png_base64=png,
                    **cell,
                )
                for i, (cell, png) in enumerate(zip(plan.cells, pngs, strict=True))
            ],
        )
        return JSONResponse(body.model_dump(mode="json"), headers=headers)


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
