"""``Client`` and ``AsyncClient``: one method per ganserve endpoint."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Literal, Self, overload

import httpx

from ._base import (
    HEALTH_SPEC,
    MODELS_SPEC,
    READY_SPEC,
    BaseClient,
    ImageFormat,
    Label,
    RequestSpec,
    TimeoutTypes,
    conditional_spec,
    generate_spec,
    model_spec,
    parse_health,
    parse_images,
    parse_model,
    parse_models,
    perturb_spec,
    retry_delay,
    should_retry,
    transport_error,
)
from .errors import APIConnectionError, APIError, GanserveError, status_error
from .types import GridImage, ImageSet, ModelInfo, ModelList

__all__ = ["AsyncClient", "Client"]


class Client(BaseClient):
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

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._configure(base_url, api_key, timeout, max_retries)
        if http_client is not None and transport is not None:
            raise GanserveError("pass either http_client or transport, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport)
        self._sleep = sleep

    # -- plumbing --------------------------------------------------------------

    def _send(
        self, spec: RequestSpec, *, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> httpx.Response:
        retries = self._retries(max_retries)
        url = self.base_url + spec.path
        attempt = 0
        while True:
            response: httpx.Response | None = None
            request = self._http.build_request(
                spec.method,
                url,
                json=spec.json,
                headers=self._headers(spec),
                timeout=self._timeout(timeout),
            )
            error: APIError
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                error = transport_error(exc, request)
                cause: BaseException | None = exc
            else:
                if response.is_success:
                    return response
                error, cause = status_error(response), None
            if attempt >= retries or not should_retry(error):
                raise error from cause
            self._sleep(retry_delay(attempt, response, self._rng))
            attempt += 1

    def close(self) -> None:
        """Close the connection pool (unless it was passed in as ``http_client``)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- images ----------------------------------------------------------------

    @overload
    def generate(
        self,
        *,
        model: str | None = ...,
        n: int | None = ...,
        seed: int | None = ...,
        columns: int | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["png"] = ...,
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> GridImage: ...

    @overload
    def generate(
        self,
        *,
        model: str | None = ...,
        n: int | None = ...,
        seed: int | None = ...,
        columns: int | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["json"],
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> ImageSet: ...

    def generate(
        self,
        *,
        model: str | None = None,
        n: int | None = None,
        seed: int | None = None,
        columns: int | None = None,
        scale: int | None = None,
        padding: int | None = None,
        format: ImageFormat = "png",
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> GridImage | ImageSet:
        """A grid of ``n`` samples from ``model`` (default: the service's default model).

        The same ``seed`` gives the same bytes; without one the service picks a
        seed and reports it in the result's ``seed``. ``columns`` sets the grid
        width, ``scale`` an integer upscaling, ``padding`` the pixels between
        cells. ``format="json"`` returns an ``ImageSet`` of single images.
        """
        spec = generate_spec(
            model=model,
            n=n,
            seed=seed,
            columns=columns,
            scale=scale,
            padding=padding,
            format=format,
        )
        return parse_images(self._send(spec, timeout=timeout, max_retries=max_retries), spec)

    @overload
    def conditional(
        self,
        labels: Label | Sequence[Label] | None = ...,
        *,
        model: str | None = ...,
        n: int | None = ...,
        seed: int | None = ...,
        columns: int | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["png"] = ...,
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> GridImage: ...

    @overload
    def conditional(
        self,
        labels: Label | Sequence[Label] | None = ...,
        *,
        model: str | None = ...,
        n: int | None = ...,
        seed: int | None = ...,
        columns: int | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["json"],
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> ImageSet: ...

    def conditional(
        self,
        labels: Label | Sequence[Label] | None = None,
        *,
        model: str | None = None,
        n: int | None = None,
        seed: int | None = None,
        columns: int | None = None,
        scale: int | None = None,
        padding: int | None = None,
        format: ImageFormat = "png",
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> GridImage | ImageSet:
        """One row of ``n`` samples per label from a conditional model.

        ``labels`` are class indices or names such as ``"Sneaker"`` (default:
        every class). Column j uses the same latent in every row.
        """
        spec = conditional_spec(
            labels=labels,
            model=model,
            n=n,
            seed=seed,
            columns=columns,
            scale=scale,
            padding=padding,
            format=format,
        )
        return parse_images(self._send(spec, timeout=timeout, max_retries=max_retries), spec)

    @overload
    def perturb(
        self,
        *,
        model: str | None = ...,
        seed: int | None = ...,
        n: int | None = ...,
        dims: Sequence[int] | None = ...,
        values: Sequence[float] | None = ...,
        mode: str | None = ...,
        label: Label | None = ...,
        labels: Label | Sequence[Label] | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["png"] = ...,
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> GridImage: ...

    @overload
    def perturb(
        self,
        *,
        model: str | None = ...,
        seed: int | None = ...,
        n: int | None = ...,
        dims: Sequence[int] | None = ...,
        values: Sequence[float] | None = ...,
        mode: str | None = ...,
        label: Label | None = ...,
        labels: Label | Sequence[Label] | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["json"],
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> ImageSet: ...

    def perturb(
        self,
        *,
        model: str | None = None,
        seed: int | None = None,
        n: int | None = None,
        dims: Sequence[int] | None = None,
        values: Sequence[float] | None = None,
        mode: str | None = None,
        label: Label | None = None,
        labels: Label | Sequence[Label] | None = None,
        scale: int | None = None,
        padding: int | None = None,
        format: ImageFormat = "png",
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> GridImage | ImageSet:
        """Latent experiments: one row per (dim, value), one column per base sample.

        ``mode`` is ``set`` (z[d] = v), ``add`` (+= v), ``scale`` (*= v), ``noise``
        (+= v * seeded N(0, 1)) or ``label`` (conditional models: one row per class
        in ``labels``, latents fixed). The service's defaults (n=8, dims 5, 20, 40,
        60, 80, values -3, 0, 3, mode set) give the reports' 15 x 8 grid; with
        ``add``, ``scale`` or ``noise`` and no dims each value applies to the whole
        vector. ``label`` fixes the class of every cell on a conditional model.
        """
        spec = perturb_spec(
            model=model,
            seed=seed,
            n=n,
            dims=dims,
            values=values,
            mode=mode,
            label=label,
            labels=labels,
            scale=scale,
            padding=padding,
            format=format,
        )
        return parse_images(self._send(spec, timeout=timeout, max_retries=max_retries), spec)

    # -- models and health -----------------------------------------------------

    def models(
        self, *, timeout: TimeoutTypes | None = None, max_retries: int | None = None
    ) -> ModelList:
        """Every served model's card, its execution provider, and the default model."""
        return parse_models(self._send(MODELS_SPEC, timeout=timeout, max_retries=max_retries))

    def model(
        self, name: str, *, timeout: TimeoutTypes | None = None, max_retries: int | None = None
    ) -> ModelInfo:
        """One model's card; ``NotFoundError`` when it is not served."""
        spec = model_spec(name)
        return parse_model(self._send(spec, timeout=timeout, max_retries=max_retries))

    def health(
        self, *, timeout: TimeoutTypes | None = None, max_retries: int | None = None
    ) -> dict[str, object]:
        """``GET /healthz``: the process is up."""
        return parse_health(self._send(HEALTH_SPEC, timeout=timeout, max_retries=max_retries))

    def ready(self, *, timeout: TimeoutTypes | None = None) -> bool:
        """``GET /readyz``: True once every model is loaded and warmed up (no retries)."""
        try:
            self._send(READY_SPEC, timeout=timeout, max_retries=0)
        except APIError as exc:
            if getattr(exc, "status_code", None) == 503:
                return False
            raise
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


class AsyncClient(BaseClient):
    """The asynchronous twin of ``Client``: the same arguments, methods awaited.

    ::

        async with AsyncClient() as client:
            grid = await client.generate(n=16, seed=3)
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._configure(base_url, api_key, timeout, max_retries)
        if http_client is not None and transport is not None:
            raise GanserveError("pass either http_client or transport, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport)
        self._sleep = sleep

    async def _send(
        self, spec: RequestSpec, *, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> httpx.Response:
        retries = self._retries(max_retries)
        url = self.base_url + spec.path
        attempt = 0
        while True:
            response: httpx.Response | None = None
            request = self._http.build_request(
                spec.method,
                url,
                json=spec.json,
                headers=self._headers(spec),
                timeout=self._timeout(timeout),
            )
            error: APIError
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                error = transport_error(exc, request)
                cause: BaseException | None = exc
            else:
                if response.is_success:
                    return response
                error, cause = status_error(response), None
            if attempt >= retries or not should_retry(error):
                raise error from cause
            await self._sleep(retry_delay(attempt, response, self._rng))
            attempt += 1

    async def close(self) -> None:
        """Close the connection pool (unless it was passed in as ``http_client``)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @overload
    async def generate(
        self,
        *,
        model: str | None = ...,
        n: int | None = ...,
        seed: int | None = ...,
        columns: int | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["png"] = ...,
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> GridImage: ...

    @overload
    async def generate(
        self,
        *,
        model: str | None = ...,
        n: int | None = ...,
        seed: int | None = ...,
        columns: int | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["json"],
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> ImageSet: ...

    async def generate(
        self,
        *,
        model: str | None = None,
        n: int | None = None,
        seed: int | None = None,
        columns: int | None = None,
        scale: int | None = None,
        padding: int | None = None,
        format: ImageFormat = "png",
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> GridImage | ImageSet:
        """See ``Client.generate``."""
        spec = generate_spec(
            model=model,
            n=n,
            seed=seed,
            columns=columns,
            scale=scale,
            padding=padding,
            format=format,
        )
        response = await self._send(spec, timeout=timeout, max_retries=max_retries)
        return parse_images(response, spec)

    @overload
    async def conditional(
        self,
        labels: Label | Sequence[Label] | None = ...,
        *,
        model: str | None = ...,
        n: int | None = ...,
        seed: int | None = ...,
        columns: int | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["png"] = ...,
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> GridImage: ...

    @overload
    async def conditional(
        self,
        labels: Label | Sequence[Label] | None = ...,
        *,
        model: str | None = ...,
        n: int | None = ...,
        seed: int | None = ...,
        columns: int | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["json"],
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> ImageSet: ...

    async def conditional(
        self,
        labels: Label | Sequence[Label] | None = None,
        *,
        model: str | None = None,
        n: int | None = None,
        seed: int | None = None,
        columns: int | None = None,
        scale: int | None = None,
        padding: int | None = None,
        format: ImageFormat = "png",
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> GridImage | ImageSet:
        """See ``Client.conditional``."""
        spec = conditional_spec(
            labels=labels,
            model=model,
            n=n,
            seed=seed,
            columns=columns,
            scale=scale,
            padding=padding,
            format=format,
        )
        response = await self._send(spec, timeout=timeout, max_retries=max_retries)
        return parse_images(response, spec)

    @overload
    async def perturb(
        self,
        *,
        model: str | None = ...,
        seed: int | None = ...,
        n: int | None = ...,
        dims: Sequence[int] | None = ...,
        values: Sequence[float] | None = ...,
        mode: str | None = ...,
        label: Label | None = ...,
        labels: Label | Sequence[Label] | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["png"] = ...,
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> GridImage: ...

    @overload
    async def perturb(
        self,
        *,
        model: str | None = ...,
        seed: int | None = ...,
        n: int | None = ...,
        dims: Sequence[int] | None = ...,
        values: Sequence[float] | None = ...,
        mode: str | None = ...,
        label: Label | None = ...,
        labels: Label | Sequence[Label] | None = ...,
        scale: int | None = ...,
        padding: int | None = ...,
        format: Literal["json"],
        timeout: TimeoutTypes | None = ...,
        max_retries: int | None = ...,
    ) -> ImageSet: ...

    async def perturb(
        self,
        *,
        model: str | None = None,
        seed: int | None = None,
        n: int | None = None,
        dims: Sequence[int] | None = None,
        values: Sequence[float] | None = None,
        mode: str | None = None,
        label: Label | None = None,
        labels: Label | Sequence[Label] | None = None,
        scale: int | None = None,
        padding: int | None = None,
        format: ImageFormat = "png",
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> GridImage | ImageSet:
        """See ``Client.perturb``."""
        spec = perturb_spec(
            model=model,
            seed=seed,
            n=n,
            dims=dims,
            values=values,
            mode=mode,
            label=label,
            labels=labels,
            scale=scale,
            padding=padding,
            format=format,
        )
        response = await self._send(spec, timeout=timeout, max_retries=max_retries)
        return parse_images(response, spec)

    async def models(
        self, *, timeout: TimeoutTypes | None = None, max_retries: int | None = None
    ) -> ModelList:
        """See ``Client.models``."""
        response = await self._send(MODELS_SPEC, timeout=timeout, max_retries=max_retries)
        return parse_models(response)

    async def model(
        self, name: str, *, timeout: TimeoutTypes | None = None, max_retries: int | None = None
    ) -> ModelInfo:
        """See ``Client.model``."""
        spec = model_spec(name)
        return parse_model(await self._send(spec, timeout=timeout, max_retries=max_retries))

    async def health(
        self, *, timeout: TimeoutTypes | None = None, max_retries: int | None = None
    ) -> dict[str, object]:
        """See ``Client.health``."""
        response = await self._send(HEALTH_SPEC, timeout=timeout, max_retries=max_retries)
        return parse_health(response)

    async def ready(self, *, timeout: TimeoutTypes | None = None) -> bool:
        """See ``Client.ready``."""
        try:
            await self._send(READY_SPEC, timeout=timeout, max_retries=0)
        except APIError as exc:
            if getattr(exc, "status_code", None) == 503:
                return False
            raise
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
