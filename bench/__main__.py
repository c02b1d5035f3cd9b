"""``python -m bench`` (``make bench``): the serving benchmark end to end, then docs/benchmarks.md.

    python -m bench [--quick] [--models-dir models] [--model NAME] [--checkpoint CKPT]
    python -m bench --arch dcgan     # an untrained dcgan the bench exports itself
    python -m bench --peers          # then BentoML, Ray Serve and the rest under wrk

Runs ganserve, the naive server and the in-process limit side by side on one
model (see ``bench.run``), writes ``bench/results/serving.csv``, the plots
``docs/images/bench-*.png`` and the ``serving-benchmark`` section of
docs/benchmarks.md; then the export benchmark (``bench.export_bench.run``) when
it is there. ``--no-write`` leaves docs/ alone.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench import markdown, plot
from bench.report import BENCHMARKS_MD, write_section
from bench.run import REPO, Config, quick_config, run
from bench.servers import ServerError

IMAGES = REPO / "docs" / "images"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--models-dir",
        type=Path,
        default=REPO / "models",
        help="models to serve (default models/; empty: the bench exports its own)",
    )
    p.add_argument("--model", help="model to load (default: the default unconditional model)")
    p.add_argument(
        "--checkpoint",
        type=Path,
        help="checkpoint of the same G for the naive server (default: untrained G)",
    )
    p.add_argument(
        "--arch",
        help="benchmark an untrained model of this architecture that the bench exports itself, "
        "whatever --models-dir holds (the default when it holds none: dcgan)",
    )
    p.add_argument("--quick", action="store_true", help="concurrency 1 and 32, shorter windows")
    p.add_argument("--concurrency", type=int, nargs="+", help="closed-loop concurrencies")
    p.add_argument("--max-minutes", type=float, help="no new step starts after this")
    p.add_argument("--no-write", action="store_true", help="leave docs/ alone")
    p.add_argument("--no-export-bench", action="store_true", help="skip bench.export_bench")
    p.add_argument(
        "--peers",
        action="store_true",
        help="then ganserve, naive, BentoML and Ray Serve under wrk (bench.peers_bench)",
    )
    return p.parse_args(argv)


def _export_bench(command: str, quick: bool) -> None:
    """Run bench.export_bench's ``run()`` and write its section, when that module offers one."""
    try:
        module = importlib.import_module("bench.export_bench")
    except ImportError as exc:
        print(f"note: bench.export_bench not importable ({exc}); skipped", flush=True)
        return
    fn = getattr(module, "run", None)
    if fn is None:
        print("note: bench.export_bench has no run(); skipped", flush=True)
        return
    params = inspect.signature(fn).parameters
    kwargs = {"command": command} if "command" in params else {}
    if quick and "repeats" in params:
        kwargs["repeats"] = 3
    print("export benchmark (bench.export_bench.run) ...", flush=True)
    md = fn(**kwargs)
    section = getattr(module, "SECTION", None)
    if isinstance(md, str) and section:
        print(f"wrote {write_section(section, md)} (section {section})", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = quick_config() if args.quick else Config()
    config = replace(
        config, models_dir=args.models_dir, model=args.model, checkpoint=args.checkpoint
    )
    if args.arch:
        from training.networks import ARCHITECTURES

        if args.arch not in ARCHITECTURES:
            known = ", ".join(ARCHITECTURES)
            print(
                f"error: unknown architecture {args.arch!r}; choose one of {known}", file=sys.stderr
            )
            return 2
        if args.model or args.checkpoint:
            print(
                "error: --arch exports its own model; it takes no --model or --checkpoint",
                file=sys.stderr,
            )
            return 2
        config = replace(config, bench_arch=args.arch, own_model=True)
    if args.concurrency:
        config = replace(config, concurrency=tuple(args.concurrency))
    if args.max_minutes:
        config = replace(config, max_minutes=args.max_minutes)
    if args.checkpoint is not None and not args.checkpoint.is_file():
        print(f"error: checkpoint {args.checkpoint} not found", file=sys.stderr)
        return 2
    words = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m bench", *map(shlex.quote, words)])
    begin = time.monotonic()
    try:
        result = run(config)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows, info = result["rows"], result["info"]
    print(f"\nwrote {info['csv']}")
    for g in result["goals"]:
        print(f"  {'met ' if g['met'] else 'MISS'}  {g['goal']}: {g['measured']}")
    if not args.no_write:
        title = f"{info['model']} on {info['machine']['nproc']} CPU cores, run {info['run_id']}"
        images = {}
        for n in sorted({r["images_per_request"] for r in rows}):
            path = plot.plot_closed_loop(
                rows, n, IMAGES / f"bench-{n}-image.png", f"{n}-image requests: {title}"
            )
            images[f"closed-{n}"] = path.relative_to(BENCHMARKS_MD.parent).as_posix()
        if any(r["mode"] == "open" for r in rows):
            path = plot.plot_open_loop(rows, IMAGES / "bench-open-loop.png", f"open loop: {title}")
            images["open"] = path.relative_to(BENCHMARKS_MD.parent).as_posix()
        md = markdown.section(result, command, images, config.options, config.goal_concurrency)
        print(f"wrote {write_section(markdown.SECTION, md)} (section {markdown.SECTION})")
        if not args.no_export_bench:
            _export_bench(command, args.quick)
    if args.peers:
        from bench import peers_bench

        options = peers_bench.Options()
        if args.quick:
            options = replace(options, seconds=5.0, warmup_s=1.0, rounds=1)
        print("\npeers benchmark (bench.peers_bench) ...", flush=True)
        code = peers_bench.run_and_write(options, config, command, not args.no_write)
        if code:
            return code
    print(f"done in {(time.monotonic() - begin) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
