"""The GPU measurements that ``bench/device_check.sh`` runs, and the report step that reads them.

    python -m bench.device ort   --out DIR/ort.json    # CUDA provider active; ORT CUDA vs CPU
    python -m bench.device http  --out DIR/http.json   # ganserve on CUDA under load vs in-process
    python -m bench.device train --out DIR/train.md    # our training loop vs the reports' on CUDA
    python -m bench.device report DIR                  # DIR's results -> docs/benchmarks.md
    python -m bench.device wheels [--dest .whl]        # wheels for a GPU machine without a registry

``ort``: the default unconditional model on the CUDA provider, checked to be the
provider in use (not a silent CPU fallback) and to draw the CPU's pixels; then
images/s at batch 1..4096 for the CPU provider, CUDA fp32 and CUDA fp16 (the
graph converted with onnxruntime's float16 tool, inputs and outputs kept), each
CUDA run with IO binding (latents and images stay on the device). ``--cpu-only``
runs the same code on the CPU provider alone (for tests on machines without a GPU).

``http``: ganserve with ``GANSERVE_PROVIDER=cuda``, 32 concurrent 64-image and
1-image requests (wrk when installed, else the bench's httpx load generator),
against the in-process limit on CUDA (``bench.inprocess``).

``train``: ``bench.train_bench`` on CUDA (synthetic Fashion-MNIST-shaped data when
the real files are not there: the loops' speed does not depend on pixel values).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import figure as _f

REPO = Path(__file__).resolve().parent.parent
SECTION = "device-check"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
BATCHES = (1, 4, 16, 64, 256, 1024, 4096)


def default_model_dir() -> Path:
    from bench.run import _cards, _default_model

    return REPO / "models" / _default_model(_cards(REPO / "models"))


def _timed(fn: Any, images: int, seconds: float) -> float:
    """Images/s of ``fn`` (one call makes ``images``), after one warm-up call."""
    fn()
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or done == 0:
        fn()
        done += images
    return done / elapsed


def fp16_model(path: Path) -> bytes:
    """The graph in float16 (inputs and outputs kept), by onnxruntime's converter."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    return model.SerializeToString()


