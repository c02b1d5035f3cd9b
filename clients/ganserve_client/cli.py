"""``ganserve``: the command-line client.

    ganserve generate --n 64 --seed 3 -o grid.png
    ganserve conditional --labels Sneaker,Bag --n 8 -o c.png
    ganserve perturb --dims 5,20,40,60,80 --values -3,0,3 -o p.png
    ganserve models

Errors are one line on stderr: exit status 2 for bad arguments, 1 for a
service or connection error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from ._client import Client
from ._constants import DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, ENV_API_KEY, ENV_URL, VERSION
from ._endpoints import CONDITIONAL, GENERATE, PERTURB, ImageEndpoint
from .errors import GanserveError
from .types import GridImage, ModelInfo

T = TypeVar("T")

EXIT_SERVICE_ERROR = 1
EXIT_USAGE = 2

# Options whose value may start with "-" (a negative number or a list of them).
_NUMERIC_OPTIONS = ("--values", "--dims", "--seed", "--label", "--labels")
_NUMERIC_LIST = re.compile(r"^-[0-9.eE+-]*[0-9](,\s*-?[0-9.eE+-]*[0-9])*$")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, pointing at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _list_of(convert: Callable[[str], T], what: str) -> Callable[[str], list[T]]:
    """An argparse type: comma-separated ``what``, each read by ``convert``."""

    def parse(text: str) -> list[T]:
        try:
            return [convert(part) for part in _split(text)]
        except ValueError:
            message = f"expected comma-separated {what}, got {text!r}"
            raise argparse.ArgumentTypeError(message) from None

    return parse


_int_list = _list_of(int, "integers")
_float_list = _list_of(float, "numbers")


def _label(text: str) -> int | str:
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("empty label")
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _label_list(text: str) -> list[int | str]:
    return [_label(part) for part in _split(text)]


def _split(text: str) -> list[str]:
    parts = [part.strip() for part in text.split(",")]
    if not parts or any(not part for part in parts):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return parts


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    if not re.fullmatch(r"\d+", text.strip()):
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def _connection_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """--url, --api-key, --timeout, --retries: before or after the command."""
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=default,
        help=f"service URL (default: ${ENV_URL} or {DEFAULT_BASE_URL})",
    )
    group.add_argument("--api-key", default=default, help=f"API key (default: ${ENV_API_KEY})")
    group.add_argument(
        "--timeout", type=_positive_float, default=default, help="seconds per request"
    )
    group.add_argument(
        "--retries",
        type=_non_negative_int,
        default=default,
        help=f"retries on connection errors, 408, 429, 502-504 (default {DEFAULT_MAX_RETRIES})",
    )


def _image_options(parser: argparse.ArgumentParser, columns: bool = True) -> None:
    parser.add_argument("--model", help="model name (default: the service's default model)")
    parser.add_argument("--seed", type=int, help="latent seed (default: a random one, printed)")
    if columns:
        parser.add_argument("--columns", type=int, help="grid columns")
    parser.add_argument("--scale", type=int, help="integer upscaling of each cell")
    parser.add_argument("--padding", type=int, help="pixels between cells")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write ('-' for stdout)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ganserve", description="Generate images with a ganserve service.")
    parser.add_argument("--version", action="version", version=f"ganserve-client {VERSION}")
    _connection_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    generate = commands.add_parser("generate", help="a grid of samples")
    generate.add_argument("--n", type=int, help="number of images")
    _image_options(generate)

    conditional = commands.add_parser("conditional", help="one row per class label")
    conditional.add_argument(
        "--labels",
        type=_label_list,
        help="class indices or names, comma-separated (default: every class)",
    )
    conditional.add_argument("--n", type=int, help="images per label")
    _image_options(conditional)

    perturb = commands.add_parser("perturb", help="latent perturbation experiments")
    perturb.add_argument("--n", type=int, help="base samples, one per column (default 8)")
    perturb.add_argument("--dims", type=_int_list, help="latent dimensions, e.g. 5,20,40")
    perturb.add_argument("--values", type=_float_list, help="values, e.g. -3,0,3")
    perturb.add_argument("--mode", help="set, add, scale, noise or label (default: set)")
    perturb.add_argument("--label", type=_label, help="class of every cell (conditional models)")
    perturb.add_argument(
        "--labels", type=_label_list, help="mode=label: the rows' classes (default: every class)"
    )
    _image_options(perturb, columns=False)

    models = commands.add_parser("models", help="list the served models")
    models.add_argument("--json", action="store_true", help="print the service's JSON")

    model = commands.add_parser("model", help="print one model's description and card as JSON")
    model.add_argument("name")

    commands.add_parser("health", help="check that the service is live and ready")

    for sub in (generate, conditional, perturb, models, model, commands.choices["health"]):
        _connection_options(sub, suppress=True)
    return parser


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """Turn ``--values -3,0,3`` into ``--values=-3,0,3`` so argparse does not read an option."""
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _NUMERIC_OPTIONS and i + 1 < len(args) and _NUMERIC_LIST.match(args[i + 1]):
            out.append(f"{arg}={args[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def _write_image(image: GridImage, output: str) -> str:
    size = "x".join(str(v) for v in image.size)
    summary = (
        f"model {image.model}, seed {image.seed}, {image.rows} x {image.columns} grid, {size} px"
    )
    if output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(image.png)
        sys.stdout.buffer.flush()
        return f"wrote PNG to stdout: {summary}"
    path = image.save(output)
    return f"wrote {path}: {summary}"


def _image_shape(model: ModelInfo) -> str:
    return "x".join(str(v) for v in model.image_shape) or "?"


def _models_table(client: Client) -> str:
    listing = client.models()
    rows = [("NAME", "KIND", "LATENT", "IMAGE (HxWxC)", "PROVIDER")]
    for m in listing:
        name = m.name + (" *" if m.name == listing.default_model else "")
        name += " +" if m.name == listing.default_conditional_model else ""
        kind = f"conditional ({m.num_classes} classes)" if m.conditional else "unconditional"
        latent = "?" if m.latent_dim is None else str(m.latent_dim)
        rows.append((name, kind, latent, _image_shape(m), m.provider or "?"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    if listing.default_model:
        lines.append(f"* default model: {listing.default_model}")
    if listing.default_conditional_model:
        lines.append(f"+ default conditional model: {listing.default_conditional_model}")
    if not listing.models:
        lines.append("(no models served)")
    return "\n".join(lines)


def _run(args: argparse.Namespace, client: Client, out: Callable[[str], None]) -> int:
    command = args.command
    if command == "models":
        out(json.dumps(dict(client.models().raw), indent=2) if args.json else _models_table(client))
        return 0
    if command == "model":
        out(json.dumps(dict(client.model(args.name).data), indent=2))
        return 0
    if command == "health":
        status = client.health().get("status", "ok")
        ready = client.ready()
        out(f"{client.base_url}: live ({status}), {'ready' if ready else 'not ready'}")
        return 0 if ready else EXIT_SERVICE_ERROR
    image: GridImage
    if command == "generate":
        image = client.generate(**_fields(args, GENERATE))
    elif command == "conditional":
        image = client.conditional(**_fields(args, CONDITIONAL))
    else:
        image = client.perturb(**_fields(args, PERTURB))
    message = _write_image(image, args.output)
    (_stderr if args.output == "-" else out)(message)
    return 0


def _fields(args: argparse.Namespace, endpoint: ImageEndpoint) -> dict[str, Any]:
    """The endpoint's fields among the command's options (the connection's are the client's)."""
    return {k: getattr(args, k) for k in endpoint.fields if hasattr(args, k)}


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (also the console script's entry point)."""
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    try:
        with Client(
            args.url,
            api_key=args.api_key,
            timeout=args.timeout,
            max_retries=args.retries,
        ) as client:
            return _run(args, client, print)
    except GanserveError as exc:
        _stderr(f"ganserve: error: {_one_line(str(exc))}")
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (``ganserve models | head``): stop quietly
    except OSError as exc:
        detail = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        _stderr(f"ganserve: error: {_one_line(detail)}")
    except KeyboardInterrupt:
        _stderr("ganserve: interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - a CLI prints one line, never a traceback
        _stderr(f"ganserve: error: unexpected {type(exc).__name__}: {_one_line(str(exc))}")
    return EXIT_SERVICE_ERROR


if __name__ == "__main__":
    sys.exit(main())
