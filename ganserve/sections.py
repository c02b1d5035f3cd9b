"""Generated pages are assembled from sections: each generator rewrites only its own.

A section is the text between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->``;
a section that is not there yet is appended.
"""

from __future__ import annotations

import re
from pathlib import Path


def write_section(path: Path, name: str, text: str, header: str = "") -> Path:
    """Replace (or append) the section ``name`` of the page at ``path`` with ``text``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = path.read_text() if path.exists() else header
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
