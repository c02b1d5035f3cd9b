"""Time to quality: training CPU time until a recipe reaches a quality target.

    python -m training.time_to_quality --minutes 120            # train the recipes, then report
    python -m training.time_to_quality --runs RUN_A RUN_B ...   # report finished runs
    python -m training.time_to_quality --table RUN [RUN ...]    # the recipe table of runs
    python -m training.time_to_quality --fid RUN --epochs 4 8   # FID of RUN's checkpoints

Trains the reports' recipe and the project's fastest (``--recipes`` picks any of
``RECIPES``) side by side (one process and one thread each, started together, so
they share the machine alike), each
with ``--metrics cfd`` every ``--metrics-kimg``, for at most ``--minutes`` of
wall time; a run stops (SIGTERM: a clean checkpoint) as soon as its curve
reaches ``--target-cfd``, so the machine goes to the runs still short of it.
Then it reads their ``metric-cfd.jsonl`` and reports the training CPU minutes
and thousands of images each needed to reach the target, and scores each run's
last checkpoint by FID itself (``--fid-num-gen`` images, 0: not scored): a ratio
holds only where that FID is at or under the baseline run's, since the
classifier FD tracks FID for one kind of model and need not for another.
Recipes whose D learns from the domain classifier's own features (``FID_JUDGED``)
are not stopped by that curve: they train a set number of epochs with a
checkpoint per epoch, and are placed by FID itself, at the first checkpoint from
which on every one scores at or under the baseline's stop checkpoint. The
default target is ``dcgan-fashion``'s classifier FD (3.45 at its FID of 22.47,
both on 10,000 images), the quality the reports' recipe reached in 840 kimg.
CPU time, not wall time, is compared: it is what the recipe costs, whatever
else the machine runs.

``--fid RUN`` measures the target itself rather than the classifier proxy: the
FID of the run's checkpoints (``checkpoint-<epoch>.pt``, EMA weights) at the
evaluation protocol (``python -m training.evaluate CKPT --metrics fid``: 10,000
generated images vs the 10,000 test images), appended to ``RUN/metric-fid.jsonl``
with each checkpoint's kimg and training CPU minutes, and reports the first
checkpoint at or under ``--target-fid`` against the baseline's card
(``--baseline``, default ``models/dcgan-fashion``: the reports' recipe).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# The same networks and loss as the reports: a 2.5x learning rate decayed linearly to 0
# over 24 epochs and an EMA that starts at once (dcgan-fashion-v2's recipe).
PROJECT = [
    "--dataset", "fashion-mnist", "--loss", "bce", "--epochs", "24",
    "--lr", "5e-4", "--lr-schedule", "linear", "--beta1", "0.5", "--beta2", "0.999",
    "--ema", "0.999", "--ema-warmup",
]  # fmt: skip
RECIPES: dict[str, list[str]] = {
    # The reports' DCGAN recipe (constant learning rate), with the EMA copy of G that
    # dcgan-fashion shipped with; it runs until it reaches the target.
    "reports": [
        "--arch", "dcgan", "--dataset", "fashion-mnist", "--loss", "bce", "--epochs", "1000",
        "--lr", "2e-4", "--beta1", "0.5", "--beta2", "0.999", "--ema", "0.999",
    ],
    "project": ["--arch", "dcgan", *PROJECT],
    # The project's recipe with the forward passes in bfloat16 (the CPU's AVX512-BF16).
    "project-bf16": ["--arch", "dcgan", *PROJECT, "--precision", "bf16"],
    # Batches of 32: twice the updates per image seen, at about the same CPU time per
    # image on one thread; in float32, and with the forward passes in bfloat16.
    "project-b32": ["--arch", "dcgan", *PROJECT, "--batch-size", "32"],
    "project-bf16-b32": ["--arch", "dcgan", *PROJECT, "--precision", "bf16", "--batch-size", "32"],
    # The same recipe on dcgan's networks told the class label, with mode seeking
    # (cdcgan-fashion's recipe): it uses the labels the data set comes with.
    "project-cdcgan": ["--arch", "cdcgan", *PROJECT, "--ms-lambda", "1"],
    # Batch 32 with D's heads on the frozen domain classifier's features beside its own
    # conv net (training/networks.py, FeatureHeads), and the same with a conv net of half
    # the width. Their G learns the classifier's features, so the classifier FD is no
    # proxy for them: they are judged by FID (see FID_JUDGED).
    "project-features": [
        "--arch", "dcgan", *PROJECT, "--batch-size", "32",
        "--d-kwargs", '{"features": "fashion-mnist"}',
    ],
    "project-features-d32": [
        "--arch", "dcgan", *PROJECT, "--batch-size", "32",
        "--d-kwargs", '{"features": "fashion-mnist", "width": 32}',
    ],
}  # fmt: skip

# Recipes whose classifier FD is no proxy for FID (their D learns from the classifier's
# features): each trains this many epochs (of its 24-epoch schedule) with a checkpoint
# every epoch; then its checkpoints are scored by FID from the last one down, and it is
# placed at the first from which on every one is at or under the baseline's FID.
FID_JUDGED: dict[str, int] = {"project-features": 6, "project-features-d32": 6}


def default_recipes() -> list[str]:
    """The baseline and the project's fastest recipe on this CPU, two processes, one per
    core: the bf16 recipe only where the CPU computes bfloat16 natively (elsewhere it is
    emulated, many times slower than float32)."""
    from training.loop import cpu_bf16_native

    return ["reports", "project-bf16-b32" if cpu_bf16_native() else "project-b32"]


DEFAULT_TARGET_CFD = 3.45
DEFAULT_BASELINE = Path(__file__).resolve().parent.parent / "models" / "dcgan-fashion"


def read_curve(run: Path) -> list[dict[str, Any]]:
    path = run / "metric-cfd.jsonl"
    if not path.is_file():
        raise SystemExit(f"error: {run} has no metric-cfd.jsonl (train with --metrics cfd)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def reached(run: Path | None, target: float) -> bool:
    """Whether a run (possibly still training, or not started yet) has reached the target."""
    if run is None or not (run / "metric-cfd.jsonl").is_file():
        return False
    try:
        return first_reaching(read_curve(run), target) is not None
    except json.JSONDecodeError:  # a line being written
        return False


def first_reaching(curve: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
    return next((p for p in curve if p["classifier_fd"] <= target), None)


def command_cell(run: Path) -> str:
    """Markdown: the run's launch command, and what a resume changed (``--epochs``...).

    ``training_options.json`` holds the launch; the newest checkpoint, the options
    the run ended with."""
    from training.options import command_line, from_dict

    first = from_dict(json.loads((run / "training_options.json").read_text()))
    text = command_line(first)
    checkpoints = sorted(run.glob("checkpoint-*.pt"), key=lambda p: p.stat().st_mtime)
    if not checkpoints:
        return f"`{text}`"
    from training.checkpoint import CheckpointError, load_checkpoint

    try:
        last = from_dict(load_checkpoint(checkpoints[-1])["options"])
    except CheckpointError:  # being written, or not a checkpoint: the launch is what is known
        return f"`{text}`"
    changed = [
        f.name
        for f in dataclasses.fields(first)
        if f.name not in ("resume", "progress", "out")
        and getattr(first, f.name) != getattr(last, f.name)
    ]
    if not changed:
        return f"`{text}`"

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    # an option the resume left unset (no deadline: --max-minutes None) is said in words
    given = [n for n in changed if getattr(last, n) is not None]
    unset = [n for n in changed if getattr(last, n) is None]
    resumed = " ".join(f"{flag(n)} {getattr(last, n)}" for n in given)
    text = f"`{text}`, resumed with `{resumed}`" if given else f"`{text}`, resumed"
    if unset:
        text += " and no " + ", ".join(f"`{flag(n)}`" for n in unset)
    return text


def report(
    runs: dict[str, Path],
    target: float,
    fids: dict[str, dict[str, Any]] | None = None,
    fid_hits: dict[str, dict[str, Any] | None] | None = None,
) -> str:
    """One row per recipe: where its curve first reached the target, and (with ``fids``)
    the FID of its last checkpoint; then each recipe's CPU ratio to the first one.

    A recipe in ``fid_hits`` (an FID-judged one) is placed by FID instead: its first
    checkpoint from which on every checkpoint is at or under the baseline's FID."""
    fids, fid_hits = fids or {}, fid_hits or {}
    num_gen = next((f["num_gen"] for f in fids.values()), None)
    fid_head = f" FID ({num_gen:,} images) |" if num_gen else ""
    rows = [
        "| recipe | command | metric points | best cfd | reached "
        f"cfd <= {target} at | CPU minutes | kimg |{fid_head}",
        "|---|---|--:|--:|---|--:|--:|" + ("---|" if num_gen else ""),
    ]
    minutes: dict[str, float] = {}
    for name, run in runs.items():
        curve = read_curve(run)
        best = min((p["classifier_fd"] for p in curve), default=float("nan"))
        if name in fid_hits:
            hit, base_fid = fid_hits[name], fids[next(iter(runs))]["fid"]
            where = (
                f"epoch {hit['epoch']} checkpoint, by FID <= {base_fid:.2f}"
                if hit
                else f"not reached by FID <= {base_fid:.2f}"
            )
            fid = hit
        else:
            hit = first_reaching(curve, target)
            where = f"epoch {hit['epoch']}, step {hit['step']}" if hit else "not reached"
            fid = fids.get(name)
        cpu = f"{hit['cpu_minutes']:.1f}" if hit else f"> {curve[-1]['cpu_minutes']:.1f}"
        kimg = f"{hit['kimg']:.0f}" if hit else f"> {curve[-1]['kimg']:.0f}"
        if hit:
            minutes[name] = hit["cpu_minutes"]
        cells = [name, command_cell(run), str(len(curve)), f"{best:.2f}", where, cpu, kimg]
        if num_gen:
            cells.append(f"{fid['fid']:.2f} ({fid['kimg']:.0f} kimg)" if fid else "–")
        rows.append("| " + " | ".join(cells) + " |")
    base = next(iter(runs))
    if base in minutes:
        rows.append("")
        for name in list(runs)[1:]:
            if name not in minutes:
                continue
            ratio = minutes[base] / minutes[name]
            line = f"CPU time to the target: {ratio:.2f}x less with {name} than {base}"
            if name in fid_hits:
                line += ", by FID itself"
            elif base in fids and name in fids:  # the proxy, checked against FID itself
                ours, theirs = fids[name]["fid"], fids[base]["fid"]
                verdict = "confirmed" if ours <= theirs else "NOT confirmed"
                line += f", {verdict} by FID ({ours:.2f} against {theirs:.2f})"
            rows.append(line + ".")
    return "\n".join(rows)


