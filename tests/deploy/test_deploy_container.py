"""The serving image, built from the working tree with podman and run as users run it.

One container (read-only root filesystem, every capability dropped, no new
privileges) answers most tests; stopping is tested on a container of its own.
Skipped, with the reason, where podman or debootstrap cannot work.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from deploy_testlib import REPO, podman, running_container, shipped_models
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings

pytestmark = pytest.mark.container

# What a locked-down runtime gives the container (the Kubernetes manifests ask for the same).
LOCKED_DOWN = (
    "--read-only",
    "--read-only-tmpfs=false",  # not even /tmp is writable: the service writes nothing
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def served(image: str) -> Iterator[tuple[str, str]]:
    """(container name, URL) of the default image, running locked down."""
    name = f"ganserve-test-container-{os.getpid()}"
    with running_container(image, name, *LOCKED_DOWN) as url:
        yield name, url


@pytest.fixture(scope="module")
def in_process() -> Iterator[TestClient]:
    """The service in this process on the same models: the reference answers."""
    with TestClient(create_app(Settings(models_dir=REPO / "models"))) as client:
        yield client


def distributions(image: str) -> set[str]:
    """The Python distributions installed in the image (normalized names)."""
    script = (
        "import importlib.metadata as m, json, re; print(json.dumps(sorted("
        "{re.sub(r'[-_.]+', '-', d.metadata['Name']).lower() for d in m.distributions()})))"
    )
    out = podman("run", "--rm", "--entrypoint", "python", image, "-c", script)
    return set(json.loads(out.stdout))


def requests_for_every_model(client: TestClient) -> list[tuple[str, dict]]:
    """One request per served model (conditional ones through /conditional) and /perturb."""
    out: list[tuple[str, dict]] = []
    for model in client.get("/models").json()["models"]:
        path = "/conditional" if model["conditional"] else "/generate"
        out.append((path, {"model": model["name"], "n": 4, "seed": 11}))
    out.append(("/perturb", {"seed": 0, "dims": [5, 20], "values": [-3, 3], "n": 4}))
    out.append(("/generate", {"n": 64, "seed": 3, "scale": 2}))
    return out


def test_ready_with_every_shipped_model(served: tuple[str, str]) -> None:
    _, url = served
    ready = httpx.get(f"{url}/readyz", timeout=10).json()
    assert ready["models"] == shipped_models()
    assert ready["refused"] == {}


def test_png_byte_identical_to_the_in_process_service(
    served: tuple[str, str], in_process: TestClient
) -> None:
    _, url = served
    requests = requests_for_every_model(in_process)
    assert len(requests) == len(shipped_models()) + 2
    for path, body in requests:
        expected = in_process.post(path, json=body)
        got = httpx.post(f"{url}{path}", json=body, timeout=60)
        assert expected.status_code == got.status_code == 200, (path, body, got.text[:300])
        assert got.content.startswith(PNG_SIGNATURE)
        assert got.content == expected.content, f"{path} {body}: the bytes differ"
        assert got.headers["x-model"] == expected.headers["x-model"]


def test_healthcheck_reports_healthy(served: tuple[str, str]) -> None:
    name, _ = served
    # podman runs the image's HEALTHCHECK on a systemd timer where there is systemd; here it
    # is run once by hand, which records the result in the container's state the same way.
    check = podman("healthcheck", "run", name, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    status = podman("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
    assert status == "healthy"


def test_runs_as_non_root_on_a_read_only_root(served: tuple[str, str]) -> None:
    name, url = served
    config = json.loads(podman("inspect", name).stdout)[0]
    assert config["HostConfig"]["ReadonlyRootfs"] is True
    status = podman("exec", name, "cat", "/proc/1/status").stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert uids and all(uid == "10001" for uid in uids), status
    write = podman("exec", "--user", "0", name, "touch", "/app/x", check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr
    assert httpx.get(f"{url}/generate", params={"n": 2}, timeout=30).status_code == 200


def test_image_holds_only_what_serving_needs(image: str) -> None:
    dists = distributions(image)
    assert "onnxruntime-gpu" in dists and "onnxruntime" not in dists
    assert {"fastapi", "uvicorn", "pillow", "prometheus-client", "numpy"} <= dists
    assert not dists & {"torch", "torchvision", "pytest", "pip", "matplotlib"}
    assert "onnx" in dists  # service.graph_rewrite reads and rewrites the graph at load
    app = podman("run", "--rm", "--entrypoint", "ls", image, "/app").stdout.split()
    assert sorted(app) == ["ganserve", "models", "service"]
    no_training = podman(
        "run", "--rm", "--entrypoint", "python", image, "-c", "import training", check=False
    )
    assert no_training.returncode != 0 and "ModuleNotFoundError" in no_training.stderr


def test_cpu_image_is_smaller_and_answers_the_same(cpu_image: str, image: str) -> None:
    dists = distributions(cpu_image)
    assert "onnxruntime" in dists and "onnxruntime-gpu" not in dists
    sizes = {
        tag: int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout)
        for tag in (image, cpu_image)
    }
    assert sizes[cpu_image] < 0.75 * sizes[image], sizes
    body = {"n": 16, "seed": 5}
    with running_container(cpu_image, f"ganserve-test-cpu-{os.getpid()}", *LOCKED_DOWN) as url:
        cpu = httpx.post(f"{url}/generate", json=body, timeout=60)
        models = httpx.get(f"{url}/models", timeout=10).json()["models"]
        providers = {m["name"]: m["provider"] for m in models}
    with TestClient(create_app(Settings(models_dir=REPO / "models"))) as client:
        expected = client.post("/generate", json=body)
    assert cpu.status_code == 200 and cpu.content == expected.content
    assert set(providers) == set(shipped_models())
    assert set(providers.values()) == {"CPUExecutionProvider"}


def test_stop_drains_requests_in_flight(image: str, tmp_path: Path) -> None:
    name = f"ganserve-test-stop-{os.getpid()}"
    grace = 60
    # Large grids: each takes a while to make and encode, so they are in flight at SIGTERM.
    body = {"n": 256, "scale": 8, "columns": 16}
    with running_container(image, name, *LOCKED_DOWN) as url:

        def generate(seed: int) -> tuple[int, bytes, float]:
            r = httpx.post(f"{url}/generate", json=body | {"seed": seed}, timeout=grace)
            return r.status_code, r.content, time.monotonic()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(generate, seed) for seed in range(8)]
            time.sleep(0.5)  # every request sent and accepted
            stop_at = time.monotonic()
            stop = podman("stop", "--time", str(grace), name, timeout=grace + 30)
            stopped = time.monotonic() - stop_at
            answers = [f.result() for f in futures]
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
    assert stop.returncode == 0
    assert [status for status, _, _ in answers] == [200] * 8
    assert all(content.startswith(PNG_SIGNATURE) for _, content, _ in answers)
    # Some answers came after SIGTERM: they were drained, not finished before it.
    assert any(done > stop_at for _, _, done in answers)
    assert stopped < grace and state["ExitCode"] == 0, (stopped, state)
