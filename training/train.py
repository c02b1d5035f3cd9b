"""Command line for training: parses options, then calls ``training_loop``.

python -m training.train --arch dcgan --dataset fashion-mnist --epochs 30 --out runs/
python -m training.train --arch cgan --summary          # print(G), print(D), parameter counts
python -m training.train --resume runs/00000-dcgan-fashion-mnist/checkpoint-000010.pt --epochs 20
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from training.checkpoint import CheckpointError, load_checkpoint
from training.data import DATASET_CHOICES, DataError
from training.loop import TrainOptions, training_loop
from training.losses import LOSSES
from training.networks import (
    ARCHITECTURES,
    build_discriminator,
    build_generator,
    count_parameters,
    get_arch,
)


def _kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"width\": 96}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = TrainOptions()
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train a GAN into a numbered run directory (checkpoints, samples, stats).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--arch", default=d.arch, help=f"one of: {', '.join(ARCHITECTURES)}")
    p.add_argument("--dataset", default=d.dataset, help=f"one of: {', '.join(DATASET_CHOICES)}")
    p.add_argument(
        "--data-dir",
        default=None,
        help="torchvision-layout data folder (default: $GANSERVE_DATA_DIR or ../shared/data)",
    )
    p.add_argument("--download", action="store_true", help="let torchvision download the data set")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument(
        "--loss",
        default=None,
        help=f"one of: {', '.join(LOSSES)} (default: the architecture's, bce)",
    )
    p.add_argument(
        "--optimizer", default=None, choices=["adam", "rmsprop"], help="default: the loss's"
    )
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--beta1", type=float, default=None)
    p.add_argument("--beta2", type=float, default=None)
    p.add_argument(
        "--n-critic",
        type=int,
        default=None,
        help="D steps per G step (default: 5 for wgan-gp, else 1)",
    )
    p.add_argument("--gp-lambda", type=float, default=d.gp_lambda)
    p.add_argument("--spectral-norm", action="store_true", help="spectral norm on every D layer")
    p.add_argument(
        "--ema", type=float, default=d.ema, help="EMA decay of G's weights, e.g. 0.999 (0: off)"
    )
    p.add_argument("--dcgan-init", action="store_true", help="N(0, 0.02) weight init")
    p.add_argument("--g-kwargs", type=_kwargs, default={}, help="JSON constructor arguments for G")
    p.add_argument("--d-kwargs", type=_kwargs, default={}, help="JSON constructor arguments for D")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--sample-seed", type=int, default=d.sample_seed)
    p.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--out", default=d.out, help="parent folder of the numbered run directories")
    p.add_argument(
        "--sample-every", type=int, default=d.sample_every, help="epochs between sample grids"
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=d.checkpoint_every,
        help="epochs between checkpoints",
    )
    p.add_argument(
        "--log-every", type=int, default=d.log_every, help="steps between stats.jsonl lines"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--resume", default=None, help="continue from this checkpoint (its options, these --epochs)"
    )
    p.add_argument(
        "--summary", action="store_true", help="print G and D with parameter counts, then stop"
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved options, then stop")
    return p


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    if args.resume:
        ckpt = load_checkpoint(args.resume)
        saved = {
            k: v
            for k, v in ckpt.get("options", {}).items()
            if k in TrainOptions.__dataclass_fields__
        }
        o = TrainOptions(**saved)
        # what may change on resume: length, where it goes, where it runs
        return dataclasses.replace(
            o,
            epochs=args.epochs,
            out=args.out,
            device=args.device,
            resume=args.resume,
            progress=not args.no_progress,
            data_dir=args.data_dir or o.data_dir,
        )
    fields = {f.name for f in dataclasses.fields(TrainOptions)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["progress"] = not args.no_progress
    return TrainOptions(**values)


def print_summary(arch: str) -> None:
    spec = get_arch(arch)
    g, d = build_generator(arch), build_discriminator(arch)
    print(f"{arch}: {spec.description} [report {spec.report}]")
    print(f"image shape (C, H, W): {spec.image_shape}; conditional: {spec.conditional}\n")
    print(g)
    print(f"G parameters: {count_parameters(g):,}\n")
    print(d)
    print(f"D parameters: {count_parameters(d):,}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.summary:
            print_summary(args.arch)
            return 0
        options = options_from_args(args)
        resolved = options.resolved()
        if args.dry_run:
            print(json.dumps(dataclasses.asdict(resolved), indent=2))
            return 0
        run_dir = training_loop(options)
    except (DataError, CheckpointError, KeyError, ValueError, FloatingPointError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"done: {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
