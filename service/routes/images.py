"""Image grids: /generate, /conditional and /perturb, by POST (JSON) or GET (query)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response

from service.deps import ImageServiceDep, require_api_key
from service.schemas import (
    ConditionalRequest,
    ErrorResponse,
    GenerateRequest,
    ImagesResponse,
    PerturbRequest,
)

router = APIRouter(tags=["images"], dependencies=[Depends(require_api_key)])

GRID_HEADERS = {
    "X-Model": {"description": "The model that drew the images.", "schema": {"type": "string"}},
    "X-Seed": {"description": "The seed of the latents.", "schema": {"type": "integer"}},
    "X-Grid-Rows": {"description": "Rows of the grid.", "schema": {"type": "integer"}},
    "X-Grid-Columns": {"description": "Columns of the grid.", "schema": {"type": "integer"}},
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A PNG grid, or with format=json the cells as base64 PNGs.",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        "model": ImagesResponse,
        "headers": GRID_HEADERS,
    },
    401: {"model": ErrorResponse, "description": "An API key is configured and was not sent."},
    404: {"model": ErrorResponse, "description": "Unknown model (the served ones are named)."},
    413: {"model": ErrorResponse, "description": "The request body is too large."},
    422: {"model": ErrorResponse, "description": "A field is invalid or beyond a limit."},
    503: {
        "model": ErrorResponse,
        "description": "The model's queue is full (see Retry-After), or the model named "
        "was refused when loading (the reason).",
    },
}


# POST bodies may be empty: every field has a default.
NO_GENERATE = GenerateRequest()
NO_CONDITIONAL = ConditionalRequest()
NO_PERTURB = PerturbRequest()


@router.post("/generate", response_class=Response, responses=RESPONSES)
async def generate_images(
    images: ImageServiceDep, body: Annotated[GenerateRequest, Body()] = NO_GENERATE
) -> Response:
    """Generate a grid of n images from one seed."""
    return await images.respond(images.plan_generate(body, "body"), body)


@router.get("/generate", response_class=Response, responses=RESPONSES)
async def generate_images_by_query(
    images: ImageServiceDep, query: Annotated[GenerateRequest, Query()]
) -> Response:
    """Generate a grid of n images from one seed (query parameters, e.g. for an img tag)."""
    return await images.respond(images.plan_generate(query, "query"), query)


@router.post("/conditional", response_class=Response, responses=RESPONSES)
async def generate_conditional(
    images: ImageServiceDep, body: Annotated[ConditionalRequest, Body()] = NO_CONDITIONAL
) -> Response:
    """Generate one row per label from a conditional model, the same latents in every row."""
    return await images.respond(images.plan_conditional(body, "body"), body)


@router.get("/conditional", response_class=Response, responses=RESPONSES)
async def generate_conditional_by_query(
    images: ImageServiceDep, query: Annotated[ConditionalRequest, Query()]
) -> Response:
    """Generate one row per label from a conditional model (query parameters)."""
    return await images.respond(images.plan_conditional(query, "query"), query)


@router.post("/perturb", response_class=Response, responses=RESPONSES)
async def perturb_latents(
    images: ImageServiceDep, body: Annotated[PerturbRequest, Body()] = NO_PERTURB
) -> Response:
    """Draw the latent experiment: one row per (dimension, value), one column per sample."""
    return await images.respond(images.plan_perturb(body, "body"), body)


@router.get("/perturb", response_class=Response, responses=RESPONSES)
async def perturb_latents_by_query(
    images: ImageServiceDep, query: Annotated[PerturbRequest, Query()]
) -> Response:
    """Draw the latent experiment (query parameters)."""
    return await images.respond(images.plan_perturb(query, "query"), query)
