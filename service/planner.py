"""The planner: from a validated image request and the served models to a ``Plan``.

A plan is what one request will generate and how its cells are laid out: the
model, the seed, the latents (``ganserve.latent``'s contract), the labels and
the grid's columns, with what each cell shows. Planning does no I/O and knows
nothing of HTTP: a request that does not fit the model or the limits raises a
domain error (``service.errors``: ``ModelNotFound``, ``InvalidRequest``), which
the app answers with 404 or 422. Running a plan (batching, encoding) is
``service.imaging``'s job::

    plan = plan_generate(GenerateRequest(n=16, seed=3), registry, settings)
    plan.z.shape == (16, plan.model.latent_dim)

Each ``plan_*`` function serves the endpoint of the same name; ``plan`` picks
the one for a request by its type. The limits are
the ``Settings`` fields ``max_n``, ``max_images``, ``max_scale``,
``max_padding``, ``max_grid_pixels`` and ``max_abs_value``.
"""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganserve.grid import grid_shape
from ganserve.latent import REPORT_DIMS, make_latents, perturb_latents
from service.config import Settings
from service.errors import InvalidRequest
from service.registry import LoadedModel, Registry
from service.schemas import (
    ConditionalRequest,
    GenerateRequest,
    GridRequest,
    Label,
    PerturbRequest,
)

__all__ = [
    "RANDOM_SEED_BOUND",
    "Plan",
    "check_size",
    "class_index",
    "plan",
    "plan_conditional",
    "plan_generate",
    "plan_perturb",
    "seed_of",
]

#: Seeds drawn for requests that send none are below this bound.
RANDOM_SEED_BOUND = 2**31


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


def seed_of(req: GridRequest) -> int:
    """The request's seed, or a fresh random one."""
    return req.seed if req.seed is not None else secrets.randbelow(RANDOM_SEED_BOUND)


def class_index(model: LoadedModel, label: Label, field_name: str) -> int:
    """The class index a label (index, digit string or class name) names."""
    if not model.conditional:
        message = f"model {model.name} is unconditional and takes no labels"
        raise InvalidRequest(field_name, message, label)
    if isinstance(label, str) and label.strip().lstrip("-").isdigit():
        label = int(label)
    if isinstance(label, int):
        if not 0 <= label < model.num_classes:
            message = f"label {label} is outside [0, {model.num_classes}) for model {model.name}"
            raise InvalidRequest(field_name, message, label)
        return label
    names = [n.casefold() for n in model.class_names or []]
    wanted = label.strip().casefold()
    if wanted in names:
        return names.index(wanted)
    known = (
        ", ".join(f"{i} {n!r}" for i, n in enumerate(model.class_names or []))
        or f"indices 0..{model.num_classes - 1}"
    )
    message = f"unknown label {label!r} for model {model.name}; classes: {known}"
    raise InvalidRequest(field_name, message, label)


def check_size(
    req: GridRequest, settings: Settings, model: LoadedModel, n: int, cells: int, columns: int
) -> None:
    """Refuse n, the cell count, scale, padding or the output size beyond the limits."""
    s = settings
    if n > s.max_n:
        raise InvalidRequest("n", f"n must be at most {s.max_n}", n)
    if req.scale > s.max_scale:
        raise InvalidRequest("scale", f"scale must be at most {s.max_scale}", req.scale)
    if req.padding > s.max_padding:
        raise InvalidRequest("padding", f"padding must be at most {s.max_padding}", req.padding)
    rows, columns = grid_shape(cells, columns)
    if cells > s.max_images:
        raise InvalidRequest(
            None,
            f"the request asks for {cells} images ({rows} rows x {columns} columns); "
            f"at most {s.max_images} per request",
        )
    h, w, _ = model.image_shape
    h, w = h * req.scale, w * req.scale
    if req.format == "png":
        pad = req.padding
        pixels = (rows * (h + pad) + pad) * (columns * (w + pad) + pad)
    else:
        pixels = cells * h * w
    if pixels > s.max_grid_pixels:
        message = f"the response would have {pixels} pixels; at most {s.max_grid_pixels}"
        raise InvalidRequest("scale", message, req.scale)


@functools.singledispatch
def plan(req: GridRequest, registry: Registry, settings: Settings) -> Plan:
    """The plan of an image request: the ``plan_*`` function registered for its type."""
    raise TypeError(f"no planner for {type(req).__name__}")


