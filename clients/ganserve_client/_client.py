"""``Client`` and ``AsyncClient``: one method per ganserve endpoint.

Each method's keywords and request come from ``_endpoints`` (one description
per endpoint, shared by both; the image methods are written there once, in
``ImageMethods``); the clients differ only in how they send, retry and wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, Self, TypeVar, Unpack, cast

import httpx

from ._base import AsyncSleep, BaseClient, Request, Sleep, TimeoutTypes
from ._endpoints import HEALTH, MODEL, MODELS, READY, Image, ImageMethods, RequestOptions
from .errors import APIConnectionError, GanserveError, ServiceUnavailableError
from .types import GridImage, ImageSet, ModelInfo, ModelList

__all__ = ["AsyncClient", "Client"]

T = TypeVar("T")


class Client(
    BaseClient[httpx.Client, httpx.BaseTransport, Sleep], ImageMethods[GridImage, ImageSet]
):
    """Synchronous client for a ganserve service.

    ``base_url`` falls back to ``$GANSERVE_URL`` then ``http://127.0.0.1:8000``;
    ``api_key`` to ``$GANSERVE_API_KEY`` (sent as ``Authorization: Bearer``).
    ``timeout`` and ``max_retries`` default to the values in ``_constants``.
    Failed calls are retried with exponential backoff on connection errors,
    timeouts and 408/429/502/503/504, honouring Retry-After; ``sleep`` is the
    function that waits between attempts. ``http_client`` (or ``transport``)
    replaces the underlying ``httpx.Client``. Every method also takes
    ``timeout`` and ``max_retries``, overriding the client's for that call.

    Use as a context manager, or call ``close()``::

        with Client() as client:
            client.generate(n=16, seed=3).save("grid.png")
    """

    def _open(self, transport: httpx.BaseTransport | None) -> httpx.Client:
        return httpx.Client(transport=transport)

    def _default_sleep(self) -> Sleep:
        return time.sleep

    def _call(self, request: Request[T]) -> T:
        """Send the call, retrying as configured, and read the answer."""
        retries = self._retries(request.max_retries)
        attempt = 0
        while True:
            sent = self._build(request)
            try:
                answer: httpx.Response | httpx.TransportError = self._http.send(sent)
            except httpx.TransportError as exc:
                answer = exc
            outcome = self._outcome(sent, answer, attempt, retries)
            if isinstance(outcome, httpx.Response):
                return request.read(outcome)
            self._sleep(outcome)
            attempt += 1

    def _images(self, request: Request[Image]) -> GridImage | ImageSet:
        return self._call(request)

    def close(self) -> None:
        """Close the connection pool (unless it was passed in as ``http_client``)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- models and health -----------------------------------------------------

    def models(self, **options: Unpack[RequestOptions]) -> ModelList:
        """Every served model's card, its execution provider, and the default model."""
        return self._call(MODELS.request(options))

    def model(self, name: str, **options: Unpack[RequestOptions]) -> ModelInfo:
        """One model's card; ``NotFoundError`` when it is not served."""
        return self._call(MODEL.request(options, model=name))

    def health(self, **options: Unpack[RequestOptions]) -> dict[str, Any]:
        """``GET /healthz``: the process is up."""
        return self._call(HEALTH.request(options))

    def ready(self, *, timeout: TimeoutTypes | None = None) -> bool:
        """``GET /readyz``: True once every model is loaded and warmed up (no retries)."""
        try:
            self._call(READY.request({"timeout": timeout, "max_retries": 0}))
        except ServiceUnavailableError:
            return False
        return True

    def wait_ready(self, timeout: float = 30.0, interval: float = 0.25) -> None:
        """Poll ``ready()`` until it holds, tolerating refused connections meanwhile.

        Raises ``GanserveError`` when the service is not ready after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.ready(timeout=min(5.0, max(timeout, 0.1))):
                    return
            except APIConnectionError:
                pass
            if time.monotonic() >= deadline:
                raise GanserveError(f"{self.base_url} was not ready after {timeout:g} s")
            self._sleep(interval)


class AsyncClient(
    BaseClient[httpx.AsyncClient, httpx.AsyncBaseTransport, AsyncSleep],
    ImageMethods[Awaitable[GridImage], Awaitable[ImageSet]],
):
    """The asynchronous twin of ``Client``: the same arguments, methods awaited.

    ::

        async with AsyncClient() as client:
            grid = await client.generate(n=16, seed=3)
    """

    def _open(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport)

    def _default_sleep(self) -> AsyncSleep:
        return asyncio.sleep

    async def _call(self, request: Request[T]) -> T:
        """See ``Client._call``."""
        retries = self._retries(request.max_retries)
        attempt = 0
        while True:
            sent = self._build(request)
            try:
                answer: httpx.Response | httpx.TransportError = await self._http.send(sent)
            except httpx.TransportError as exc:
                answer = exc
            outcome = self._outcome(sent, answer, attempt, retries)
            if isinstance(outcome, httpx.Response):
                return request.read(outcome)
            await self._sleep(outcome)
            attempt += 1

    def _images(self, request: Request[Image]) -> Awaitable[GridImage] | Awaitable[ImageSet]:
        # The awaitable of either; the overloads of ImageMethods say which.
        return cast(Awaitable[GridImage], self._call(request))

    async def close(self) -> None:
        """Close the connection pool (unless it was passed in as ``http_client``)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def models(self, **options: Unpack[RequestOptions]) -> ModelList:
        """See ``Client.models``."""
        return await self._call(MODELS.request(options))

    async def model(self, name: str, **options: Unpack[RequestOptions]) -> ModelInfo:
        """See ``Client.model``."""
        return await self._call(MODEL.request(options, model=name))

    async def health(self, **options: Unpack[RequestOptions]) -> dict[str, Any]:
        """See ``Client.health``."""
        return await self._call(HEALTH.request(options))

    async def ready(self, *, timeout: TimeoutTypes | None = None) -> bool:
        """See ``Client.ready``."""
        try:
            await self._call(READY.request({"timeout": timeout, "max_retries": 0}))
        except ServiceUnavailableError:
            return False
        return True

    async def wait_ready(self, timeout: float = 30.0, interval: float = 0.25) -> None:
        """See ``Client.wait_ready``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if await self.ready(timeout=min(5.0, max(timeout, 0.1))):
                    return
            except APIConnectionError:
                pass
            if time.monotonic() >= deadline:
                raise GanserveError(f"{self.base_url} was not ready after {timeout:g} s")
            await self._sleep(interval)
