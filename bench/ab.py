"""A/B: two versions of ganserve side by side under wrk, in alternating rounds.

    python -m bench.ab --a HEAD~1                   # the commit before against the work tree
    python -m bench.ab --a main --b HEAD --images 1 --rounds 6 --seconds 10
    python -m bench.ab --a HEAD --env-b GANSERVE_MAX_WAIT_MS=1    # a setting, same code

A version is a git commit (its files exported with ``git archive`` into a
temporary folder) or ``worktree`` (the files as they are now); ``--env-a`` and
``--env-b`` add ``GANSERVE_*`` settings. Both serve one model (a copy of
``models/<model>``, the default unconditional one unless ``--model``) with
``python -m service``, both started (and warmed up) once; then each round
measures A then B, the next B then A (ABBA), one wrk cell each, so short cells
and many rounds spread a busy machine's swings over both. The result: per round,
images/s, p99 and server CPU per image of each version, and the medians of B / A.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import servers
from bench.run import REPO, _cards, _default_model
from bench.wrk import WrkError, measure_server

WORKTREE = "worktree"


@dataclass
class Variant:
    label: str  # "A" or "B"
    ref: str  # a commit, or WORKTREE
    env: dict[str, str]
    root: Path | None = None  # the folder its code runs from


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """The repository's files at ``ref`` (a commit) in a temporary folder, or the work tree."""
    if ref == WORKTREE:
        yield REPO
        return
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if sha.returncode != 0:
        raise SystemExit(f"error: {ref!r} is not a commit of this repository")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", sha.stdout.strip(), "service", "ganserve"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    with tempfile.TemporaryDirectory(prefix="ganserve-ab-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)


def parse_env(items: Sequence[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("GANSERVE_"):
            raise SystemExit(f"error: {item!r} is not GANSERVE_NAME=VALUE")
        env[key] = value
    return env


def start(
    variant: Variant, models_dir: Path, args: argparse.Namespace, log: Path
) -> servers.Server:
    """The variant's ganserve, started (``python -m service`` from its own files)."""
    assert variant.root is not None
    server = servers.ganserve(models_dir, log, env=variant.env, workers=args.workers)
    server.name = f"ganserve {variant.label}"
    server.cwd = variant.root
    server.env = servers.clean_env(variant.env, variant.root)
    server.start()
    return server


def measure(
    server: servers.Server, model: str, args: argparse.Namespace, seed: int, warmup_s: float
) -> dict[str, float]:
    """One wrk cell (after ``warmup_s`` of unrecorded load): rates, latency, server CPU."""
    r, cpu = measure_server(
        server,
        f'{{"model": "{model}", "n": {args.images}, "seed": {{seed}}}}',
        connections=args.connections,
        threads=1,
        duration_s=args.seconds,
        warmup_s=warmup_s,
        first_seed=seed,
        images_per_request=args.images,
    )
    images = max(r.ok * args.images, 1)
    return {
        "images_per_s": r.images_per_s,
        "p50_ms": r.latency_ms["50"],
        "p99_ms": r.latency_ms["99"],
        "cpu_ms_per_image": cpu * 1000 / images,
        "errors": r.error_count,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    p.add_argument("--a", default="HEAD", help=f"a commit, or {WORKTREE!r} (default HEAD)")
    p.add_argument("--b", default=WORKTREE, help=f"a commit, or {WORKTREE!r} (the default)")
    p.add_argument("--env-a", nargs="*", default=[], metavar="GANSERVE_X=V")
    p.add_argument("--env-b", nargs="*", default=[], metavar="GANSERVE_X=V")
    p.add_argument("--model", help="model to serve (default: the default unconditional one)")
    p.add_argument("--images", type=int, default=1, help="images per request (default 1)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=12)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cards = _cards(REPO / "models")
    model = args.model or _default_model(cards)
    if model not in cards:
        print(f"error: no model {model!r} in models/", file=sys.stderr)
        return 2
    a = Variant("A", args.a, parse_env(args.env_a))
    b = Variant("B", args.b, parse_env(args.env_b))
    logs = REPO / "bench" / "results" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    with (
        checkout(a.ref) as root_a,
        checkout(b.ref) as root_b,
        tempfile.TemporaryDirectory(prefix="ganserve-ab-models-") as tmp,
        ExitStack() as stack,
    ):
        a.root, b.root = root_a, root_b
        shutil.copytree(REPO / "models" / model, Path(tmp) / model)
        print(
            f"A = {a.ref} {a.env or ''}, B = {b.ref} {b.env or ''}; {model}, {args.images} "
            f"image(s)/request, {args.connections} connections, {args.rounds} rounds of "
            f"{args.seconds:g} s; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        seed = 0
        try:
            running = {}
            for v in (a, b):
                running[v.label] = start(v, Path(tmp), args, logs / f"ab-{v.label}.log")
                stack.callback(running[v.label].stop)
            for v in (a, b):  # the first cell of each starts warm
                measure(running[v.label], model, args, seed, args.warmup)
        except (WrkError, servers.ServerError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for k in range(args.rounds):
            for v in (a, b) if k % 2 == 0 else (b, a):
                try:
                    m = measure(running[v.label], model, args, seed, 0.0)
                except (WrkError, servers.ServerError) as exc:
                    print(f"error: {v.label}: {exc}", file=sys.stderr)
                    return 1
                seed += 10**9
                results[v.label].append(m)
                print(
                    f"  round {k + 1} {v.label}: {m['images_per_s']:8.1f} img/s "
                    f"p50 {m['p50_ms']:6.1f} p99 {m['p99_ms']:6.1f} ms "
                    f"server CPU {m['cpu_ms_per_image']:.3f} ms/image errors {m['errors']:.0f}",
                    flush=True,
                )
    for key, what in (("images_per_s", "images/s"), ("cpu_ms_per_image", "CPU ms/image")):
        pairs = zip(results["A"], results["B"], strict=True)
        ratios = [rb[key] / ra[key] for ra, rb in pairs if ra[key] > 0 and rb[key] > 0]
        if not ratios:
            print(f"{what}: no round in which both answered")
            continue
        med_a = statistics.median(r[key] for r in results["A"])
        med_b = statistics.median(r[key] for r in results["B"])
        print(
            f"{what}: A {med_a:.3f}, B {med_b:.3f} (medians); B / A by round "
            + ", ".join(f"{x:.3f}" for x in ratios)
            + f"; median {statistics.median(ratios):.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