def _point(p: dict[str, Any]) -> str:
    """``kimg: cfd``, with the classifier recall and the conditional accuracy where logged."""
    extra = []
    if "classifier_recall" in p:
        extra.append(f"r {p['classifier_recall']:.2f}")
    if "conditional_accuracy" in p:
        extra.append(f"acc {100 * p['conditional_accuracy']:.0f}%")
    point = f"{p['kimg']:.0f}: {p['classifier_fd']:.2f}"
    return f"{point} ({', '.join(extra)})" if extra else point


def recipe_table(runs: list[Path]) -> str:
    """One row per run: its command, and its metric curve (kimg: classifier FD, with the
    classifier recall and conditional accuracy where the run logged them)."""
    rows = [
        "| run | command | curve (kimg: cfd (recall, accuracy)) | CPU minutes | best cfd |",
        "|---|---|---|--:|--:|",
    ]
    names = [run.name for run in runs]
    for run in runs:
        curve = read_curve(run)
        points = ", ".join(_point(p) for p in curve)
        best = min((p["classifier_fd"] for p in curve), default=float("nan"))
        cpu = curve[-1]["cpu_minutes"] if curve else 0.0
        # runs of one name (each training.train --out numbers its own from 00000) are
        # told apart by their parent folder
        name = f"{run.parent.name}/{run.name}" if names.count(run.name) > 1 else run.name
        rows.append(f"| {name} | {command_cell(run)} | {points} | {cpu:.1f} | {best:.2f} |")
    return "\n".join(rows)


