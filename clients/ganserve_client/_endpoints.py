"""Every endpoint of the service, described once: method, path, parameters, answer.

``Client`` and ``AsyncClient`` hold no endpoint knowledge of their own: each
method takes its keywords typed by one of the ``*Params`` dicts below, asks
its endpoint for the ``Request`` (which knows how to read the answer) and
sends it, the one thing the two clients do differently. The image methods
themselves are written once, in ``ImageMethods``, for both clients. A new
image parameter is one line in its ``*Params`` dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar, Unpack, overload
from urllib.parse import quote

import httpx

from ._base import (
    Request,
    TimeoutTypes,
    parse_grid,
    parse_health,
    parse_image_set,
    parse_model,
    parse_models,
)
from .errors import GanserveError
from .types import GridImage, ImageSet, ModelInfo, ModelList

ImageFormat = Literal["png", "json"]
Png = Literal["png"]
Json = Literal["json"]
Image = GridImage | ImageSet
Label = int | str
T = TypeVar("T")


class RequestOptions(TypedDict, total=False):
    """What every method takes for that one call, overriding the client's settings."""

    timeout: TimeoutTypes | None
    max_retries: int | None


class GridParams(RequestOptions, total=False):
    """What every image endpoint takes (None or left out: the service's default)."""

    model: str | None
    seed: int | None
    scale: int | None
    padding: int | None


class GenerateParams(GridParams, total=False):
    """``/generate``, beside ``n``."""

    columns: int | None


class ConditionalParams(GenerateParams, total=False):
    """``/conditional``, beside its labels."""

    n: int | None


class PerturbParams(GridParams, total=False):
    """``/perturb``."""

    n: int | None
    dims: Sequence[int] | None
    values: Sequence[float] | None
    mode: str | None
    label: Label | None
    labels: Label | Sequence[Label] | None


OPTIONS = frozenset(RequestOptions.__optional_keys__)


def _options(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: params[key] for key in OPTIONS if key in params}


def _as_list(value: Any) -> list[Any]:
    """Sequences as JSON lists; a single label stands for a list of one."""
    return [value] if isinstance(value, int | str) else list(value)


