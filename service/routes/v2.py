"""The Open Inference Protocol (KServe v2; Triton and MLServer speak it too) over HTTP/REST.

Raw tensors instead of PNG grids: latents ``z`` (and ``label``) in, uint8 images out,
as JSON or with the binary tensor data extension (what ``tritonclient[http]`` sends
for large tensors). Inference goes through the same registry, batchers, limits,
API key and metrics as the image routes; errors take the protocol's shape,
``{"error": "..."}``. Liveness, readiness and the server metadata are open, like
/healthz and /readyz; the model routes need the API key when one is set.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ganserve import __version__
from service.batcher import BatcherStopped, QueueFull
from service.deps import RegistryDep, require_api_key
from service.errors import ModelNotFound, ModelRefused
from service.v2_schemas import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ProtocolErrorResponse,
    ServerMetadata,
    inline_schema,
)
from service.v2_tensors import (
    EXTENSIONS,
    ProtocolError,
    decode_request,
    encode_response,
    model_metadata,
    read_inputs,
    wants_binary,
)

PREFIX = "/v2"
HEADER_LENGTH = "Inference-Header-Content-Length"
# Bodies up to this size are decoded on the event loop; larger ones in a worker thread.
INLINE_DECODE_BYTES = 65536


def protocol_error(
    status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An error response in the protocol's shape."""
    return JSONResponse({"error": message}, status_code, headers=headers)


class ProtocolRoute(APIRoute):
    """A route whose every error, its dependencies' included, is ``{"error": message}``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ProtocolError as exc:
                return protocol_error(exc.status, exc.message)
            except ModelNotFound as exc:
                return protocol_error(status.HTTP_404_NOT_FOUND, exc.message)
            except ModelRefused as exc:
                return protocol_error(status.HTTP_503_SERVICE_UNAVAILABLE, exc.message)
            except HTTPException as exc:
                return protocol_error(exc.status_code, str(exc.detail), exc.headers)
            except RequestValidationError as exc:
                errors = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )
                return protocol_error(status.HTTP_400_BAD_REQUEST, errors)

        return handle


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses, in the protocol's shape."""
    why = {
        400: "The request does not fit the model (the message says how).",
        401: "An API key is configured and was not sent.",
        404: "Unknown model.",
        413: "The request body is too large.",
        415: "A Content-Encoding other than gzip or deflate.",
        503: "Not ready, the model was refused (the reason), or its queue is full.",
    }
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ProtocolErrorResponse, "description": why[code]} for code in codes
    }
    # Every client error of these routes has the protocol's shape (none is FastAPI's 422).
    responses["4XX"] = {"model": ProtocolErrorResponse, "description": "Another client error."}
    return responses


router = APIRouter(prefix=PREFIX, tags=["open inference protocol"], route_class=ProtocolRoute)
KEY = [Depends(require_api_key)]  # the model routes need the API key (when one is set)


@router.get("")
async def read_server_metadata() -> ServerMetadata:
    """Server metadata: name, version and the protocol extensions supported."""
    return ServerMetadata(name="ganserve", version=__version__, extensions=EXTENSIONS)


@router.get("/health/live", response_class=Response, responses={200: {"description": "Live."}})
async def read_server_live() -> Response:
    """Answer 200 while the process is alive."""
    return Response()


@router.get(
    "/health/ready",
    response_class=Response,
    responses={200: {"description": "Ready."}, **_errors(503)},
)
async def read_server_ready(request: Request) -> Response:
    """Answer 200 once the models are loaded and warmed up, 503 before (and when none is)."""
    state = request.app.state
    if not state.ready:
        return protocol_error(status.HTTP_503_SERVICE_UNAVAILABLE, state.not_ready_reason)
    return Response()


@router.get("/models/{name}", dependencies=KEY, responses=_errors(401, 404, 503))
async def read_model_metadata(name: str, registry: RegistryDep) -> ModelMetadata:
    """Model metadata: inputs z FP32 [-1, latent_dim] (and label INT64 [-1]), output image."""
    return model_metadata(registry.get(name))


