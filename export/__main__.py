"""CLI: python -m export CHECKPOINT --name NAME --out DIR [--force] [--fp16] [--format triton]."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from export.card import ExportError
from export.core import FORMATS, export_checkpoint


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a training checkpoint's generator to ONNX with a model card.",
    )
    p.add_argument("checkpoint", help="checkpoint file written by training")
    p.add_argument("--name", required=True, help="model name: the directory under --out")
    p.add_argument("--out", default="models", help="models directory (default: models)")
    p.add_argument("--force", action="store_true", help="replace an existing model directory")
    p.add_argument("--fp16", action="store_true", help="float16 arithmetic (for GPUs)")
    p.add_argument(
        "--format", choices=FORMATS, default="ganserve", help="ganserve layout or Triton repo"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        target = export_checkpoint(
            args.checkpoint, args.name, args.out, force=args.force, fp16=args.fp16, fmt=args.format
        )
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing written", file=sys.stderr)
        return 130
    from export.card import read_card

    card = read_card(target)
    parity = card.parity or {}
    print(
        f"wrote {target} ({card.architecture}, {card.precision}, "
        f"image {'x'.join(map(str, card.image_shape or ()))}); parity at batch "
        f"{'/'.join(map(str, parity['batch_sizes']))}: float max |diff| "
        f"{parity['float_max_abs_diff']:.2e}, uint8 max |diff| {parity['uint8_max_abs_diff']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
