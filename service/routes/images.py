"""Image grids: /generate, /conditional and /perturb, by POST (JSON) or GET (query).

Each endpoint is one handler: it asks ``service.planner`` for a plan and
``ImageService`` for the response. Errors propagate as domain errors
(``service.errors``), which the app answers with 404, 422 or 503.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response

from service.deps import ImageServiceDep, require_api_key
from service.imaging import ImageService
from service.planner import plan_conditional, plan_generate, plan_perturb
from service.schemas import (
    ConditionalRequest,
    ErrorResponse,
    GenerateRequest,
    GridRequest,
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
    503: {"model": ErrorResponse, "description": "The model's queue is full (see Retry-After)."},
}


Handler = Callable[[ImageService, Any], Awaitable[Response]]
KEYWORD = inspect.Parameter.KEYWORD_ONLY


def image_endpoint(
    path: str, request_type: type[GridRequest], *, query_description: str
) -> Callable[[Handler], Handler]:
    """Register one handler for ``path`` by POST (a JSON body) and by GET (query parameters).

    The handler gets the validated request, whichever way it came. POST is named
    after the handler and described by its docstring; GET is ``<name>_by_query``,
    described by ``query_description``. A POST body may be empty: every field has
    a default.
    """

    def register(handler: Handler) -> Handler:
        async def by_body(images: ImageService, body: GridRequest) -> Response:
            return await handler(images, body)

        async def by_query(images: ImageService, query: GridRequest) -> Response:
            return await handler(images, query)

        # FastAPI reads where the request comes from off each endpoint's signature
        # (request_type is a class known at run time only, hence the ignores).
        body = Annotated[request_type, Body()]  # type: ignore[valid-type]
        query = Annotated[request_type, Query()]  # type: ignore[valid-type]
        _signature(
            by_body, inspect.Parameter("body", KEYWORD, annotation=body, default=request_type())
        )
        _signature(by_query, inspect.Parameter("query", KEYWORD, annotation=query))
        for endpoint, method, name, description in (
            (by_body, "POST", handler.__name__, inspect.getdoc(handler)),
            (by_query, "GET", f"{handler.__name__}_by_query", query_description),
        ):
            router.add_api_route(
                path,
                endpoint,
                methods=[method],
                name=name,
                description=description,
                response_class=Response,
                responses=RESPONSES,
            )
        return handler

    return register


def _signature(endpoint: Callable[..., Any], request: inspect.Parameter) -> None:
    """Give ``endpoint`` the parameters FastAPI sees: the image service and ``request``."""
    images = inspect.Parameter("images", KEYWORD, annotation=ImageServiceDep)
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [images, request], return_annotation=Response
    )


@image_endpoint(
    "/generate",
    GenerateRequest,
    query_description="Generate a grid of n images from one seed (query parameters, e.g. for "
    "an img tag).",
)
async def generate_images(images: ImageService, req: GenerateRequest) -> Response:
    """Generate a grid of n images from one seed."""
    return await images.respond(plan_generate(req, images.registry, images.settings), req)


@image_endpoint(
    "/conditional",
    ConditionalRequest,
    query_description="Generate one row per label from a conditional model (query parameters).",
)
async def generate_conditional(images: ImageService, req: ConditionalRequest) -> Response:
    """Generate one row per label from a conditional model, the same latents in every row."""
    return await images.respond(plan_conditional(req, images.registry, images.settings), req)


@image_endpoint(
    "/perturb",
    PerturbRequest,
    query_description="Draw the latent experiment (query parameters).",
)
async def perturb_latents(images: ImageService, req: PerturbRequest) -> Response:
    """Draw the latent experiment: one row per (dimension, value), one column per sample."""
    return await images.respond(plan_perturb(req, images.registry, images.settings), req)