def plan_generate(req: GenerateRequest, registry: Registry, settings: Settings) -> Plan:
    """n images, image i from latent row i; conditional models cycle through the classes."""
    model = registry.get(req.model)
    n = req.n
    columns = req.columns or math.ceil(math.sqrt(n))
    check_size(req, settings, model, n, n, columns)
    seed = seed_of(req)
    z = make_latents(seed, n, model.latent_dim)
    labels = np.arange(n, dtype=np.int64) % model.num_classes if model.conditional else None
    cells = [{"index": i, "label": None if labels is None else int(labels[i])} for i in range(n)]
    return Plan(model, seed, z, labels, columns, cells)


def plan_conditional(req: ConditionalRequest, registry: Registry, settings: Settings) -> Plan:
    """One row per label; column j uses latent row j in every row."""
    model = registry.get(req.model, conditional=True)
    if not model.conditional:
        conditional = sorted(m.name for m in registry.models.values() if m.conditional)
        raise InvalidRequest(
            "model",
            f"model {model.name} is unconditional; /conditional needs a conditional model "
            f"({', '.join(conditional) or 'none is being served'})",
            req.model,
        )
    return _label_rows(req, settings, model, req.labels, n=req.n, columns=req.columns or req.n)


def plan_perturb(req: PerturbRequest, registry: Registry, settings: Settings) -> Plan:
    """Rows of (dim, value) perturbations of n base latents, or with mode=label rows of labels."""
    model = registry.get(req.model)
    if req.mode == "label":
        return _plan_label_mode(req, settings, model)
    if req.labels is not None:
        message = "labels sets the rows of mode=label; use label for the class of every cell"
        raise InvalidRequest("labels", message, req.labels)
    dims = _perturbed_dims(req, model)
    bound = settings.max_abs_value
    for v in req.values:
        if abs(v) > bound:
            raise InvalidRequest("values", f"value {v} is beyond the bound of ±{bound}", v)
    n = req.n
    row_keys = [(d, v) for d in (dims if dims is not None else [None]) for v in req.values]
    check_size(req, settings, model, n, n * len(row_keys), n)
    label = None if req.label is None else class_index(model, req.label, "label")
    seed = seed_of(req)
    base = make_latents(seed, n, model.latent_dim)
    z = perturb_latents(base, req.values, dims=dims, mode=req.mode, seed=seed)
    column_label = None
    if model.conditional:  # one class for every cell, 0 unless given (as offline)
        column_label = label or 0
    labels = None if column_label is None else np.full(len(z), column_label, dtype=np.int64)
    cells = [
        {"index": j, "dim": d, "value": v, "label": column_label}
        for d, v in row_keys
        for j in range(n)
    ]
    return Plan(model, seed, z, labels, n, cells)


def _perturbed_dims(req: PerturbRequest, model: LoadedModel) -> list[int] | None:
    """The dimensions to change (None: the whole vector), each checked against the model."""
    if req.dims is None:
        dims: list[int] | None = list(REPORT_DIMS) if req.mode == "set" else None
    else:
        dims = list(req.dims) or None
    for d in dims or []:
        if d >= model.latent_dim:
            message = f"dimension {d} is outside [0, {model.latent_dim}) for model {model.name}"
            raise InvalidRequest("dims", message, d)
    return dims


def _plan_label_mode(req: PerturbRequest, settings: Settings, model: LoadedModel) -> Plan:
    """mode=label: the n base latents fixed, one row per class."""
    if not model.conditional:
        message = f"mode=label needs a conditional model; {model.name} is unconditional"
        raise InvalidRequest("mode", message, "label")
    if req.dims is not None:
        raise InvalidRequest("dims", "dims does not apply to mode=label", req.dims)
    if req.label is not None:
        raise InvalidRequest("label", "mode=label takes its rows from labels", req.label)
    return _label_rows(req, settings, model, req.labels, n=req.n, columns=req.n)


def _label_rows(
    req: GridRequest,
    settings: Settings,
    model: LoadedModel,
    wanted: Sequence[Label] | None,
    *,
    n: int,
    columns: int,
) -> Plan:
    """One row of n cells per class in ``wanted`` (default: every class), the same latents."""
    if wanted is not None and not wanted:
        raise InvalidRequest("labels", "labels is empty; omit it for every class", [])
    if wanted is None:
        classes = list(range(model.num_classes))
    else:
        classes = [class_index(model, label, "labels") for label in wanted]
    check_size(req, settings, model, n, n * len(classes), columns)
    seed = seed_of(req)
    z = make_latents(seed, n, model.latent_dim)
    labels = np.repeat(np.asarray(classes, dtype=np.int64), n)
    cells = [{"index": j, "label": c} for c in classes for j in range(n)]
    return Plan(model, seed, np.tile(z, (len(classes), 1)), labels, columns, cells)


plan.register(GenerateRequest, plan_generate)
plan.register(ConditionalRequest, plan_conditional)
plan.register(PerturbRequest, plan_perturb)
