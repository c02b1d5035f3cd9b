"""The peers' own virtual environments: ``bench/.venvs/<peer>``, built from requirements files.

    python -m bench.peers.envs [bentoml] [ray]     # build (or check) them; print their pythons

Each environment holds ``requirements-<peer>.txt`` beside this module plus
onnxruntime, numpy and Pillow pinned to the versions of the interpreter that runs
the bench, so a peer runs the same ONNX Runtime kernels and writes the same PNG
bytes as ganserve. An environment is rebuilt when its requirements or pins change
(a stamp file records them). pip uses the machine's own configuration.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE.parent / ".venvs"
PEERS = ("bentoml", "ray")
STAMP = ".bench-requirements"


class EnvError(RuntimeError):
    """A peer environment could not be built; the message quotes pip's output."""


def _version(*names: str) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise EnvError(f"none of {', '.join(names)} is installed in {sys.executable}")


def pins() -> list[str]:
    """onnxruntime, numpy and Pillow at this interpreter's versions (the CPU onnxruntime)."""
    return [
        f"onnxruntime=={_version('onnxruntime-gpu', 'onnxruntime')}",
        f"numpy=={_version('numpy')}",
        f"pillow=={_version('pillow')}",
    ]


def requirements(peer: str) -> Path:
    if peer not in PEERS:
        raise ValueError(f"unknown peer {peer!r}; choose one of {', '.join(PEERS)}")
    return HERE / f"requirements-{peer}.txt"


def python_of(peer: str) -> Path:
    """The interpreter of a peer's environment (built or not)."""
    return VENVS / peer / "bin" / "python"


def _wanted(peer: str) -> str:
    return requirements(peer).read_text() + "\n".join(pins()) + "\n"


def is_ready(peer: str) -> bool:
    """Whether the environment exists and was built from today's requirements and pins."""
    stamp = VENVS / peer / STAMP
    try:
        return python_of(peer).exists() and stamp.read_text() == _digest(_wanted(peer))
    except (OSError, EnvError):
        return False


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ensure(peer: str, *, quiet: bool = True, timeout_s: float = 1800) -> Path:
    """Build the environment unless it is up to date; return its python."""
    if is_ready(peer):
        return python_of(peer)
    venv = VENVS / peer
    wanted = _wanted(peer)
    log = VENVS / f"{peer}-install.log"
    VENVS.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python_of(peer)), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [str(python_of(peer)), "-m", "pip", "install", "-q", "-r", str(requirements(peer))]
        + pins(),
    ]
    with log.open("w") as f:
        for cmd in steps:
            if not quiet:
                print("  $", " ".join(cmd), flush=True)
            done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout_s)
            if done.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
                step = " ".join(cmd[:4])
                raise EnvError(f"building the {peer} environment failed ({step} ...):\n{tail}")
    (venv / STAMP).write_text(_digest(wanted))
    return python_of(peer)


def main(argv: Sequence[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(PEERS)
    for peer in names:
        try:
            print(f"{peer}: {ensure(peer, quiet=False)}", flush=True)
        except (EnvError, ValueError, subprocess.TimeoutExpired) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
