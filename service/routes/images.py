"""Image grids: /generate, /conditional and /perturb, by POST (JSON) or GET (query).

One handler serves them all, by either method: it asks ``service.planner``
for the request's plan and ``ImageService`` for the response. Errors
propagate as domain errors (``service.errors``), which the app answers with
404, 422 or 503.

A plain POST (valid JSON on a loaded app) is usually answered before the
app's middleware stack by ``service.fastpath`` with ``draw_images``; every
other request goes through FastAPI's handler for the route's signature, which
is also what the OpenAPI schema describes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response

from service.deps import ImageServiceDep, require_api_key
from service.imaging import ImageService
from service.planner import plan
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
    503: {
        "model": ErrorResponse,
        "description": "The model's queue is full (see Retry-After), or the model named "
        "was refused when loading (the reason).",
    },
}


KEYWORD = inspect.Parameter.KEYWORD_ONLY


async def draw_images(images: ImageService, req: GridRequest) -> Response:
    """The one image handler: the request's plan, drawn and encoded."""
    return await images.respond(plan(req, images.registry, images.settings), req)


def add_image_endpoint(path: str, name: str, request_type: type[GridRequest]) -> None:
    """Serve ``path`` with ``draw_images``: by POST (a JSON body) and GET (query parameters).

    POST is named ``name`` and GET ``<name>_by_query``;
    both are described by the request type's docstring. A POST body may be
    empty: every field has a default.
    """
    # request_type is a class known at run time only, hence the ignores.
    body = Annotated[request_type, Body()]  # type: ignore[valid-type]
    query = Annotated[request_type, Query()]  # type: ignore[valid-type]

    post = inspect.Parameter("body", KEYWORD, annotation=body, default=request_type())
    get = inspect.Parameter("query", KEYWORD, annotation=query)
    for method, operation, request in (
        ("POST", name, post),
        ("GET", f"{name}_by_query", get),
    ):
        router.add_api_route(
            path,
            _endpoint(request),
            methods=[method],
            name=operation,
            description=inspect.getdoc(request_type),
            response_class=Response,
            responses=RESPONSES,
        )


def _endpoint(request: inspect.Parameter) -> Callable[..., Awaitable[Response]]:
    """``draw_images`` with the signature FastAPI reads: the image service and ``request``."""

    async def endpoint(images: ImageService, **given: GridRequest) -> Response:
        (req,) = given.values()
        return await draw_images(images, req)

    images = inspect.Parameter("images", KEYWORD, annotation=ImageServiceDep)
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [images, request], return_annotation=Response
    )
    return endpoint


#: Each image path's request type (its POST body), in the order the routes are added.
POST_REQUEST_TYPES: dict[str, type[GridRequest]] = {
    "/generate": GenerateRequest,
    "/conditional": ConditionalRequest,
    "/perturb": PerturbRequest,
}
for _path, _name in zip(
    POST_REQUEST_TYPES, ("generate_images", "generate_conditional", "perturb_latents"), strict=True
):
    add_image_endpoint(_path, _name, POST_REQUEST_TYPES[_path])
