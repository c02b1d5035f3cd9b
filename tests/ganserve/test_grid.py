"""encode_png: Pillow's PNG bytes, written by driving Pillow's encoder directly."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ganserve.grid import _direct_png_agrees, encode_png


def pillow_png(image: np.ndarray, level: int) -> bytes:
    """What ``Image.save`` writes for the image."""
    buf = io.BytesIO()
    pixels = image[:, :, 0] if image.shape[2] == 1 else image
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def test_the_installed_pillow_is_driven_directly() -> None:
    assert _direct_png_agrees()


@pytest.mark.parametrize("level", [1, 6, 9])
@pytest.mark.parametrize(
    "shape",
    # one pixel, a service cell, an RGB cell, and images whose data takes several IDAT chunks
    [(1, 1, 1), (32, 32, 1), (68, 68, 3), (400, 400, 1), (300, 500, 3)],
)
def test_encode_png_writes_pillows_bytes(shape: tuple[int, int, int], level: int) -> None:
    rng = np.random.default_rng(sum(shape) + level)
    noise = rng.integers(0, 256, size=shape, dtype=np.uint8)
    flat = np.zeros(shape, dtype=np.uint8)
    for image in (noise, flat, noise // 32 * 32):
        assert encode_png(image, compress_level=level) == pillow_png(image, level)
    with Image.open(io.BytesIO(encode_png(noise, compress_level=level))) as decoded:
        assert np.array_equal(np.asarray(decoded).reshape(shape), noise)
