"""The service's domain errors: what the registry, the planner and the batchers raise.

None of them knows about HTTP; ``service.exception_handlers`` turns each into
its response, so any route (the image API, the inference protocol) can let them
propagate::

    ServiceError
    ├── ModelNotFound     404  no served model has that name (or none fits the request)
    ├── ModelRefused      503  the model is in the models directory but was refused: why
    ├── InvalidRequest    422  a field is beyond a limit or does not fit the model
    └── Unavailable       503  try again later (Retry-After)
        ├── service.batcher.QueueFull       the model's queue is full
        └── service.batcher.BatcherStopped  the service is shutting down
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A request the service cannot serve; the message is the client's answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotFound(ServiceError, LookupError):
    """No served model has the requested name (or none fits the request)."""

    def __init__(self, message: str, available: list[str]) -> None:
        super().__init__(message)
        self.available = available


class InvalidRequest(ServiceError, ValueError):
    """A request field (``field``; None: the request as a whole) the service cannot honour.

    Answered as a 422 in FastAPI's validation-error shape, located at ``field``
    of the body or the query string, with ``value`` as the offending input.
    """

    def __init__(self, field: str | None, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class Unavailable(ServiceError):
    """The request may succeed later: answered 503 with ``Retry-After: retry_after``."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelRefused(ServiceError):
    """The model is in the models directory but was refused; the message says why.

    Answered 503 (the model may be fixed and reloaded) without Retry-After: asking
    again changes nothing until the files do.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"model {name!r} is not being served: {reason}")
        self.name = name
        self.reason = reason
