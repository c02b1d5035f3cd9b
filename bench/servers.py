"""The systems under load: ganserve and the naive server as subprocesses on loopback ports.

Each server is its own process (as ``make serve`` runs ganserve), started on a
free 127.0.0.1 port with a clean environment (no ``GANSERVE_*`` variables but the
ones given), waited for until its health route answers 200, and stopped with
SIGTERM (then SIGKILL) when the ``with`` block ends. Its output goes to a log file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

REPO = Path(__file__).resolve().parent.parent


class ServerError(RuntimeError):
    """A server that exited or did not become ready; the message quotes its log."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without GANSERVE_* settings, plus ``extra``; the repo on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


class Server:
    """A server subprocess on 127.0.0.1: ``with Server(...) as s: s.url``."""

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        health: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        ready_timeout_s: float = 120.0,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.args = [a.replace("{port}", str(self.port)) for a in args]
        self.health = health
        self.log_path = log_path
        self.env = clean_env(env)
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> None:
        """Start the process and wait until its health route answers 200."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        begin = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, *self.args],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = begin + self.ready_timeout_s
        with httpx.Client(base_url=self.url, trust_env=False, timeout=5.0) as client:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise ServerError(
                        f"{self.name} exited with status {self.process.returncode}:\n"
                        + self.log_tail()
                    )
                try:
                    if client.get(self.health).status_code == 200:
                        self.startup_s = time.perf_counter() - begin
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        self.stop()
        raise ServerError(f"{self.name} was not ready within {self.ready_timeout_s:.0f} s")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        p = self.process
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def ganserve(models_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> Server:
    """ganserve as ``make serve`` runs it: ``python -m service`` with default settings."""
    return Server(
        "ganserve",
        [
            "-m",
            "service",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--models-dir",
            str(models_dir),
        ],
        health="/readyz",
        log_path=log_path,
        env=env,
    )


def naive(source: tuple[str, Path], log_path: Path) -> Server:
    """The naive server; ``source`` is ("--checkpoint", path) or ("--model-dir", path)."""
    flag, path = source
    return Server(
        "naive",
        ["-m", "bench.naive_server", "--port", "{port}", flag, str(path)],
        health="/healthz",
        log_path=log_path,
    )
