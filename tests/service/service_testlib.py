"""Helpers for the service tests: decoding PNG grids and reading Prometheus metrics."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families


def decode_png(data: bytes) -> np.ndarray:
    """uint8 [H, W, C] pixels of PNG bytes."""
    image = np.asarray(Image.open(io.BytesIO(data)))
    return image[:, :, None] if image.ndim == 2 else image


def grid_cells(
    grid: np.ndarray, rows: int, columns: int, cell: tuple[int, int], padding: int = 2
) -> list[np.ndarray]:
    """The row-major cells of a grid of rows x columns cells of size cell (H, W)."""
    h, w = cell
    out = []
    for r in range(rows):
        for c in range(columns):
            y = padding + r * (h + padding)
            x = padding + c * (w + padding)
            out.append(grid[y : y + h, x : x + w])
    return out


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels match (0 when none do)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