@router.get(
    "/models/{name}/ready",
    dependencies=KEY,
    response_class=Response,
    responses={200: {"description": "Ready."}, **_errors(401, 404, 503)},
)
async def read_model_ready(name: str, registry: RegistryDep) -> Response:
    """Answer 200 when the model is served (404 unknown, 503 refused with the reason)."""
    registry.get(name)
    return Response()


INFER_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "JSON, or with the binary tensor data extension the JSON header "
        f"({HEADER_LENGTH} bytes) followed by each binary input's little-endian bytes.",
        "content": {
            "application/json": {"schema": inline_schema(InferenceRequest)},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "parameters": [
        {
            "name": HEADER_LENGTH,
            "in": "header",
            "required": False,
            "schema": {"type": "integer"},
            "description": "With binary tensor data: the length of the JSON header.",
        }
    ],
}
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The images, as JSON or (binary_data) the JSON header and raw uint8 bytes.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "model": InferenceResponse,
        "headers": {
            HEADER_LENGTH: {
                "description": "With binary output: the length of the JSON header.",
                "schema": {"type": "integer"},
            }
        },
    },
    **_errors(400, 401, 404, 413, 415, 503),
}


@router.post(
    "/models/{name}/infer",
    dependencies=KEY,
    response_class=Response,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_DOC,
)
async def infer_model(name: str, request: Request, registry: RegistryDep) -> Response:
    """Generate images from latents z (and labels): uint8 [batch, height, width, channels]."""
    state = request.app.state
    settings = state.settings
    registry.get(name)  # an unknown or refused model is answered before reading the body
    body = await _read_body(request, settings.max_infer_body_bytes)
    header_length = request.headers.get(HEADER_LENGTH)
    if len(body) <= INLINE_DECODE_BYTES:
        decoded = decode_request(body, header_length)
    else:
        decoded = await run_in_threadpool(decode_request, body, header_length)
    binary = wants_binary(decoded.request)
    # From the lookup to the enqueue nothing awaits: the model and its batcher are one pair
    # even while a reload swaps them.
    model = registry.get(name)
    z, labels = read_inputs(decoded, model, settings)
    try:
        images = await state.batchers[name].generate(z, labels)
    except QueueFull as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        return protocol_error(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers)
    except BatcherStopped as exc:
        return protocol_error(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), {"Retry-After": "1"})
    start = time.perf_counter()
    args = (model.name, decoded.request.id, images, binary)
    if images.nbytes <= INLINE_DECODE_BYTES:
        content, headers, media_type = encode_response(*args)
    else:
        content, headers, media_type = await run_in_threadpool(encode_response, *args)
    encoding = "tensor-binary" if binary else "tensor-json"
    state.metrics.encode_time.labels(encoding).observe(time.perf_counter() - start)
    return Response(content, media_type=media_type, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, uncompressed (gzip or deflate); 413 beyond ``limit`` bytes."""
    too_large = ProtocolError(
        f"the request body is larger than {limit} bytes", status.HTTP_413_CONTENT_TOO_LARGE
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise ProtocolError(
            f"Content-Encoding {encoding!r} is not supported (gzip, deflate)",
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        )
    inflater = zlib.decompressobj(31 if encoding == "gzip" else 15)
    try:
        body = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(f"the body is not valid {encoding} data ({exc})") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise too_large
    return body


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False)
async def unknown_endpoint(path: str, request: Request) -> Response:
    """404 in the protocol's shape for every other /v2 path (this route comes last)."""
    hint = ""
    if "/versions/" in f"/{path}":
        hint = "; models have one version here: leave /versions/<version> out of the path"
    return protocol_error(
        status.HTTP_404_NOT_FOUND, f"no endpoint {request.method} {PREFIX}/{path}{hint}"
    )
