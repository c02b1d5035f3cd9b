"""docs/benchmarks.md is assembled from sections: each benchmark rewrites only its own.

A section is the text between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->``;
a section that is not there yet is appended.
"""

from __future__ import annotations

import re
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Every figure below comes from `make bench` (or the command written beside it),\n"
    "measured side by side in one run on the machine named in its section.\n"
)


def write_section(name: str, text: str, path: Path = BENCHMARKS_MD) -> Path:
    """Replace (or append) the section ``name`` of the benchmarks page with ``text``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = path.read_text() if path.exists() else HEADER
    block = f"<!-- begin:{name} -->\n{text.rstrip()}\n<!-- end:{name} -->"
    pattern = re.compile(
        rf"<!-- begin:{re.escape(name)} -->.*?<!-- end:{re.escape(name)} -->", re.DOTALL
    )
    if pattern.search(doc):
        doc = pattern.sub(lambda _m: block, doc)
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc)
    return path
