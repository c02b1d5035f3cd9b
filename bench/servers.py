"""The systems under load: ganserve, the naive server and the peers as subprocesses on loopback.

Each server is its own process (as ``make serve`` runs ganserve) in a session of
its own, started on a free 127.0.0.1 port with a clean environment (no
``GANSERVE_*`` variables but the ones given), waited for until its health route
answers 200, and stopped with SIGTERM (then SIGKILL) when the ``with`` block ends;
any of its processes still alive then (workers, Ray's daemons) gets SIGKILL.
Its output goes to a log file. ``server_cpu_s`` adds up the CPU time of every
process of a server (its tree and its session), so multi-process servers are measured whole.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
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


def clean_env(extra: dict[str, str] | None = None, root: Path = REPO) -> dict[str, str]:
    """The environment without GANSERVE_* settings, plus ``extra``; ``root`` first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first); None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def server_pids(root: int, also: Iterable[int] = ()) -> list[int]:
    """The live processes of a server: ``root``, its descendants and the rest of its session.

    Both, because frameworks differ: BentoML's workers start sessions of their own (but
    stay children of its arbiter), Ray's actors stay in the session (under the raylet).
    ``also`` adds processes known from before (and their descendants): a worker whose
    parent has exited is no longer anybody's descendant. Zombies are not counted: they
    run nothing and go once reaped.
    """
    parents: dict[int, int] = {}
    sessions: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) and fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
            sessions[int(entry.name)] = int(fields[3])
    found = {pid for pid, sid in sessions.items() if sid == root}
    found.update(pid for pid in (root, *also) if pid in parents)
    frontier = list(found)
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return sorted(found)


def server_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of every live process of a server; nan when it is gone."""
    pids = server_pids(root)
    if root not in pids:
        return math.nan
    ticks = 0
    for pid in pids:
        if fields := _stat(pid):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


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
        python: Path | str | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.python = str(python or sys.executable)
        self.cwd = cwd or REPO
        self.port = port or free_port()
        self.args = [a.replace("{port}", str(self.port)) for a in args]
        self.health = health
        self.log_path = log_path
        self.env = clean_env(env, self.cwd)
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
            [self.python, *self.args],
            cwd=self.cwd,
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
        """SIGTERM, then SIGKILL after 10 s; then SIGKILL whatever is left of the server.

        What is left is looked up again until nothing is: a framework may start
        processes while it shuts down (Ray does), after the first look.
        """
        p = self.process
        if p is None:
            return
        left = server_pids(p.pid)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        deadline = time.monotonic() + 20
        while (alive := server_pids(p.pid, also=left)) and time.monotonic() < deadline:
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.1)

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


def named(name: str, workers: int) -> str:
    """The name of a server of ``workers`` processes (or replicas): ``name-wN`` unless one."""
    return name if workers == 1 else f"{name}-w{workers}"


def _with_workers(name: str, args: list[str], workers: int) -> tuple[str, list[str]]:
    """The name and arguments of a server of ``workers`` processes: ``-wN`` and ``--workers N``
    unless it is one."""
    if workers == 1:
        return name, args
    return named(name, workers), [*args, "--workers", str(workers)]


def ganserve(
    models_dir: Path, log_path: Path, env: dict[str, str] | None = None, workers: int = 1
) -> Server:
    """ganserve as ``make serve`` runs it: ``python -m service`` with default settings."""
    args = ["-m", "service", "--host", "127.0.0.1", "--port", "{port}"]
    args += ["--models-dir", str(models_dir)]
    return Server(
        *_with_workers("ganserve", args, workers),
        health="/readyz",
        log_path=log_path,
        env=env,
    )


def naive(source: tuple[str, Path], log_path: Path, workers: int = 1) -> Server:
    """The naive server; ``source`` is ("--checkpoint", path) or ("--model-dir", path)."""
    flag, path = source
    args = ["-m", "bench.naive_server", "--port", "{port}", flag, str(path)]
    return Server(
        *_with_workers("naive", args, workers),
        health="/healthz",
        log_path=log_path,
        ready_timeout_s=300.0,
    )


def bentoml(
    model_dir: Path, log_path: Path, python: Path, *, workers: int = 1, session_refresh: bool = True
) -> Server:
    """``bench/peers/bentoml_service.py`` under ``bentoml serve`` in its own environment."""
    env = {"PEER_MODEL_DIR": str(model_dir), "PEER_WORKERS": str(workers)}
    env["PEER_BENTOML_SESSION_REFRESH"] = "on" if session_refresh else "off"
    env["BENTOML_DO_NOT_TRACK"] = "True"  # no usage reports (nothing outside loopback)
    name = "bentoml" if session_refresh else "bentoml-norefresh"
    return Server(
        named(name, workers),
        ["-m", "bentoml", "serve", "bench.peers.bentoml_service:Images"]
        + ["--host", "127.0.0.1", "--port", "{port}"],
        health="/readyz",
        log_path=log_path,
        env=env,
        python=python,
        ready_timeout_s=240.0,
    )


def ray(model_dir: Path, log_path: Path, python: Path, *, replicas: int = 1) -> Server:
    """``bench/peers/ray_service.py`` (Ray Serve) in its own environment."""
    return Server(
        named("ray", replicas),
        ["-m", "bench.peers.ray_service", "--model-dir", str(model_dir)]
        + ["--port", "{port}", "--replicas", str(replicas)],
        health="/healthz",
        log_path=log_path,
        env={"RAY_USAGE_STATS_ENABLED": "0"},  # no usage reports (nothing outside loopback)
        python=python,
        ready_timeout_s=300.0,
    )
