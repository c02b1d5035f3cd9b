"""``python -m service.openapi --write openapi.yaml`` writes the API contract; ``--check`` compares.

The document comes from ``create_app().openapi()`` with default settings, so it
does not depend on the environment or on the models present.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from service.app import create_app
from service.config import Settings


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document (no models are loaded to build it)."""
    return create_app(Settings.model_construct()).openapi()


def render(document: dict[str, Any]) -> str:
    """The document as YAML, keys in the app's order."""
    import yaml  # type: ignore[import-untyped]  # dev tool: PyYAML is in the dev extra

    class Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML has no type information
        """Multi-line strings as literal blocks, so descriptions read as written."""

    def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, represent_str)
    text: str = yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)
    return text


def main(argv: list[str] | None = None) -> int:
    """Write or check the file; exit 1 when --check finds it out of date."""
    p = argparse.ArgumentParser(prog="python -m service.openapi", description=__doc__)
    p.add_argument("--write", metavar="PATH", help="write the document to PATH")
    p.add_argument("--check", metavar="PATH", nargs="?", const="openapi.yaml", help="compare")
    args = p.parse_args(argv)
    text = render(openapi_document())
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
        print(f"wrote {args.write}")
        return 0
    if args.check:
        path = Path(args.check)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            print(
                f"{path} is out of date: run `python -m service.openapi --write {path}`",
                file=sys.stderr,
            )
            return 1
        print(f"{path} is up to date")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
