"""The errors the SDK raises: one small tree, so callers catch as broadly as they like.

    GanserveError                      anything this package raises (``wait_ready`` giving up)
    └── APIError                       the service gave no usable answer
        ├── APIStatusError             it answered with a 4xx or 5xx status
        │   ├── BadRequestError            400 (and 413: body too large)
        │   ├── AuthenticationError        401 (API key missing or wrong)
        │   ├── NotFoundError              404 (unknown model or path)
        │   ├── UnprocessableEntityError   422 (a field failed validation)
        │   ├── RateLimitError             429
        │   ├── ServiceUnavailableError    503 (queue full, or models still loading)
        │   └── InternalServerError        any other 5xx
        ├── APIConnectionError         no answer at all (refused, reset, unknown host)
        │   └── APITimeoutError            no answer in time
        └── APIResponseError           a success the SDK cannot read

``error_class_for_status`` is the one place that maps a status to a class;
``status_error(response)`` builds that error with the server's message.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "GanserveError",
    "InternalServerError",
    "NotFoundError",
    "RateLimitError",
    "ServiceUnavailableError",
    "UnprocessableEntityError",
    "error_class_for_status",
    "status_error",
]


class GanserveError(Exception):
    """Base class of every error this package raises."""


class APIError(GanserveError):
    """The service could not give a usable answer to ``request``."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APIStatusError(APIError):
    """The service answered with an error status.

    ``status_code`` is the HTTP status, ``message`` the server's own message
    (FastAPI's ``detail``), ``body`` the decoded JSON body (or None) and
    ``response`` the ``httpx.Response``.
    """

    def __init__(self, message: str, *, response: httpx.Response, body: Any = None) -> None:
        super().__init__(message, request=response.request)
        self.response = response
        self.status_code = response.status_code
        self.body = body

    def __str__(self) -> str:
        return f"{self.status_code} {self.response.reason_phrase}: {self.message}"


class BadRequestError(APIStatusError):
    """400 or 413: the request was malformed or too large."""


class AuthenticationError(APIStatusError):
    """401: the service needs an API key (``Authorization: Bearer <key>``)."""


class NotFoundError(APIStatusError):
    """404: unknown model or path."""


class UnprocessableEntityError(APIStatusError):
    """422: a field failed validation; ``message`` names it."""


class RateLimitError(APIStatusError):
    """429: too many requests."""


class ServiceUnavailableError(APIStatusError):
    """503: the queue is full or the models are still loading."""


class InternalServerError(APIStatusError):
    """Any other 5xx."""


class APIConnectionError(APIError):
    """No answer: the connection was refused, dropped or never made."""


class APITimeoutError(APIConnectionError):
    """No answer within the timeout."""


class APIResponseError(APIError):
    """A success status whose body or headers the SDK cannot read."""

    def __init__(self, message: str, *, response: httpx.Response) -> None:
        super().__init__(message, request=response.request)
        self.response = response


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    413: BadRequestError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def error_class_for_status(status_code: int) -> type[APIStatusError]:
    """The error class for an HTTP error status."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return InternalServerError
    return APIStatusError


def _format_detail(detail: Any) -> str:
    """FastAPI's ``detail`` (a string, or a list of ``{loc, msg}``) as one line."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = [str(p) for p in item.get("loc", [])]
                if loc and loc[0] in ("body", "query", "path", "header"):
                    loc = loc[1:]
                parts.append(f"{'.'.join(loc)}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def status_error(response: httpx.Response) -> APIStatusError:
    """The ``APIStatusError`` subclass for ``response``, carrying the server's message."""
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        message = _format_detail(body["detail"])
    else:
        message = response.text.strip()[:500] or response.reason_phrase or "no message"
    message = " ".join(message.split())
    cls = error_class_for_status(response.status_code)
    return cls(message, response=response, body=body)
