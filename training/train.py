"""Command line for training: parses options, then calls ``training_loop``.

python -m training.train --arch dcgan --dataset fashion-mnist --epochs 30 --out runs/
python -m training.train --arch cgan --summary          # print(G), print(D), parameter counts
python -m training.train --resume runs/00000-dcgan-fashion-mnist/checkpoint-000010.pt --epochs 20
python -m training.train --arch dcgan64 --dataset folder:../shared/data/emoji64 \
    --augment color,translation,cutout --max-minutes 60      # stops cleanly with a checkpoint
python -m training.train --resume latest                    # continues the newest run in runs/
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

from training.checkpoint import CheckpointError, load_checkpoint
from training.data import DATASET_CHOICES, DataError
from training.loop import resolve_resume, training_loop
from training.losses import LOSSES
from training.networks import (
    ARCHITECTURES,
    build_discriminator,
    build_generator,
    count_parameters,
    get_arch,
)
from training.options import TrainOptions, from_dict


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
    _data_arguments(p.add_argument_group("what to train on"), d)
    _loss_arguments(p.add_argument_group("loss and optimizer"), d)
    _model_arguments(p.add_argument_group("networks"), d)
    _run_arguments(p.add_argument_group("run"), d)
    _metrics_arguments(p.add_argument_group("quality metrics while training"), d)
    _output_arguments(p.add_argument_group("logging, resuming, inspecting"), d)
    return p


def _data_arguments(p: argparse._ArgumentGroup, d: TrainOptions) -> None:
    p.add_argument("--arch", default=d.arch, help=f"one of: {', '.join(ARCHITECTURES)}")
    p.add_argument("--dataset", default=d.dataset, help=f"one of: {', '.join(DATASET_CHOICES)}")
    p.add_argument(
        "--data-dir",
        default=None,
        help="torchvision-layout data folder (default: $GANSERVE_DATA_DIR or ../shared/data)",
    )
    p.add_argument("--download", action="store_true", help="let torchvision download the data set")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument(
        "--data-mode",
        default=d.data_mode,
        choices=("auto", "memory", "stream"),
        help="hold the images in memory as uint8, or decode an image folder batch by batch "
        "(auto: stream folders over 2 GiB)",
    )
    p.add_argument(
        "--workers", type=int, default=d.workers, help="DataLoader processes of a streamed folder"
    )
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)


def _loss_arguments(p: argparse._ArgumentGroup, d: TrainOptions) -> None:
    p.add_argument(
        "--loss",
        default=None,
        help=f"one of: {', '.join(LOSSES)} (default: the architecture's, bce)",
    )
    p.add_argument(
        "--optimizer", default=None, choices=["adam", "rmsprop"], help="default: the loss's"
    )
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-g", type=float, default=None, help="G's learning rate (default: --lr)")
    p.add_argument("--lr-d", type=float, default=None, help="D's learning rate (default: --lr)")
    p.add_argument(
        "--lr-schedule",
        default=d.lr_schedule,
        choices=["constant", "linear"],
        help="linear: both learning rates fall to 0 at the last epoch",
    )
    p.add_argument("--beta1", type=float, default=None)
    p.add_argument("--beta2", type=float, default=None)
    p.add_argument(
        "--n-critic",
        type=int,
        default=None,
        help="D steps per G step (default: 5 for wgan-gp, else 1)",
    )
    p.add_argument("--gp-lambda", type=float, default=d.gp_lambda)
    p.add_argument(
        "--r1-gamma", type=float, default=d.r1_gamma, help="R1 penalty weight on real images"
    )
    p.add_argument(
        "--ms-lambda",
        type=float,
        default=d.ms_lambda,
        help="mode-seeking weight: G's loss adds lambda / (|x1 - x2| / |z1 - z2|) over pairs "
        "of its images that share a label (Mao et al. 2019); against collapse within a class",
    )
    p.add_argument(
        "--ac-lambda",
        type=float,
        default=d.ac_lambda,
        help="auxiliary-classifier weight (AC-GAN): D gains a classifier head trained on the "
        "real images' labels, and G's loss adds lambda x its cross-entropy on G's images "
        "and the labels asked for (conditional models; cdcgan)",
    )
    p.add_argument(
        "--info-lambda",
        type=float,
        default=d.info_lambda,
        help="InfoGAN's weight (--arch infogan): G and D's Q head minimise lambda x the "
        "cross-entropy of Q's guess of the discrete code G drew an image from",
    )
    p.add_argument(
        "--augment",
        default=d.augment,
        help="DiffAugment policy for every image D sees: color,translation,cutout",
    )


def _model_arguments(p: argparse._ArgumentGroup, d: TrainOptions) -> None:
    p.add_argument("--spectral-norm", action="store_true", help="spectral norm on every D layer")
    p.add_argument(
        "--ema", type=float, default=d.ema, help="EMA decay of G's weights, e.g. 0.999 (0: off)"
    )
    p.add_argument(
        "--ema-warmup", action="store_true", help="EMA decay min(ema, (1+t)/(10+t)) at G step t"
    )
    p.add_argument("--dcgan-init", action="store_true", help="N(0, 0.02) weight init")
    p.add_argument("--g-kwargs", type=_kwargs, default={}, help="JSON constructor arguments for G")
    p.add_argument("--d-kwargs", type=_kwargs, default={}, help="JSON constructor arguments for D")


def _run_arguments(p: argparse._ArgumentGroup, d: TrainOptions) -> None:
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--sample-seed", type=int, default=d.sample_seed)
    p.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--precision",
        default=d.precision,
        help="fp32, or bf16: G's and D's forward passes under bfloat16 autocast (weights, "
        "optimizer and losses stay float32; faster on CPUs with AVX512-BF16: docs/benchmarks.md)",
    )
    p.add_argument(
        "--dist-backend",
        default=d.dist_backend,
        help="under torchrun: gloo, nccl, or auto (nccl on CUDA, gloo on CPU)",
    )
    p.add_argument("--out", default=d.out, help="parent folder of the numbered run directories")
    _options(
        p,
        d,
        ("sample_every", int, "epochs between sample grids"),
        ("checkpoint_every", int, "epochs between checkpoints"),
        (
            "checkpoint_minutes",
            float,
            "also write checkpoint-latest.pt this often (0: only by epoch)",
        ),
        ("max_minutes", float, "stop cleanly with a checkpoint after this many minutes (resume)"),
    )


def _metrics_arguments(p: argparse._ArgumentGroup, d: TrainOptions) -> None:
    _options(
        p,
        d,
        ("metrics", str, "quality logged while training: cfd (classifier FD, cheap) or fid"),
        ("metrics_kimg", float, "thousands of training images between metric points"),
        ("metrics_images", int, "generated images per metric point"),
    )


def _options(p: argparse._ArgumentGroup, d: TrainOptions, *rows: tuple[str, type, str]) -> None:
    """``--name-with-dashes`` for each (option name, type, help), defaulting to ``d``'s value."""
    for name, kind, text in rows:
        p.add_argument(
            "--" + name.replace("_", "-"), type=kind, default=getattr(d, name), help=text
        )


