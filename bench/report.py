"""docs/benchmarks.md is assembled from sections (``ganserve.sections``): each benchmark
rewrites only its own."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ganserve import sections

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Every figure below comes from `make bench` (or the command written beside it),\n"
    "measured side by side in one run on the machine named in its section.\n"
)


def write_section(name: str, text: str, path: Path = BENCHMARKS_MD) -> Path:
    """Replace (or append) the section ``name`` of the benchmarks page with ``text``."""
    return sections.write_section(path, name, text, HEADER)


def figure(value: Any, digits: int = 0) -> str:
    """A number as a table cell: thousands separators and ``digits`` decimals; "–" for a
    value that is missing, not a number, or NaN."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(v) else f"{v:,.{digits}f}"
