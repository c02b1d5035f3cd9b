"""The FastAPI app: ``create_app(settings)``; the lifespan loads and warms up the models.

Run it with ``python -m service`` or ``uvicorn --factory service.app:create_app``.
"""

from __future__ import annotations

import functools
import gc
import inspect
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ganserve import __version__
from service.config import Settings
from service.exception_handlers import add_exception_handlers
from service.fastpath import ImageFastPath
from service.imaging import ImageService
from service.lifecycle import ModelLifecycle, new_batcher
from service.metrics import Metrics, MetricsMiddleware
from service.page import add_page
from service.registry import load_registry
from service.routes import admin, health, images, models, v2

logger = logging.getLogger("service")

DESCRIPTION = """\
Serves GAN generators exported to ONNX as PNG grids.

Every image endpoint takes a JSON body by POST and the same fields as query
parameters by GET (lists repeated or comma-separated: `dims=5,20`), so
`<img src="/generate?n=16&seed=3">` works in a page. A seed names the latents
(`numpy.random.default_rng(seed).standard_normal((n, latent_dim))`): the same
request gives the same bytes, and image i of a grid does not depend on n.
"""


# FastAPI's native OpenTelemetry off (GANSERVE_OPENTELEMETRY unset): otherwise every request
# asks OpenTelemetry's global providers, through os.environ, whether one is configured.
NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}
GC_YOUNG_THRESHOLD = 10_000  # objects allocated (net) between young-generation collections


class GanserveApp(FastAPI):
    """FastAPI, with the image routes' plain POST answered first (``service.fastpath``)."""

    fast_path: ImageFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is not None:
            request_type = fast.handles(scope)
            if request_type is not None:
                await fast(scope, receive, send, request_type)
                return
        await super().__call__(scope, receive, send)


class BodyLimitMiddleware:
    """Answers 413 to request bodies over ``max_bytes`` (declared or streamed).

    Paths starting with one of ``own_limit_prefixes`` pass: their routes read the
    body under a limit of their own.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, own_limit_prefixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.own_limit_prefixes = own_limit_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.own_limit_prefixes):
            await self.app(scope, receive, send)
            return
        detail = f"the request body is larger than {self.max_bytes} bytes"
        declared, chunked = None, False
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit():
                declared = int(value)
            elif key == b"transfer-encoding":
                chunked = True
        if declared is not None and declared > self.max_bytes:
            response = JSONResponse({"detail": detail}, status.HTTP_413_CONTENT_TOO_LARGE)
            await response(scope, receive, send)
            return
        if declared is not None and not chunked:
            # the server reads no more than the declared length: nothing left to count
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail)
            return message

        await self.app(scope, limited_receive, send)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load and warm up every model, start a batcher per model; stop them at shutdown."""
    state = app.state
    settings: Settings = state.settings
    metrics: Metrics = state.metrics
    registry = await anyio.to_thread.run_sync(load_registry, settings)
    runs = len(registry.models) * settings.max_concurrent_runs
    executor = ThreadPoolExecutor(
        max_workers=min(max(runs, settings.max_concurrent_runs), 8),
        thread_name_prefix="ganserve-infer",
    )
    batchers = {
        name: new_batcher(model, settings, executor, metrics)
        for name, model in registry.models.items()
    }
    for name, batcher in batchers.items():
        batcher.start()
        metrics.model_info.labels(name, batcher.model.provider).set(1)
    state.registry = registry
    state.batchers = batchers
    state.images = ImageService(settings, registry, batchers, metrics)
    state.lifecycle = ModelLifecycle(state, executor)  # reloads mutate registry and batchers
    state.ready = bool(registry.models)
    if not state.ready:
        state.not_ready_reason = f"no model could be loaded from {settings.models_dir}"
    metrics.ready.set(1 if state.ready else 0)
    logger.info(
        "serving %d model(s) (default %s, conditional default %s)",
        len(registry.models),
        registry.default_model,
        registry.default_conditional_model,
    )
    # What is loaded by now lives as long as the app: keep it out of the cyclic garbage
    # collector's scans, so that the collections requests trigger only walk what requests
    # allocate (a full collection over every module, model and schema costs milliseconds).
    # And let the young generation grow past what requests in flight hold at once: with
    # Python's default of 700 objects, 32 requests in flight start a collection every few
    # requests although nearly all they allocate is freed by reference counting.
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
    state.lifecycle.start()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        state.ready = False
        state.not_ready_reason = "the service is shutting down"
        metrics.ready.set(0)
        await state.lifecycle.close()
        for batcher in batchers.values():
            await batcher.stop()
        executor.shutdown(wait=False, cancel_futures=True)


def _configure_logging(level: str) -> None:
    """Give the service's loggers a handler and level (once per process)."""
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        logger.addHandler(handler)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing loads until its lifespan starts."""
    settings = settings or Settings()
    _configure_logging(settings.log_level)
    extra: dict[str, Any] = {}
    if not settings.opentelemetry and "telemetry" in inspect.signature(FastAPI).parameters:
        extra["telemetry"] = NO_TELEMETRY
    app = GanserveApp(
        title="ganserve",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
        **extra,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.registry = None
    app.state.batchers = {}
    app.state.images = None
    app.state.lifecycle = None
    app.state.ready = False
    app.state.not_ready_reason = "the models are still loading"
    app.include_router(images.router)
    app.include_router(models.router)
    app.include_router(health.router)
    app.include_router(v2.router)
    app.include_router(admin.router)
    add_page(app)
    add_exception_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, own_limit_prefixes=(v2.PREFIX,)
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["X-Model", "X-Seed", "X-Grid-Rows", "X-Grid-Columns", "Retry-After"],
        )
    static_paths = frozenset(
        path for route in app.routes if "{" not in (path := getattr(route, "path", "{"))
    )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics, static_paths=static_paths)
    if settings.fast_path and not settings.cors_origins and not settings.opentelemetry:
        full = functools.partial(FastAPI.__call__, app)
        app.fast_path = ImageFastPath(app, full, images.POST_REQUEST_TYPES, images.draw_images)
    return app
