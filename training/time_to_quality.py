"""Time to quality: training CPU time until a recipe reaches a quality target.

    python -m training.time_to_quality --minutes 120            # train both, then report
    python -m training.time_to_quality --runs RUN_A RUN_B       # report finished runs
    python -m training.time_to_quality --table RUN [RUN ...]    # the recipe table of runs

Trains the reports' recipe and the project's recipe side by side (one process
and one thread each, started together, so they share the machine alike), each
with ``--metrics cfd`` every ``--metrics-kimg``, for ``--minutes`` of wall time;
then reads their ``metric-cfd.jsonl`` and reports the training CPU minutes and
thousands of images each needed to reach ``--target-cfd``. The default target
is ``dcgan-fashion``'s classifier FD (3.45 at its FID of 22.47, both on 10,000
images), the quality the reports' recipe reached in 840 kimg. CPU time, not
wall time, is compared: it is what the recipe costs, whatever else the
machine runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RECIPES: dict[str, list[str]] = {
    # The reports' DCGAN recipe, with the EMA copy of G that dcgan-fashion shipped with.
    "reports": [
        "--arch", "dcgan", "--dataset", "fashion-mnist", "--loss", "bce",
        "--lr", "2e-4", "--beta1", "0.5", "--beta2", "0.999", "--ema", "0.999",
    ],
    # The same networks: a 2.5x learning rate and an EMA that starts at once.
    "project": [
        "--arch", "dcgan", "--dataset", "fashion-mnist", "--loss", "bce",
        "--lr", "5e-4", "--beta1", "0.5", "--beta2", "0.999", "--ema", "0.999", "--ema-warmup",
    ],
}  # fmt: skip
DEFAULT_TARGET_CFD = 3.45


def read_curve(run: Path) -> list[dict[str, Any]]:
    path = run / "metric-cfd.jsonl"
    if not path.is_file():
        raise SystemExit(f"error: {run} has no metric-cfd.jsonl (train with --metrics cfd)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def first_reaching(curve: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
    return next((p for p in curve if p["classifier_fd"] <= target), None)


def command_of(run: Path) -> str:
    options = json.loads((run / "training_options.json").read_text())
    from training.options import command_line, from_dict

    return command_line(from_dict(options))


def report(runs: dict[str, Path], target: float) -> str:
    rows = [
        "| recipe | command | metric points | best cfd | reached "
        f"cfd <= {target} at | CPU minutes | kimg |",
        "|---|---|--:|--:|---|--:|--:|",
    ]
    reached: dict[str, float] = {}
    for name, run in runs.items():
        curve = read_curve(run)
        hit = first_reaching(curve, target)
        best = min((p["classifier_fd"] for p in curve), default=float("nan"))
        where = f"epoch {hit['epoch']}, step {hit['step']}" if hit else "not reached"
        cpu = f"{hit['cpu_minutes']:.1f}" if hit else f"> {curve[-1]['cpu_minutes']:.1f}"
        kimg = f"{hit['kimg']:.0f}" if hit else f"> {curve[-1]['kimg']:.0f}"
        if hit:
            reached[name] = hit["cpu_minutes"]
        cells = [name, f"`{command_of(run)}`", str(len(curve)), f"{best:.2f}", where, cpu, kimg]
        rows.append("| " + " | ".join(cells) + " |")
    if len(reached) == 2:
        a, b = reached.values()
        rows.append(f"\nCPU time to the target: {a / b:.2f}x less with the second recipe.")
    return "\n".join(rows)


def recipe_table(runs: list[Path]) -> str:
    """One row per run: its command, and its metric curve (kimg: classifier FD, CPU minutes)."""
    rows = [
        "| run | command | curve (kimg: cfd) | CPU minutes | best cfd |",
        "|---|---|---|--:|--:|",
    ]
    for run in runs:
        curve = read_curve(run)
        points = ", ".join(f"{p['kimg']:.0f}: {p['classifier_fd']:.2f}" for p in curve)
        best = min((p["classifier_fd"] for p in curve), default=float("nan"))
        cpu = curve[-1]["cpu_minutes"] if curve else 0.0
        rows.append(f"| {run.name} | `{command_of(run)}` | {points} | {cpu:.1f} | {best:.2f} |")
    return "\n".join(rows)


def train_side_by_side(minutes: float, out: Path, metrics_kimg: float) -> dict[str, Path]:
    procs = {}
    for name, args in RECIPES.items():
        cmd = [
            sys.executable, "-m", "training.train", *args, "--epochs", "1000", "--threads", "1",
            "--metrics", "cfd", "--metrics-kimg", str(metrics_kimg), "--metrics-images", "5000",
            "--max-minutes", str(minutes), "--checkpoint-every", "5", "--no-progress",
            "--out", str(out / name),
        ]  # fmt: skip
        procs[name] = subprocess.Popen(cmd)
        time.sleep(1)
    for name, p in procs.items():
        if p.wait() != 0:
            raise SystemExit(f"error: the {name} recipe's run failed (exit {p.returncode})")
    return {name: max((out / name).glob("[0-9]*-*")) for name in RECIPES}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.time_to_quality", description=__doc__)
    p.add_argument("--minutes", type=float, default=120, help="wall minutes per recipe")
    p.add_argument("--runs", nargs=2, type=Path, metavar=("REPORTS_RUN", "PROJECT_RUN"))
    p.add_argument("--table", nargs="+", type=Path, metavar="RUN", help="only tabulate RUN curves")
    p.add_argument("--out", type=Path, default=Path("runs/time-to-quality"))
    p.add_argument("--target-cfd", type=float, default=DEFAULT_TARGET_CFD)
    p.add_argument("--metrics-kimg", type=float, default=30)
    args = p.parse_args(argv)
    if args.table:
        print(recipe_table(args.table))
        return 0
    if args.runs:
        runs = dict(zip(RECIPES, args.runs, strict=True))
    else:
        runs = train_side_by_side(args.minutes, args.out, args.metrics_kimg)
    print(report(runs, args.target_cfd))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