def _session(model: bytes | str, provider: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers: list[Any] = [(CUDA, {"device_id": 0}), CPU] if provider == CUDA else [CPU]
    return ort.InferenceSession(model, sess_options=options, providers=providers)


def _runner(session: Any, z: np.ndarray, io_binding: bool) -> Any:
    """A call that runs the session on z: plain, or with inputs and outputs on the device."""
    import onnxruntime as ort

    if not io_binding:
        return lambda: session.run(["image"], {"z": z})
    binding = session.io_binding()
    binding.bind_ortvalue_input("z", ort.OrtValue.ortvalue_from_numpy(z, "cuda", 0))
    binding.bind_output("image", "cuda", 0)

    def run() -> None:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return run


def measure_ort(
    model_dir: Path, batches: Sequence[int], seconds: float, cpu_only: bool, cpu_max: int = 1024
) -> dict[str, Any]:
    """The provider check and the images/s table."""
    import onnxruntime as ort

    path = model_dir / "model.onnx"
    card = json.loads((model_dir / "card.json").read_text())
    out: dict[str, Any] = {
        "model": card["name"],
        "onnxruntime": ort.__version__,
        "available_providers": ort.get_available_providers(),
        "rows": [],
    }
    sessions = {"cpu": _session(str(path), CPU)}
    if not cpu_only:
        sessions["cuda-fp32"] = _session(str(path), CUDA)
        sessions["cuda-fp16"] = _session(fp16_model(path), CUDA)
        out["providers_in_use"] = sessions["cuda-fp32"].get_providers()
        out["cuda_active"] = sessions["cuda-fp32"].get_providers()[0] == CUDA
        z = np.random.default_rng(0).standard_normal((64, card["latent_dim"]), dtype=np.float32)
        ref = sessions["cpu"].run(["image"], {"z": z})[0].astype(int)
        for name in ("cuda-fp32", "cuda-fp16"):
            got = sessions[name].run(["image"], {"z": z})[0].astype(int)
            out[f"max_pixel_diff_{name}"] = int(np.abs(got - ref).max())
        if not out["cuda_active"]:
            return out  # a CPU fallback: the CUDA figures would be the CPU's
    for batch in batches:
        z = np.random.default_rng(batch).standard_normal(
            (batch, card["latent_dim"]), dtype=np.float32
        )
        row: dict[str, Any] = {"batch": batch}
        for name, session in sessions.items():
            if name == "cpu" and batch > cpu_max:
                continue
            run = _runner(session, z, io_binding=name != "cpu")
            row[name] = round(_timed(run, batch, seconds), 1)
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
    return out


def _ganserve_env() -> dict[str, str]:
    return {"GANSERVE_PROVIDER": "cuda"}


def measure_http(model_dir: Path, seconds: float, connections: int) -> dict[str, Any]:
    """ganserve on CUDA under load, and the in-process limit on CUDA, per request shape."""
    from bench import servers
    from bench.inprocess import sweep
    from bench.wrk import run_wrk, wrk_binary

    out: dict[str, Any] = {"connections": connections, "seconds": seconds, "rows": []}
    out["loadgen"] = "wrk" if wrk_binary() else "httpx (bench.loadgen)"
    with tempfile.TemporaryDirectory(prefix="ganserve-device-") as tmp:
        models = Path(tmp) / "models"
        shutil.copytree(model_dir, models / model_dir.name)
        log = Path(tmp) / "ganserve.log"
        with servers.ganserve(models, log, env=_ganserve_env()) as g:
            assert g.process is not None
            ready = json.loads(_get(g.url + f"/models/{model_dir.name}"))
            out["provider"] = ready.get("provider")
            for images in (64, 1):
                body = f'{{"model": "{model_dir.name}", "n": {images}, "seed": {{seed}}}}'
                before = servers.server_cpu_s(g.process.pid)
                if wrk_binary():
                    run_wrk(g.url, "/generate", body, connections=connections, duration_s=3)
                    before = servers.server_cpu_s(g.process.pid)
                    r = run_wrk(
                        g.url,
                        "/generate",
                        body,
                        connections=connections,
                        duration_s=seconds,
                        images_per_request=images,
                        threads=4,
                    )
                    ips, p50, p99, errors = (
                        r.images_per_s,
                        r.latency_ms["50"],
                        r.latency_ms["99"],
                        r.error_count,
                    )
                    ok_images = r.ok * images
                else:
                    m = _httpx_cell(g.url, model_dir.name, images, connections, seconds)
                    ips, p50, p99, errors = (
                        m.images_per_s,
                        m.percentile(50) * 1000,
                        (m.percentile(99) * 1000),
                        m.error_count,
                    )
                    ok_images = m.ok_total * images
                cpu = servers.server_cpu_s(g.process.pid) - before
                limit = max(
                    sweep(model_dir, images, LIMIT_BATCHES, window_s=1.0, max_windows=3),
                    key=lambda r: r.images_per_s,
                )
                row = {
                    "images_per_request": images,
                    "images_per_s": round(ips, 1),
                    "p50_ms": round(p50, 1),
                    "p99_ms": round(p99, 1),
                    "errors": errors,
                    "server_cpu_ms_per_image": round(cpu * 1000 / max(ok_images, 1), 3),
                    "inprocess_images_per_s": round(limit.images_per_s, 1),
                    "inprocess_batch": limit.batch,
                    "inprocess_provider": limit.provider,
                }
                out["rows"].append(row)
                print(json.dumps(row), flush=True)
    return out


LIMIT_BATCHES = (64, 256, 1024)  # in-process batch sizes (each a multiple of 1 and of 64)


def _get(url: str) -> str:
    import httpx

    return httpx.get(url, timeout=30, trust_env=False).text


def _httpx_cell(url: str, model: str, images: int, connections: int, seconds: float) -> Any:
    from bench.loadgen import Options, RequestSpec, closed_loop

    spec = RequestSpec("POST", "/generate", json={"model": model, "n": images}, images=images)
    options = Options(warmup_s=2.0, window_s=seconds / 3, max_windows=3, max_seconds=seconds + 20)
    return asyncio.run(closed_loop(url, spec, connections, options))


def synthetic_fashion_mnist(root: Path, n_train: int = 60000, n_test: int = 10000) -> Path:
    """Random images and labels in Fashion-MNIST's idx files (torchvision's raw layout)."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + labels.tobytes()
        )
    return root


def measure_train(steps: int, rounds: int) -> str:
    """bench.train_bench on CUDA; synthetic data when Fashion-MNIST is not on this machine."""
    from training.data import default_data_dir

    note = ""
    if not (default_data_dir() / "FashionMNIST" / "raw").is_dir():
        tmp = Path(tempfile.mkdtemp(prefix="ganserve-data-"))
        os.environ["GANSERVE_DATA_DIR"] = str(synthetic_fashion_mnist(tmp))
        note = (
            "\n\nData: synthetic Fashion-MNIST-shaped files (60,000 random 28x28 images): the "
            "real files were not on the GPU machine, and a loop's speed does not depend on "
            "pixel values."
        )
    from bench.train_bench import run

    return run(steps=steps, rounds=rounds, device_name="cuda") + note


# -- the report step -----------------------------------------------------------------------


def report(results: Path) -> str:
    """The device-check section of docs/benchmarks.md from a results folder."""
    meta = _load(results / "meta.json") or {}
    out = [
        "## GPU: ONNX Runtime on CUDA, ganserve on CUDA, training on CUDA",
        "",
        f"`bench/device_check.sh` on {meta.get('gpu', 'an NVIDIA GPU')} "
        f"({meta.get('cpus', '?')} CPU cores), {meta.get('date', '')}; "
        f"{meta.get('seconds', '?')} s in all.",
    ]
    ort_ = _load(results / "ort.json")
    if ort_:
        active = ort_.get("cuda_active")
        out += [
            "",
            "### ONNX Runtime: CUDA vs CPU",
            "",
            f"Model `{ort_['model']}`, onnxruntime {ort_['onnxruntime']}; providers in use: "
            f"{', '.join(ort_.get('providers_in_use', []))} (CUDA active: "
            f"{'**yes**' if active else '**no, a CPU fallback**'}); largest pixel difference "
            f"from the CPU: fp32 {ort_.get('max_pixel_diff_cuda-fp32', '–')}, fp16 "
            f"{ort_.get('max_pixel_diff_cuda-fp16', '–')} (of 255). CUDA runs with IO binding "
            "(latents and images on the device).",
            "",
            "| batch | CPU images/s | CUDA fp32 images/s | CUDA fp16 images/s | fp16 / CPU |",
            "|--:|--:|--:|--:|--:|",
        ]
        for row in ort_.get("rows", []):
            cpu, fp16 = row.get("cpu"), row.get("cuda-fp16")
            ratio = f"{fp16 / cpu:,.1f}x" if cpu and fp16 else "–"
            out.append(
                f"| {row['batch']} | {_f(cpu)} | {_f(row.get('cuda-fp32'))} | {_f(fp16)} | "
                f"{ratio} |"
            )
    http = _load(results / "http.json")
    if http:
        out += [
            "",
            "### ganserve on CUDA under load",
            "",
            f"`python -m service` with `GANSERVE_PROVIDER=cuda` (model provider: "
            f"{http.get('provider')}), {http['connections']} connections, {http['seconds']:g} s "
            f"per cell ({http['loadgen']}); the in-process limit: `bench/inprocess.py` on CUDA "
            "at its best batch.",
            "",
            "| images/request | images/s | p50 / p99 ms | errors | server CPU ms/image "
            "| in-process limit images/s (batch) | ganserve / limit |",
            "|--:|--:|---|--:|--:|--:|--:|",
        ]
        for row in http.get("rows", []):
            limit = row["inprocess_images_per_s"]
            share = f"{row['images_per_s'] / limit:.0%}" if limit else "–"
            out.append(
                f"| {row['images_per_request']} | {_f(row['images_per_s'])} | "
                f"{_f(row['p50_ms'])} / {_f(row['p99_ms'])} | {row['errors']} | "
                f"{_f(row['server_cpu_ms_per_image'], 3)} | {_f(limit)} "
                f"({row['inprocess_batch']}) | {share} |"
            )
    train = results / "train.md"
    if train.is_file():
        out += ["", "### " + train.read_text().strip().removeprefix("## ")]
    for name in ("install", "ort", "http", "train"):
        err = results / f"{name}.error"
        if err.is_file():
            out += ["", f"Step `{name}` failed: {err.read_text().strip().splitlines()[-1]}"]
    return "\n".join(out) + "\n"


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def wheels(dest: Path, python_version: str) -> int:
    """Download the wheels the check installs, for a GPU machine that reaches no registry."""
    cmd = [sys.executable, "-m", "pip", "download", "-d", str(dest), "--only-binary=:all:"]
    cmd += ["--python-version", python_version, "--implementation", "cp"]
    for tag in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"):
        cmd += ["--platform", tag]
    cmd += requirements()
    return subprocess.run(cmd).returncode


def requirements() -> list[str]:
    """What the check installs: the serve extra of pyproject.toml (onnxruntime-gpu, FastAPI,
    uvicorn, ...) and httpx and onnx (the load generator, the fp16 conversion)."""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    serve = list(extras["optional-dependencies"]["serve"])
    return serve + ["httpx>=0.27,<1", "onnx>=1.16,<2"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.device", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    s = sub.add_parser("ort")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    s.add_argument("--seconds", type=float, default=1.0)
    s.add_argument("--cpu-only", action="store_true")
    s = sub.add_parser("http")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seconds", type=float, default=20.0)
    s.add_argument("--connections", type=int, default=32)
    s = sub.add_parser("train")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--rounds", type=int, default=3)
    s = sub.add_parser("report")
    s.add_argument("results", type=Path)
    s.add_argument("--no-write", action="store_true")
    s = sub.add_parser("wheels")
    s.add_argument("--dest", type=Path, default=REPO / ".whl")
    s.add_argument("--python-version", default="3.12")
    sub.add_parser("requirements")
    s = sub.add_parser("meta")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seconds", type=int, required=True)
    args = p.parse_args(argv)
    if args.step == "meta":
        args.out.write_text(json.dumps({**machine_meta(), "seconds": args.seconds}))
        return 0
    if args.step == "requirements":
        print("\n".join(requirements()))
        return 0
    if args.step == "wheels":
        return wheels(args.dest, args.python_version)
    if args.step == "report":
        if not args.results.is_dir():
            print(f"error: no results folder {args.results}", file=sys.stderr)
            return 2
        md = report(args.results)
        print(md)
        if not args.no_write:
            from bench.report import write_section

            print(f"wrote {write_section(SECTION, md)} (section {SECTION})")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.step == "ort":
        result = measure_ort(default_model_dir(), args.batches, args.seconds, args.cpu_only)
        args.out.write_text(json.dumps(result, indent=1))
        return 0 if args.cpu_only or result.get("cuda_active") else 1
    if args.step == "http":
        result = measure_http(default_model_dir(), args.seconds, args.connections)
        args.out.write_text(json.dumps(result, indent=1))
        return 0
    args.out.write_text(measure_train(args.steps, args.rounds))
    return 0


def machine_meta() -> dict[str, Any]:
    """What the report says about the machine (written by device_check.sh)."""
    gpu = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "gpu": gpu or "unknown GPU",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


if __name__ == "__main__":
    sys.exit(main())
