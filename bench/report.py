"""docs/benchmarks.md is assembled from sections (``ganserve.sections``): each benchmark
rewrites only its own."""

from __future__ import annotations

from pathlib import Path

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