def checkpoint_fids(run: Path, num_gen: int) -> list[dict[str, Any]]:
    """The FID points of ``run``'s checkpoints in ``metric-fid.jsonl`` at ``num_gen`` images."""
    path = run / "metric-fid.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    points = {}
    for line in filter(None, map(str.strip, lines)):
        entry = json.loads(line)
        src = entry.get("source") or {}
        if src.get("kind") != "checkpoint" or entry.get("num_gen") != num_gen:
            continue
        if src.get("kimg") is None or src.get("cpu_minutes") is None:
            continue
        points[src["epoch"]] = {
            "epoch": src["epoch"],
            "kimg": src["kimg"],
            "cpu_minutes": src["cpu_minutes"],
            "fid": entry["results"]["fid"],
            "command": entry["command"],
        }
    return [points[e] for e in sorted(points)]


def measure_checkpoints(run: Path, epochs: list[int] | None, num_gen: int) -> None:
    """Score each checkpoint of ``run`` not yet scored at ``num_gen`` images (FID only)."""
    from training.evaluate import main as evaluate

    done = {p["epoch"] for p in checkpoint_fids(run, num_gen)}
    if epochs:
        paths = [run / f"checkpoint-{e:06d}.pt" for e in epochs]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise SystemExit(f"error: no such checkpoint: {', '.join(missing)}")
    else:
        paths = sorted(run.glob("checkpoint-[0-9]*.pt"))
    for ckpt in paths:
        if int(ckpt.stem.split("-")[1]) in done:
            continue
        argv = [str(ckpt), "--metrics", "fid", "--num-gen", str(num_gen), "--out", str(run)]
        if evaluate([*argv, "--quiet"]) != 0:
            raise SystemExit(f"error: scoring {ckpt} failed")