def _output_arguments(p: argparse._ArgumentGroup, d: TrainOptions) -> None:
    p.add_argument(
        "--log-every", type=int, default=d.log_every, help="steps between stats.jsonl lines"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--resume",
        default=None,
        help="a checkpoint file (a new run from it), a run directory or 'latest' (continue in "
        "it from its newest checkpoint); its options, with --epochs if given",
    )
    p.add_argument(
        "--summary", action="store_true", help="print G and D with parameter counts, then stop"
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved options, then stop")


# options a resume may give: how long, where and how the run goes on, and how often
# it checkpoints and measures itself; the rest is the recipe, which stays the checkpoint's
RESUMABLE = {
    "epochs", "max_minutes", "out", "device", "threads", "resume", "data_dir", "data_mode",
    "workers", "dist_backend", "precision", "metrics_kimg", "checkpoint_minutes",
}  # fmt: skip


def _refuse_recipe_changes(args: argparse.Namespace, o: TrainOptions, given: set[str]) -> None:
    """A recipe option given on resume that differs from the checkpoint's is refused."""
    for f in dataclasses.fields(TrainOptions):
        flag = "--" + f.name.replace("_", "-")
        if f.name in RESUMABLE or flag not in given or not hasattr(args, f.name):
            continue
        if getattr(args, f.name) != getattr(o, f.name):
            raise ValueError(
                f"{flag} {getattr(args, f.name)}: a resumed run keeps its checkpoint's "
                f"{f.name} ({getattr(o, f.name)}); drop {flag}, or train a new run"
            )


def options_from_args(args: argparse.Namespace, argv: list[str] | None = None) -> TrainOptions:
    """The run's options; on resume the checkpoint's, with what may change taken from ``argv``."""
    if args.resume:
        path, _ = resolve_resume(args.resume, args.out)
        o = from_dict(load_checkpoint(path).get("options", {}))
        # only RESUMABLE options may change; a recipe option given with another value is refused
        given = {a.split("=")[0] for a in argv if a.startswith("--")} if argv else {"--epochs"}
        _refuse_recipe_changes(args, o, given)
        return dataclasses.replace(
            o,
            epochs=args.epochs if "--epochs" in given else o.epochs,
            max_minutes=args.max_minutes,
            out=args.out,
            device=args.device,
            threads=args.threads if args.threads is not None else o.threads,
            resume=args.resume,
            progress=not args.no_progress,
            data_dir=args.data_dir or o.data_dir,
            data_mode=args.data_mode if "--data-mode" in given else o.data_mode,
            workers=args.workers if "--workers" in given else o.workers,
            dist_backend=args.dist_backend,
            precision=args.precision if "--precision" in given else o.precision,
            metrics_kimg=args.metrics_kimg if "--metrics-kimg" in given else o.metrics_kimg,
            checkpoint_minutes=(
                args.checkpoint_minutes if "--checkpoint-minutes" in given else o.checkpoint_minutes
            ),
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
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        if args.summary:
            print_summary(args.arch)
            return 0
        options = options_from_args(args, argv)
        resolved = options.resolved()
        if args.dry_run:
            print(json.dumps(dataclasses.asdict(resolved), indent=2))
            return 0
        run_dir = training_loop(options)
    except (DataError, CheckpointError, KeyError, ValueError, FloatingPointError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one line from rank 0
            print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") == "0":
        print(f"done: {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
