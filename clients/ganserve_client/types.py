"""What the SDK's methods return: image results and model descriptions."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = ["GridImage", "ImageSet", "ModelInfo", "ModelList", "SingleImage"]

T = TypeVar("T")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, without decoding it."""
    if len(png) < 24 or not png.startswith(_PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _save(png: bytes, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.write_bytes(png)
    return out


def _to_pil(png: bytes) -> PILImage:
    try:
        from io import BytesIO

        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_pil() needs Pillow: pip install 'ganserve-client[pil]'") from exc
    image = Image.open(BytesIO(png))
    image.load()
    return image


class _PNGMixin:
    png: bytes

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return _png_size(self.png)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the PNG bytes exactly as the service sent them; returns the path."""
        return _save(self.png, path)

    def to_pil(self) -> PILImage:
        """The image as a ``PIL.Image.Image`` (needs the ``pil`` extra)."""
        return _to_pil(self.png)

    def _repr_png_(self) -> bytes:
        """Lets Jupyter show the image inline."""
        return self.png


@dataclass(frozen=True, repr=False)
class GridImage(_PNGMixin):
    """A PNG grid from an image endpoint, with the response's metadata.

    ``seed`` is the seed the service used (a random one when none was sent), so
    passing it back reproduces the same bytes.
    """

    png: bytes
    model: str
    seed: int
    rows: int
    columns: int

    def __repr__(self) -> str:
        return (
            f"GridImage(model={self.model!r}, seed={self.seed}, rows={self.rows}, "
            f"columns={self.columns}, {len(self.png)} bytes)"
        )


@dataclass(frozen=True, repr=False)
class SingleImage(_PNGMixin):
    """One cell of a grid: its PNG, position, latent seed and any other fields sent."""

    png: bytes
    row: int
    column: int
    seed: int | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"SingleImage(row={self.row}, column={self.column}, seed={self.seed}, "
            f"{len(self.png)} bytes)"
        )


@dataclass(frozen=True, repr=False)
class ImageSet:
    """The single images of a ``format="json"`` request, in row-major order."""

    model: str
    seed: int
    rows: int
    columns: int
    images: list[SingleImage]

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[SingleImage]:
        return iter(self.images)

    def __repr__(self) -> str:
        return (
            f"ImageSet(model={self.model!r}, seed={self.seed}, rows={self.rows}, "
            f"columns={self.columns}, {len(self.images)} images)"
        )

    def __getitem__(self, index: int) -> SingleImage:
        return self.images[index]

    def at(self, row: int, column: int) -> SingleImage:
        """The image in grid cell (row, column)."""
        for image in self.images:
            if image.row == row and image.column == column:
                return image
        raise IndexError(f"no image at row {row}, column {column}")


@dataclass(frozen=True)
class ModelInfo:
    """One served model as the service describes it (``data``), with typed shortcuts.

    ``card`` is the model's card (``card.json``: architecture, training, quality, sha256).
    """

    data: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))

    def _get(self, key: str, convert: Callable[[Any], T]) -> T | None:
        value = self.data.get(key)
        return None if value is None else convert(value)

    @property
    def provider(self) -> str | None:
        """The ONNX Runtime execution provider serving it (CUDA or CPU)."""
        return self._get("provider", str)

    @property
    def conditional(self) -> bool:
        """True when the model takes a class label (``/conditional``)."""
        return bool(self.data.get("conditional", False))

    @property
    def latent_dim(self) -> int | None:
        return self._get("latent_dim", int)

    @property
    def num_classes(self) -> int:
        """Classes of the data set (0 when it has none)."""
        return int(self.data.get("num_classes") or 0)

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.data.get("class_names") or []]

    @property
    def image_shape(self) -> list[int]:
        """The shape of one generated image: [height, width, channels]."""
        return [int(v) for v in self.data.get("image_shape") or []]

    @property
    def card(self) -> Mapping[str, Any]:
        card = self.data.get("card")
        return card if isinstance(card, Mapping) else self.data

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


@dataclass(frozen=True)
class ModelList:
    """``GET /models``: every served model, and those used when a request names none."""

    models: list[ModelInfo]
    default_model: str | None
    default_conditional_model: str | None
    raw: Mapping[str, Any]

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self.models)

    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def get(self, name: str) -> ModelInfo:
        """The model called ``name``; KeyError when it is not served."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)