def first_checkpoint_under(run: Path, target: float, num_gen: int) -> dict[str, Any] | None:
    """The first of the run's numbered checkpoints from which on every one scores FID <=
    ``target`` (at ``num_gen`` images): scored from the last one down, stopping at the
    first above the target, so a run that gets there early costs few evaluations."""
    epochs = sorted(int(p.stem.split("-")[1]) for p in run.glob("checkpoint-[0-9]*.pt"))
    hit = None
    for epoch in reversed(epochs):
        measure_checkpoints(run, [epoch], num_gen)
        point = next(p for p in checkpoint_fids(run, num_gen) if p["epoch"] == epoch)
        if point["fid"] > target:
            break
        hit = point
    return hit


def baseline_point(model_dir: Path) -> dict[str, Any]:
    """FID, kimg and training seconds of the baseline model, from its card."""
    from ganserve.card import CardError, ModelCard

    try:
        card = ModelCard.load(model_dir)
    except CardError as exc:
        raise SystemExit(f"error: {exc}") from None
    seconds = card.training.train_seconds if card.training else None
    if card.fid is None or seconds is None or card.epochs is None:
        raise SystemExit(f"error: {model_dir}'s card lacks its FID, epochs or training time")
    return {"name": card.name, "fid": card.fid, "epochs": card.epochs, "seconds": seconds}


