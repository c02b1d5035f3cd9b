"""Helpers for the deployment tests: podman with the project's containers.conf, servers, waits."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
CONTAINER_DIR = REPO / "deploy" / "container"
BASE_IMAGE = "localhost/ganserve-base:bookworm"


def shipped_models() -> list[str]:
    """The names of the generators under models/."""
    return sorted(p.parent.name for p in (REPO / "models").glob("*/card.json"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def podman_env() -> dict[str, str]:
    """The environment podman runs in: the project's containers.conf unless one is set."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINER_DIR / "containers.conf"))
    return env


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """``podman ARGS``; output captured as text; raises with its stderr when ``check`` fails."""
    out = subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout
    )
    if check and out.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    return out


def podman_unusable() -> str | None:
    """Why podman cannot build and run containers here, or None when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc)"
    if os.geteuid() != 0:
        return "the container tests run podman as root (debootstrap and runc need it)"
    try:
        info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return "podman info did not answer within 60 s"
    if info.returncode != 0:
        return f"podman info failed: {info.stderr.strip()[-300:]}"
    return None


def wait_ready(url: str, timeout: float = 120, alive: object = None) -> dict:
    """Poll ``url``/readyz until 200; ``alive()`` (when given) says whether to keep waiting."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            raise AssertionError(f"the server stopped before it was ready ({last})")
        try:
            r = httpx.get(f"{url}/readyz", timeout=5)
            if r.status_code == 200:
                return r.json()
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.3)
    raise AssertionError(f"{url} was not ready within {timeout} s ({last})")


def container_running(name: str) -> bool:
    out = podman("inspect", "--format", "{{.State.Running}}", name, check=False)
    return out.stdout.strip() == "true"


@contextmanager
def running_container(
    image: str, name: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``podman run -d`` the image with ``args`` on a free loopback port; yields the URL.

    Removed (with its logs in the failure message when it did not start) at the end.
    """
    port = free_port()
    env_args = [f"--env={k}={v}" for k, v in (env or {}).items()]
    podman("rm", "--force", "--ignore", name)
    podman("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:8000",
           *env_args, *args, image)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, alive=lambda: container_running(name))
        except AssertionError as exc:
            logs = podman("logs", name, check=False)
            raise AssertionError(f"{exc}\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}") from None
        yield url
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
