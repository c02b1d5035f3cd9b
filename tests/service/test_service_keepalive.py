"""Idle kept-alive connections: the server keeps them open for GANSERVE_KEEPALIVE_TIMEOUT_S."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.config import Settings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_healthz(sock: socket.socket) -> bytes:
    """One keep-alive ``GET /healthz`` on an open connection: the whole raw response."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return data


def test_default_outlasts_load_balancer_idle_timeouts() -> None:
    # AWS ALB and nginx's upstream keepalive_timeout close idle connections after 60 s; httpx
    # after 5 s. The server must close later than the client side, never first.
    assert Settings().keepalive_timeout_s > 60


def test_idle_connection_stays_open_for_the_setting_then_closes(models_dir: Path) -> None:
    port = free_port()
    env = os.environ | {"GANSERVE_KEEPALIVE_TIMEOUT_S": "2", "GANSERVE_LOG_LEVEL": "warning"}
    args = ["-m", "service", "--port", str(port), "--models-dir", str(models_dir)]
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the server exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert get_healthz(sock).startswith(b"HTTP/1.1 200")
            time.sleep(1.0)  # idle for half the timeout: the same connection still answers
            assert get_healthz(sock).startswith(b"HTTP/1.1 200")
            time.sleep(3.0)  # idle past the timeout: the server has closed it
            assert sock.recv(1) == b""
    finally:
        proc.terminate()
        proc.wait(timeout=20)