def fid_report(run: Path, num_gen: int, target: float | None, baseline: Path) -> str:
    """The run's FID curve, where it first reached the target, against the baseline's card."""
    base = baseline_point(baseline)
    target = base["fid"] if target is None else target
    curve = checkpoint_fids(run, num_gen)
    if not curve:
        raise SystemExit(f"error: {run} has no checkpoint FID at {num_gen} images yet")
    hit = next((p for p in curve if p["fid"] <= target), None)
    points = ", ".join(
        f"{p['kimg']:.0f} kimg / {p['cpu_minutes']:.1f} CPU min: {p['fid']:.2f}" for p in curve
    )
    lines = [
        f"| recipe | command | FID at {num_gen:,} images (kimg / CPU minutes: FID) | "
        f"reached FID <= {target:.2f} at | training seconds |",
        "|---|---|---|---|--:|",
        f"| reports' (`{base['name']}`'s card) | `{command_of_card(baseline)}` | "
        f"{base['epochs']} epochs: {base['fid']:.2f} | epoch {base['epochs']} | "
        f"{base['seconds']:,.0f} (wall) |",
    ]
    reached = f"epoch {hit['epoch']}, {hit['kimg']:.0f} kimg" if hit else "not reached"
    seconds = f"{hit['cpu_minutes'] * 60:,.0f} (CPU)" if hit else "–"
    lines.append(f"| {run.name} | {command_cell(run)} | {points} | {reached} | {seconds} |")
    if hit:
        ratio = base["seconds"] / (hit["cpu_minutes"] * 60)
        lines.append(f"\nTime to FID {target:.2f}: {ratio:.2f}x less with {run.name}.")
    return "\n".join(lines)


def command_of_card(model_dir: Path) -> str:
    from ganserve.card import ModelCard

    card = ModelCard.load(model_dir)
    return (card.training.command if card.training else None) or "?"


def _run_dir(out: Path) -> Path | None:
    """The run directory ``training.train --out OUT`` made (the newest), if any yet."""
    return max(out.glob("[0-9]*-*"), default=None)


def stop_on_target(
    procs: dict[str, subprocess.Popen[bytes]], outs: dict[str, Path], target: float
) -> None:
    """Wait for the runs; SIGTERM each as soon as the curve of its run in ``outs[name]``
    reaches ``target`` (the training loop then stops cleanly, with a checkpoint)."""
    stopped: set[str] = set()
    while any(p.poll() is None for p in procs.values()):
        for name, p in procs.items():
            if name in stopped or p.poll() is not None:
                continue
            run = _run_dir(outs[name])
            if name in FID_JUDGED:
                epochs = FID_JUDGED[name]
                done = run is not None and (run / f"checkpoint-{epochs:06d}.pt").is_file()
                why = f"trained {epochs} epochs"
            else:
                done, why = reached(run, target), f"reached classifier FD {target}"
            if done:
                print(f"{name} {why}: stopping it", flush=True)
                p.send_signal(signal.SIGTERM)
                stopped.add(name)
        time.sleep(0.5)


def train_side_by_side(
    minutes: float, out: Path, metrics_kimg: float, target: float, recipes: list[str]
) -> dict[str, Path]:
    """Start the recipes together; stop each as soon as its curve reaches ``target``."""
    procs = {}
    for name in recipes:
        cmd = [
            sys.executable, "-m", "training.train", *RECIPES[name], "--threads", "1",
            "--metrics", "cfd", "--metrics-kimg", str(metrics_kimg), "--metrics-images", "5000",
            "--max-minutes", str(minutes), "--no-progress",
            "--checkpoint-every", "1" if name in FID_JUDGED else "5",
            "--out", str(out / name),
        ]  # fmt: skip
        procs[name] = subprocess.Popen(cmd)
        time.sleep(1)
    stop_on_target(procs, {name: out / name for name in recipes}, target)
    for name, p in procs.items():
        if p.returncode != 0:
            raise SystemExit(f"error: the {name} recipe's run failed (exit {p.returncode})")
    runs = {name: _run_dir(out / name) for name in recipes}
    return {name: run for name, run in runs.items() if run is not None}