@dataclass(frozen=True)
class Endpoint(Generic[T]):
    """A call without a body: its method, path (``{name}`` filled in) and how to read the answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]

    def request(self, options: RequestOptions, **path_params: str) -> Request[T]:
        for key, value in path_params.items():
            if not value:
                raise GanserveError(f"{key} name must not be empty")
        path = self.path.format(**{k: quote(v, safe="") for k, v in path_params.items()})
        return Request(self.method, path, self.parse, **_options(options))


@dataclass(frozen=True)
class ImageEndpoint:
    """An image endpoint: POSTs its fields as JSON; the answer is a PNG grid or JSON cells.

    ``fields`` are its fields: the keys of its ``*Params`` dict and the
    method's positional arguments. ``lists`` names those sent as JSON lists.
    """

    path: str
    fields: frozenset[str]
    lists: Set[str] = frozenset()

    def request(self, params: Mapping[str, Any], format: ImageFormat) -> Request[Image]:
        """The call for ``params``; unset fields are left out so the service applies its own."""
        if format not in ("png", "json"):
            raise GanserveError(f"format must be 'png' or 'json', got {format!r}")
        unknown = set(params) - self.fields - OPTIONS
        if unknown:
            raise TypeError(f"{self.path} takes no {', '.join(sorted(unknown))}")
        body = {
            key: _as_list(value) if key in self.lists else value
            for key, value in params.items()
            if value is not None and key not in OPTIONS
        }
        if format == "json":
            body["format"] = "json"
            return Request("POST", self.path, parse_image_set, body, **_options(params))
        return Request("POST", self.path, parse_grid, body, "image/png", **_options(params))


def _fields(keywords: frozenset[str], *positional: str) -> frozenset[str]:
    return keywords.union(positional) - OPTIONS


GENERATE = ImageEndpoint("/generate", _fields(GenerateParams.__optional_keys__, "n"))
CONDITIONAL = ImageEndpoint(
    "/conditional", _fields(ConditionalParams.__optional_keys__, "labels"), {"labels"}
)
PERTURB = ImageEndpoint(
    "/perturb", _fields(PerturbParams.__optional_keys__), {"dims", "values", "labels"}
)
MODELS: Endpoint[ModelList] = Endpoint("GET", "/models", parse_models)
MODEL: Endpoint[ModelInfo] = Endpoint("GET", "/models/{model}", parse_model)
HEALTH: Endpoint[dict[str, Any]] = Endpoint("GET", "/healthz", parse_health)
READY: Endpoint[dict[str, Any]] = Endpoint("GET", "/readyz", parse_health)


GridT = TypeVar("GridT", covariant=True)
SetT = TypeVar("SetT", covariant=True)
Labels = Label | Sequence[Label] | None


class ImageMethods(Generic[GridT, SetT]):
    """The image methods of both clients, written once.

    ``Client`` returns ``GridImage`` (``ImageSet`` with ``format="json"``);
    ``AsyncClient`` returns awaitables of them. Each client says how a call is
    made (``_images``).
    """

    def _images(self, request: Request[Image]) -> GridT | SetT:
        raise NotImplementedError

    @overload
    def generate(
        self, n: int | None = ..., *, format: Png = ..., **params: Unpack[GenerateParams]
    ) -> GridT: ...
    @overload
    def generate(
        self, n: int | None = ..., *, format: Json, **params: Unpack[GenerateParams]
    ) -> SetT: ...
    def generate(
        self,
        n: int | None = None,
        *,
        format: ImageFormat = "png",
        **params: Unpack[GenerateParams],
    ) -> GridT | SetT:
        """A grid of ``n`` samples from ``model`` (default: the service's default model).

        The same ``seed`` gives the same bytes; without one the service picks a
        seed and reports it in the result's ``seed``. ``columns`` sets the grid
        width, ``scale`` an integer upscaling, ``padding`` the pixels between
        cells. ``format="json"`` returns an ``ImageSet`` of single images.
        """
        return self._images(GENERATE.request({"n": n, **params}, format))

    @overload
    def conditional(
        self, labels: Labels = ..., *, format: Png = ..., **params: Unpack[ConditionalParams]
    ) -> GridT: ...
    @overload
    def conditional(
        self, labels: Labels = ..., *, format: Json, **params: Unpack[ConditionalParams]
    ) -> SetT: ...
    def conditional(
        self,
        labels: Labels = None,
        *,
        format: ImageFormat = "png",
        **params: Unpack[ConditionalParams],
    ) -> GridT | SetT:
        """One row of ``n`` samples per label from a conditional model.

        ``labels`` are class indices or names such as ``"Sneaker"`` (default:
        every class). Column j uses the same latent in every row.
        """
        return self._images(CONDITIONAL.request({"labels": labels, **params}, format))

    @overload
    def perturb(self, *, format: Png = ..., **params: Unpack[PerturbParams]) -> GridT: ...
    @overload
    def perturb(self, *, format: Json, **params: Unpack[PerturbParams]) -> SetT: ...
    def perturb(
        self, *, format: ImageFormat = "png", **params: Unpack[PerturbParams]
    ) -> GridT | SetT:
        """Latent experiments: one row per (dim, value), one column per base sample.

        ``mode`` is ``set`` (z[d] = v), ``add`` (+= v), ``scale`` (*= v), ``noise``
        (+= v * seeded N(0, 1)) or ``label`` (conditional models: one row per class
        in ``labels``, latents fixed). The service's defaults (n=8, dims 5, 20, 40,
        60, 80, values -3, 0, 3, mode set) give the reports' 15 x 8 grid; with
        ``add``, ``scale`` or ``noise`` and no dims each value applies to the whole
        vector. ``label`` fixes the class of every cell on a conditional model.
        """
        return self._images(PERTURB.request(params, format))
