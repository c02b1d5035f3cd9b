"""How errors become responses: the domain errors, validation errors and the unexpected.

``add_exception_handlers(app)`` installs one handler per kind, so routes only
translate requests and let these propagate:

- ``ModelNotFound`` -> 404 ``{"detail": message}``
- ``InvalidRequest`` -> 422 in FastAPI's validation-error shape, located in the
  query string for GET and in the body otherwise
- ``ModelRefused`` -> 503 with the reason the model was refused
- ``Unavailable`` (a full queue, a stopping batcher) -> 503 with ``Retry-After``
- ``RequestValidationError`` -> 422, also when the offending input is NaN or infinite
- anything else -> 500 with a plain message (the log has the traceback)
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from service.errors import InvalidRequest, ModelNotFound, ModelRefused, Unavailable

logger = logging.getLogger("service")


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats (which JSON cannot carry) by their string form."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _unprocessable(errors: Any) -> JSONResponse:
    detail = _json_safe(jsonable_encoder(errors))
    return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 in FastAPI's shape, also when the offending input is NaN or infinite."""
    assert isinstance(exc, RequestValidationError)
    return _unprocessable(exc.errors())


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 located at the field, as if validation had refused it."""
    assert isinstance(exc, InvalidRequest)
    source = "query" if request.method == "GET" else "body"
    loc = (source, exc.field) if exc.field else (source,)
    error = {"type": "value_error", "loc": loc, "msg": exc.message, "input": exc.value}
    return _unprocessable([error])


async def model_not_found(request: Request, exc: Exception) -> JSONResponse:
    """404 naming the models that are served."""
    assert isinstance(exc, ModelNotFound)
    return JSONResponse({"detail": exc.message}, status.HTTP_404_NOT_FOUND)


async def model_refused(request: Request, exc: Exception) -> JSONResponse:
    """503 naming why the model was refused."""
    assert isinstance(exc, ModelRefused)
    return JSONResponse({"detail": exc.message}, status.HTTP_503_SERVICE_UNAVAILABLE)


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After."""
    assert isinstance(exc, Unavailable)
    headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse({"detail": exc.message}, status.HTTP_503_SERVICE_UNAVAILABLE, headers)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """500 with a plain message: no traceback reaches the client (the log has it)."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status.HTTP_500_INTERNAL_SERVER_ERROR)


def add_exception_handlers(app: FastAPI) -> None:
    """Answer every error as the module docstring says."""
    app.add_exception_handler(ModelNotFound, model_not_found)
    app.add_exception_handler(ModelRefused, model_refused)
    app.add_exception_handler(InvalidRequest, invalid_request)
    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
