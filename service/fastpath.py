"""The image routes' plain POST, answered before the app's middleware stack.

An ASGI request passes through about ten layers on its way to a route (FastAPI's
and Starlette's error, telemetry and body-limit middlewares, the service's metrics
and body limit, the router's matching, the route's dependency and body handling),
and its response passes back through the same layers' ``send`` wrappers. For a
1-image request that is as much CPU as its inference.

``ImageFastPath`` answers the common request itself: ``POST /generate``,
``/conditional`` or ``/perturb`` on a loaded app, with the API key (if one is
configured), a ``Content-Length`` within ``GANSERVE_MAX_BODY_BYTES``, and an empty
body or ``application/json`` that the route's request type accepts. It counts the
request in the same metrics series, and answers the errors of drawing (404, 422,
503 and the rest) with the app's own exception handlers. Every other request,
including one whose body it read and refused, goes to the full app (the body
replayed), which answers it exactly as if this path did not exist: 401, 413,
FastAPI's 422, 503 while loading. CORS and OpenTelemetry, when configured, turn
the path off (their middlewares see every request).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.deps import api_key_accepted, bearer_token
from service.schemas import GridRequest

logger = logging.getLogger("service.fastpath")

Handler = Callable[[Request, Exception], Awaitable[Response]]
Draw = Callable[[Any, GridRequest], Awaitable[Response]]


class ImageFastPath:
    """Answers a plain image POST in place of ``app``; anything else goes to ``app``.

    ``routes`` maps each path to its request type, and ``draw`` answers a valid
    request (the routes' own handler). ``app`` is the FastAPI app whose state
    (``images``, ``settings``, ``metrics``), exception handlers and dependency
    overrides this path follows; ``full`` (its middleware stack and routes) answers
    what this path passes on.
    """

    def __init__(
        self, app: Any, full: ASGIApp, routes: dict[str, type[GridRequest]], draw: Draw
    ) -> None:
        self.app = app
        self.full = full
        self.routes = routes
        self.draw = draw

    def handles(self, scope: Scope) -> type[GridRequest] | None:
        """The request type of a request this path may take, else None."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        return self.routes.get(scope["path"])

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, request_type: type[GridRequest]
    ) -> None:
        app = self.app
        state = app.state
        images = state.images
        settings = state.settings
        if images is None or app.dependency_overrides:
            await self.full(scope, receive, send)
            return
        content_type = authorization = None
        length = -1
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif key == b"content-type":
                content_type = value
            elif key == b"authorization":
                authorization = value.decode("latin-1")
            elif key == b"transfer-encoding":
                length = -1
                break
        if (
            length < 0
            or length > settings.max_body_bytes
            or (
                settings.api_key is not None
                and not api_key_accepted(settings, bearer_token(authorization))
            )
        ):
            await self.full(scope, receive, send)
            return
        start = time.perf_counter()
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            if not body:
                req = request_type()
            elif content_type != b"application/json":
                raise ValueError("not JSON")
            else:
                req = request_type.model_validate_json(body)
        except (ValueError, ValidationError):
            await self.full(scope, _replay(body, receive), send)
            return
        scope["app"] = app
        try:
            response = await self.draw(images, req)
        except Exception as exc:
            response = await self._error_response(scope, receive, exc)
        await response(scope, receive, send)
        state.metrics.observe_request(
            "POST", scope["path"], response.status_code, time.perf_counter() - start
        )

    async def _error_response(self, scope: Scope, receive: Receive, exc: Exception) -> Response:
        """The app's answer to an error of drawing, from its exception handlers."""
        handlers: dict[Any, Handler] = self.app.exception_handlers
        for cls in type(exc).__mro__:
            handler = handlers.get(cls)
            if handler is not None:
                return await handler(Request(scope, receive), exc)
        raise exc


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives ``body`` first, then what the client sends (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
