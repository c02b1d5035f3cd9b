"""Replicas behind a real reverse proxy: deploy/proxy/nginx.conf in front of two
``python -m service`` processes. Skipped without nginx (apt-get install nginx)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from deploy_testlib import REPO, free_port, wait_ready
from prometheus_client.parser import text_string_to_metric_families

NGINX_SNIPPET = REPO / "deploy" / "proxy" / "nginx.conf"
MODEL = "dcgan-fashion"  # one shipped model: replicas start quickly
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

NGINX_MAIN = """\
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/ganserve.conf;
}}
"""


@dataclass
class Replica:
    proc: subprocess.Popen
    url: str


@dataclass
class Cluster:
    url: str  # the proxy
    replicas: list[Replica]
    error_log: Path


def start_replica(models_dir: Path, log: Path) -> Replica:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    env["GANSERVE_LOG_LEVEL"] = "warning"
    args = ["--host", "127.0.0.1", "--port", str(port), "--models-dir", str(models_dir)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Replica(proc, f"http://127.0.0.1:{port}")


def proxy_config(tmp: Path, listen: int, replicas: list[Replica]) -> str:
    """deploy/proxy/nginx.conf with this test's listening port and replicas' ports."""
    text = NGINX_SNIPPET.read_text()
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+", text, re.MULTILINE)
    assert len(servers) == len(replicas), servers
    for line, replica in zip(servers, replicas, strict=True):
        text = text.replace(line, re.sub(r"127\.0\.0\.1:\d+", replica.url[7:], line), 1)
    text, listens = re.subn(r"listen \d+;", f"listen 127.0.0.1:{listen};", text)
    assert listens == 1
    return text


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Two replicas and nginx in front, all stopped at the end."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    models = tmp_path / "models"
    shutil.copytree(REPO / "models" / MODEL, models / MODEL)
    replicas = [start_replica(models, tmp_path / f"replica-{i}.log") for i in range(2)]
    nginx = None
    try:
        for replica in replicas:
            wait_ready(replica.url, alive=lambda r=replica: r.proc.poll() is None)
        port = free_port()
        (tmp_path / "ganserve.conf").write_text(proxy_config(tmp_path, port, replicas))
        main = tmp_path / "nginx.conf"
        main.write_text(NGINX_MAIN.format(tmp=tmp_path))
        error_log = tmp_path / "error.log"
        nginx = subprocess.Popen(
            ["nginx", "-e", str(error_log), "-p", str(tmp_path), "-c", str(main)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout=30, alive=lambda: nginx.poll() is None)
        yield Cluster(url, replicas, error_log)
    finally:
        for proc in [r.proc for r in replicas] + ([nginx] if nginx else []):
            if proc.poll() is None:
                proc.terminate()
        for proc in [r.proc for r in replicas] + ([nginx] if nginx else []):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def generate_requests(url: str) -> float:
    """The replica's count of answered /generate requests, from its /metrics."""
    r = httpx.get(f"{url}/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    total = 0.0
    for family in text_string_to_metric_families(r.text):
        if family.name == "ganserve_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["route"] == "/generate":
                    total += sample.value
    return total


def test_same_request_same_bytes_from_every_replica(cluster: Cluster) -> None:
    body = {"model": MODEL, "n": 16, "seed": 42}
    direct = [httpx.post(f"{r.url}/generate", json=body, timeout=30) for r in cluster.replicas]
    assert [r.status_code for r in direct] == [200, 200]
    assert direct[0].content == direct[1].content
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        proxied = [client.post("/generate", json=body) for _ in range(10)]
    assert all(r.status_code == 200 and r.content == direct[0].content for r in proxied)
    # Each replica's /metrics is scrapeable and counts its own requests: the proxy used both.
    counts = [generate_requests(r.url) for r in cluster.replicas]
    assert sum(counts) == 2 + 10
    assert all(count > 1 for count in counts), counts


def load_while(cluster: Cluster, stop: threading.Event, workers: int = 6) -> Counter[str]:
    """Closed-loop load through the proxy until ``stop``; outcomes by kind."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(index: int) -> None:
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            seed = index * 1_000_000
            while not stop.is_set():
                seed += 1
                try:
                    r = client.post("/generate", json={"model": MODEL, "n": 64, "seed": seed})
                    ok = r.status_code == 200 and r.content.startswith(PNG_SIGNATURE)
                    kind = "ok" if ok else f"status {r.status_code}"
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                with lock:
                    outcomes[kind] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_stopping_a_replica_mid_load_loses_no_request(cluster: Cluster, how: str) -> None:
    stop = threading.Event()
    result: list[Counter[str]] = []
    loader = threading.Thread(target=lambda: result.append(load_while(cluster, stop)))
    loader.start()
    try:
        time.sleep(3)
        victim, survivor = cluster.replicas[1], cluster.replicas[0]
        before = generate_requests(victim.url)
        victim.proc.send_signal(getattr(signal, how))
        victim.proc.wait(timeout=30)
        served_by_survivor = generate_requests(survivor.url)
        time.sleep(3)
        assert generate_requests(survivor.url) > served_by_survivor  # it took over
    finally:
        stop.set()
        loader.join(timeout=150)
    (outcomes,) = result
    assert before > 0, "the stopped replica had served no request"
    assert set(outcomes) == {"ok"} and outcomes["ok"] > 20, outcomes
    # The proxy saw the replica fail (connection refused, reset or closed) and retried.
    log = cluster.error_log.read_text()
    assert re.search(r"(connect\(\) failed|upstream prematurely closed|reset by peer)", log), log
