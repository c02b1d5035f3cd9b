"""bench/device_check.sh on a machine without a GPU, and the pieces of it that run on a CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import device
from bench.run import REPO

SCRIPT = REPO / "bench" / "device_check.sh"


def _run(path_dirs: list[Path]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"])}
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )


def _fake_nvidia_smi(folder: Path, script: str) -> Path:
    folder.mkdir()
    tool = folder / "nvidia-smi"
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    return folder


def _assert_no_gpu_line(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "device_check: no NVIDIA GPU on this machine (nvidia-smi lists none); nothing measured"
    ]
    assert done.stderr == ""


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi: not the CPU case"
)
def test_without_a_gpu_it_says_so_in_one_line_and_exits_cleanly() -> None:
    _assert_no_gpu_line(_run([]))
    assert not (REPO / "bench" / ".venvs" / "device-site").exists()  # installed nothing


@pytest.mark.parametrize(
    "script", ["exit 9\n", 'echo "No devices were found"; exit 6\n'], ids=["fails", "no-devices"]
)
def test_an_nvidia_smi_that_finds_no_gpu_is_no_gpu(tmp_path: Path, script: str) -> None:
    _assert_no_gpu_line(_run([_fake_nvidia_smi(tmp_path / "bin", script)]))


def test_the_ort_step_and_the_report_on_a_cpu(tmp_path: Path) -> None:
    out = tmp_path / "results"
    assert (
        device.main(
            [
                "ort",
                "--cpu-only",
                "--batches",
                "1",
                "4",
                "--seconds",
                "0.05",
                "--out",
                str(out / "ort.json"),
            ]
        )
        == 0
    )
    result = json.loads((out / "ort.json").read_text())
    assert [r["batch"] for r in result["rows"]] == [1, 4]
    assert all(r["cpu"] > 0 for r in result["rows"])
    # what the GPU machine would add: the CUDA columns, the HTTP table, a failed step
    result.update(providers_in_use=["CUDAExecutionProvider"], cuda_active=True)
    for r in result["rows"]:
        r.update({"cuda-fp32": r["cpu"] * 10, "cuda-fp16": r["cpu"] * 20})
    (out / "ort.json").write_text(json.dumps(result))
    http = {
        "connections": 32,
        "seconds": 20,
        "loadgen": "wrk",
        "provider": "CUDAExecutionProvider",
        "rows": [
            {
                "images_per_request": 64,
                "images_per_s": 30000.0,
                "p50_ms": 60.0,
                "p99_ms": 90.0,
                "errors": 0,
                "server_cpu_ms_per_image": 0.05,
                "inprocess_images_per_s": 40000.0,
                "inprocess_batch": 1024,
                "inprocess_provider": "CUDAExecutionProvider",
            }
        ],
    }
    (out / "http.json").write_text(json.dumps(http))
    (out / "train.error").write_text("Traceback ...\nRuntimeError: no CUDA\n")
    md = device.report(out)
    assert "CUDA active: **yes**" in md
    assert "| 4 |" in md and "20.0x |" in md
    assert "| 64 | 30,000 | 60 / 90 | 0 | 0.050 | 40,000 (1024) | 75% |" in md
    assert "Step `train` failed: RuntimeError: no CUDA" in md


def test_synthetic_data_loads_as_fashion_mnist(tmp_path: Path) -> None:
    from torchvision.datasets import FashionMNIST

    device.synthetic_fashion_mnist(tmp_path, n_train=50, n_test=10)
    ds = FashionMNIST(str(tmp_path), train=True)
    assert len(ds) == 50 and ds[0][0].size == (28, 28)
    assert len(FashionMNIST(str(tmp_path), train=False)) == 10


def test_the_requirements_come_from_the_serve_extra() -> None:
    reqs = device.requirements()
    assert any(r.startswith("onnxruntime-gpu") for r in reqs)
    assert any(r.startswith("fastapi") for r in reqs) and any(r.startswith("httpx") for r in reqs)