def last_checkpoint_fid(run: Path, num_gen: int) -> dict[str, Any]:
    """FID of the run's newest checkpoint at ``num_gen`` images (scored once, then read
    from ``RUN/metric-fid.jsonl``): ``fid``, ``kimg``, ``num_gen``."""
    from training.evaluate import main as evaluate
    from training.loop import newest_checkpoint

    ckpt = newest_checkpoint(run)
    if ckpt is None:
        raise SystemExit(f"error: {run} has no checkpoint")

    def scored() -> dict[str, Any] | None:
        path = run / "metric-fid.jsonl"
        for line in reversed(path.read_text().splitlines() if path.is_file() else []):
            entry = json.loads(line) if line.strip() else {}
            src = entry.get("source") or {}
            if src.get("path") == str(ckpt) and entry.get("num_gen") == num_gen:
                return {"fid": entry["results"]["fid"], "kimg": src["kimg"], "num_gen": num_gen}
        return None

    if (found := scored()) is None:
        argv = [str(ckpt), "--metrics", "fid", "--num-gen", str(num_gen), "--out", str(run)]
        if evaluate([*argv, "--quiet"]) != 0 or (found := scored()) is None:
            raise SystemExit(f"error: scoring {ckpt} failed")
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.time_to_quality", description=__doc__)
    p.add_argument("--minutes", type=float, default=120, help="wall minutes per recipe, at most")
    p.add_argument(
        "--recipes", nargs="+", choices=list(RECIPES),
        help="the recipes to train, one process each (the first is the baseline of the "
        "ratios; default: reports, and project-bf16-b32 on a CPU with native bfloat16, "
        "project-b32 elsewhere)",
    )  # fmt: skip
    p.add_argument("--runs", nargs="+", type=Path, metavar="RUN", help="report finished runs")
    p.add_argument("--table", nargs="+", type=Path, metavar="RUN", help="only tabulate RUN curves")
    p.add_argument("--out", type=Path, default=Path("runs/time-to-quality"))
    p.add_argument("--target-cfd", type=float, default=DEFAULT_TARGET_CFD)
    p.add_argument("--metrics-kimg", type=float, default=30)
    p.add_argument(
        "--fid-num-gen", type=int, default=5000,
        help="score each run's last checkpoint by FID at this many images (0: not scored)",
    )  # fmt: skip
    p.add_argument("--fid", type=Path, metavar="RUN", help="score RUN's checkpoints by FID")
    p.add_argument("--epochs", type=int, nargs="+", help="with --fid: only these checkpoints")
    p.add_argument("--num-gen", type=int, default=10000, help="with --fid: generated images")
    p.add_argument("--target-fid", type=float, help="with --fid (default: the baseline's FID)")
    p.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE, help="a model dir")
    args = p.parse_args(argv)
    if args.fid:
        if not args.fid.is_dir():
            raise SystemExit(f"error: no such run directory: {args.fid}")
        measure_checkpoints(args.fid, args.epochs, args.num_gen)
        print(fid_report(args.fid, args.num_gen, args.target_fid, args.baseline))
        return 0
    if args.table:
        print(recipe_table(args.table))
        return 0
    if args.fid_num_gen < 0:
        raise SystemExit("error: --fid-num-gen must be >= 0")
    if args.runs:  # named by the recipe whose --out folder holds them, else by their own name
        runs = {(r.parent.name if r.parent.name in RECIPES else r.name): r for r in args.runs}
    else:
        if args.minutes <= 0:
            raise SystemExit("error: --minutes must be > 0")
        runs = train_side_by_side(
            args.minutes,
            args.out,
            args.metrics_kimg,
            args.target_cfd,
            args.recipes or default_recipes(),
        )
    for run in runs.values():
        read_curve(run)  # each has a curve, before any scoring
    judged = [name for name in runs if name in FID_JUDGED]
    if judged and next(iter(runs)) in FID_JUDGED:
        raise SystemExit("error: the baseline (the first recipe) must be judged by its curve")
    if judged and not args.fid_num_gen:
        raise SystemExit(f"error: {', '.join(judged)} are judged by FID: --fid-num-gen must be > 0")
    fids, hits = {}, {}
    if args.fid_num_gen:
        fids = {
            name: last_checkpoint_fid(run, args.fid_num_gen)
            for name, run in runs.items()
            if name not in FID_JUDGED
        }
        target_fid = fids[next(iter(runs))]["fid"]
        hits = {n: first_checkpoint_under(runs[n], target_fid, args.fid_num_gen) for n in judged}
    print(report(runs, args.target_cfd, fids, hits))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
