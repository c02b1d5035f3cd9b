"""What ``Client`` and ``AsyncClient`` share: configuration, retry policy and
response parsing (the endpoints are described in ``_endpoints``). Nothing here
does I/O, so the two clients differ only in how they send and wait.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from ._constants import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ENV_API_KEY,
    ENV_URL,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    RETRY_JITTER,
    RETRY_STATUSES,
    VERSION,
)
from .errors import (
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    GanserveError,
    status_error,
)
from .types import GridImage, ImageSet, ModelInfo, ModelList, SingleImage

TimeoutTypes = float | httpx.Timeout
T = TypeVar("T")


@dataclass(frozen=True)
class Request(Generic[T]):
    """One API call, ready to send: what goes on the wire, this call's options, how to read it."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    json: dict[str, Any] | None = None
    accept: str = "application/json"
    timeout: TimeoutTypes | None = None
    max_retries: int | None = None


# -- retries -----------------------------------------------------------------


def should_retry(error: APIError) -> bool:
    """Connection errors, timeouts and 408/429/502/503/504 are worth another try."""
    if isinstance(error, APIStatusError):
        return error.status_code in RETRY_STATUSES
    return isinstance(error, APIConnectionError)


def retry_after_seconds(response: httpx.Response | None) -> float | None:
    """The response's Retry-After (seconds or an HTTP date) in seconds, if usable."""
    if response is None:
        return None
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_delay(
    retries_done: int, response: httpx.Response | None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``retries_done + 1``.

    The server's Retry-After when it sent one (capped at ``MAX_RETRY_AFTER``),
    else 0.5 s doubling per retry up to 8 s, shortened by up to 25 % jitter.
    """
    after = retry_after_seconds(response)
    if after is not None:
        return min(after, MAX_RETRY_AFTER)
    base = min(INITIAL_RETRY_DELAY * 2.0 ** min(retries_done, 32), MAX_RETRY_DELAY)
    return base * (1.0 - RETRY_JITTER * (rng or random).random())


def transport_error(exc: httpx.TransportError, request: httpx.Request | None) -> APIError:
    """The SDK error for an httpx transport failure."""
    where = str(request.url) if request is not None else "the service"
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"no answer from {where} in time ({type(exc).__name__})", request=request
        )
    detail = str(exc) or type(exc).__name__
    return APIConnectionError(f"cannot reach {where}: {detail}", request=request)


# -- responses ---------------------------------------------------------------


def _header(response: httpx.Response, name: str) -> str:
    value: str | None = response.headers.get(name)
    if not value:
        raise APIResponseError(f"the answer lacks the {name} header", response=response)
    return value


def _int_header(response: httpx.Response, name: str) -> int:
    value = _header(response, name)
    try:
        return int(value)
    except ValueError:
        raise APIResponseError(
            f"the {name} header is not an integer: {value!r}", response=response
        ) from None


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise APIResponseError(
            f"expected JSON from {response.request.url}, got "
            f"{response.headers.get('content-type', 'no content type')}",
            response=response,
        ) from None


def parse_grid(response: httpx.Response) -> GridImage:
    """A PNG response with its X-Model, X-Seed, X-Grid-Rows and X-Grid-Columns headers."""
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("image/png"):
        raise APIResponseError(
            f"expected image/png, got {content_type or 'no content type'}", response=response
        )
    return GridImage(
        png=response.content,
        model=_header(response, "X-Model"),
        seed=_int_header(response, "X-Seed"),
        rows=_int_header(response, "X-Grid-Rows"),
        columns=_int_header(response, "X-Grid-Columns"),
    )


_IMAGE_KEYS = {"row", "column", "seed", "png_base64"}


def parse_image_set(response: httpx.Response) -> ImageSet:
    """A ``format=json`` response: metadata plus base64 PNGs, one per cell."""
    body = _json_body(response)
    try:
        images = [
            SingleImage(
                png=base64.b64decode(item["png_base64"], validate=True),
                row=int(item["row"]),
                column=int(item["column"]),
                seed=None if item.get("seed") is None else int(item["seed"]),
                extra={k: v for k, v in item.items() if k not in _IMAGE_KEYS},
            )
            for item in body["images"]
        ]
        return ImageSet(
            model=str(body["model"]),
            seed=int(body["seed"]),
            rows=int(body["rows"]),
            columns=int(body["columns"]),
            images=images,
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise APIResponseError(
            f"unexpected JSON image response ({type(exc).__name__}: {exc})", response=response
        ) from None


def parse_models(response: httpx.Response) -> ModelList:
    body = _json_body(response)
    if isinstance(body, list):
        body = {"models": body}
    if not isinstance(body, dict) or not isinstance(body.get("models"), list):
        raise APIResponseError("expected {'models': [...]} from /models", response=response)
    models = [ModelInfo(data=m) for m in body["models"] if isinstance(m, dict)]
    default = body.get("default_model")
    default_conditional = body.get("default_conditional_model")
    return ModelList(
        models=models,
        default_model=None if default is None else str(default),
        default_conditional_model=None if default_conditional is None else str(default_conditional),
        raw=body,
    )


def parse_model(response: httpx.Response) -> ModelInfo:
    body = _json_body(response)
    if not isinstance(body, dict):
        raise APIResponseError("expected a model object", response=response)
    return ModelInfo(data=body)


def parse_health(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"status": response.text.strip()}
    return body if isinstance(body, dict) else {"status": body}


# -- configuration -----------------------------------------------------------


HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)
Sleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]
SleepT = TypeVar("SleepT", Sleep, AsyncSleep)


class BaseClient(Generic[HttpT, TransportT, SleepT]):
    """Configuration shared by the sync and async clients (see ``Client`` for the arguments).

    A subclass says how to open its httpx client (``_open``) and how it waits
    between attempts by default (``_default_sleep``).
    """

    base_url: str
    api_key: str | None
    timeout: TimeoutTypes
    max_retries: int
    _http: HttpT
    _sleep: SleepT

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
        http_client: HttpT | None = None,
        transport: TransportT | None = None,
        sleep: SleepT | None = None,
    ) -> None:
        url = base_url or os.environ.get(ENV_URL) or DEFAULT_BASE_URL
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise GanserveError(f"base URL must start with http:// or https://, got {url!r}")
        self.base_url = url
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        self.api_key = key or None
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        retries = DEFAULT_MAX_RETRIES if max_retries is None else max_retries
        if retries < 0:
            raise GanserveError(f"max_retries must be >= 0, got {retries}")
        self.max_retries = retries
        self._rng = random.Random()
        if http_client is not None and transport is not None:
            raise GanserveError("pass either http_client or transport, not both")
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else self._open(transport)
        self._sleep = sleep if sleep is not None else self._default_sleep()

    def _open(self, transport: TransportT | None) -> HttpT:
        raise NotImplementedError

    def _default_sleep(self) -> SleepT:
        raise NotImplementedError

    @property
    def default_headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"ganserve-client/{VERSION}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _build(self, request: Request[Any]) -> httpx.Request:
        """The HTTP request of an API call, with this client's URL, headers and timeout."""
        return self._http.build_request(
            request.method,
            self.base_url + request.path,
            json=request.json,
            headers={**self.default_headers, "Accept": request.accept},
            timeout=self.timeout if request.timeout is None else request.timeout,
        )

    def _retries(self, override: int | None) -> int:
        if override is None:
            return self.max_retries
        if override < 0:
            raise GanserveError(f"max_retries must be >= 0, got {override}")
        return override

    def _outcome(
        self,
        sent: httpx.Request,
        answer: httpx.Response | httpx.TransportError,
        attempt: int,
        retries: int,
    ) -> httpx.Response | float:
        """A successful response; else the seconds to wait before retrying, or the error raised.

        ``attempt`` counts the retries done so far, out of ``retries``.
        """
        if isinstance(answer, httpx.Response):
            if answer.is_success:
                return answer
            error: APIError = status_error(answer)
            cause, response = None, answer
        else:
            error, cause, response = transport_error(answer, sent), answer, None
        if attempt >= retries or not should_retry(error):
            raise error from cause
        return retry_delay(attempt, response, self._rng)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"
