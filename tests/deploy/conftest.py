"""Fixtures for the deployment tests: the serving images, built once per session with podman."""

from __future__ import annotations

import subprocess
import time

import pytest
from deploy_testlib import BASE_IMAGE, CONTAINER_DIR, REPO, podman, podman_env, podman_unusable

# Seconds each image took to make in this session (printed at the end of the session).
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def base_image() -> str:
    """The Debian base made locally (deploy/container/base-image.sh), or skip: why it cannot."""
    reason = podman_unusable()
    if reason:
        pytest.skip(reason)
    start = time.monotonic()
    out = subprocess.run(
        [str(CONTAINER_DIR / "base-image.sh"), BASE_IMAGE],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    TIMINGS["base image"] = time.monotonic() - start
    if out.returncode in (2, 3):  # this host cannot: no debootstrap, no mirror, mirror unreachable
        pytest.skip(f"no base image: {out.stderr.strip()[-500:]}")
    assert out.returncode == 0, out.stderr
    probe = podman("run", "--rm", BASE_IMAGE, "true", check=False, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run a container here: {probe.stderr.strip()[-500:]}")
    return BASE_IMAGE


def build(base: str, ort: str, tag: str) -> str:
    """``make container`` from the working tree."""
    start = time.monotonic()
    out = subprocess.run(
        ["make", "--no-print-directory", "container", f"BASE={base}", f"ORT={ort}", f"IMAGE={tag}"],
        cwd=REPO,
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    TIMINGS[f"build {tag}"] = time.monotonic() - start
    assert out.returncode == 0, f"build failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return tag


@pytest.fixture(scope="session")
def image(base_image: str) -> str:
    """The default image (onnxruntime-gpu, which falls back to the CPU here)."""
    return build(base_image, "onnxruntime-gpu", "localhost/ganserve-test:gpu")


@pytest.fixture(scope="session")
def cpu_image(base_image: str) -> str:
    """The CPU-only image (onnxruntime)."""
    return build(base_image, "onnxruntime", "localhost/ganserve-test:cpu")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        made = ", ".join(f"{k} {v:.0f} s" for k, v in TIMINGS.items())
        terminalreporter.write_line(f"container images: {made}")
