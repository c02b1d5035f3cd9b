"""Image grids: /generate, /conditional and /perturb, by POST (JSON) or GET (query).

One handler serves them all, by either method: it asks ``service.planner``
for the request's plan and ``ImageService`` for the response. Errors
propagate as domain errors (``service.errors``), which the app answers with
404, 422 or 503.

A POST whose body is valid JSON (``Content-Type: application/json``) on a
loaded app, with the API key if one is configured, is answered without
FastAPI's dependency and body machinery (``JsonPostRoute``); every other
request goes through FastAPI's handler for the route's signature, which is
also what the OpenAPI schema describes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from service.deps import ImageServiceDep, api_key_accepted, bearer_token, require_api_key
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


class JsonPostRoute(APIRoute):
    """A POST image route that answers the plain, valid request itself.

    FastAPI's handler solves the route's dependencies (the API key with its
    ``HTTPBearer``, the image service) and parses the body (the content type
    through ``email.message``, ``json.loads``, then validation) on every
    request. This route's handler answers directly when the app is loaded and
    has no dependency overrides, the API key (if configured) matches as
    ``require_api_key`` checks it, and the body is empty or
    ``application/json`` that ``request_type.model_validate_json`` accepts.
    Anything else goes to FastAPI's handler, which gives the usual answer
    (401, 503, 422 in FastAPI's shape) as if this one did not exist. Set
    ``request_type`` in a subclass per route (``add_image_endpoint`` does).
    """

    request_type: ClassVar[type[GridRequest]]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        fastapi_handler = super().get_route_handler()
        request_type = self.request_type

        async def handler(request: Request) -> Response:
            app = request.app
            state = app.state
            images: ImageService | None = state.images
            if images is None or app.dependency_overrides:
                return await fastapi_handler(request)
            content_type = authorization = None
            for key, value in request.scope["headers"]:
                if key == b"content-type" and content_type is None:
                    content_type = value
                elif key == b"authorization" and authorization is None:
                    authorization = value.decode("latin-1")
            if state.settings.api_key is not None and not api_key_accepted(
                state.settings, bearer_token(authorization)
            ):
                return await fastapi_handler(request)
            body = await request.body()
            if not body:
                req = request_type()
            elif content_type != b"application/json":
                return await fastapi_handler(request)
            else:
                try:
                    req = request_type.model_validate_json(body)
                except ValidationError:
                    return await fastapi_handler(request)
            return await draw_images(images, req)

        return handler


def add_image_endpoint(path: str, name: str, request_type: type[GridRequest]) -> None:
    """Serve ``path`` with ``draw_images``: by POST (a JSON body) and GET (query parameters).

    POST is named ``name`` (a ``JsonPostRoute``) and GET ``<name>_by_query``;
    both are described by the request type's docstring. A POST body may be
    empty: every field has a default.
    """
    # request_type is a class known at run time only, hence the ignores.
    body = Annotated[request_type, Body()]  # type: ignore[valid-type]
    query = Annotated[request_type, Query()]  # type: ignore[valid-type]

    class PostRoute(JsonPostRoute):
        pass

    PostRoute.request_type = request_type
    post = inspect.Parameter("body", KEYWORD, annotation=body, default=request_type())
    get = inspect.Parameter("query", KEYWORD, annotation=query)
    for method, operation, request, route_class in (
        ("POST", name, post, PostRoute),
        ("GET", f"{name}_by_query", get, APIRoute),
    ):
        router.add_api_route(
            path,
            _endpoint(request),
            methods=[method],
            name=operation,
            description=inspect.getdoc(request_type),
            response_class=Response,
            responses=RESPONSES,
            route_class_override=route_class,
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


add_image_endpoint("/generate", "generate_images", GenerateRequest)
add_image_endpoint("/conditional", "generate_conditional", ConditionalRequest)
add_image_endpoint("/perturb", "perturb_latents", PerturbRequest)
