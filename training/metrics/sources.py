"""Image sources for evaluation: real splits, checkpoints and exported ONNX models.

Every source hands out uint8 images [N, H, W, C] (the exported model's own
output layout) with their labels: the true labels of a real split, the
conditioning labels of a conditional generator, or ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganserve.card import CardError, ModelCard, card_file
from ganserve.latent import make_latents
from training.data import TORCHVISION_SETS
from training.data import default_data_dir as default_data_dir  # the evaluation's too
from training.metrics.errors import MetricError


@dataclass(frozen=True)
class DatasetInfo:
    """A data set in torchvision's layout."""

    name: str
    folder: str  # torchvision's folder under the data dir
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (C, H, W)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


#: The torchvision data sets of ``training.data`` (the one registry of them), all 1x28x28.
DATASETS: dict[str, DatasetInfo] = {
    name: DatasetInfo(name, folder, classes, (1, 28, 28))
    for name, (folder, classes) in TORCHVISION_SETS.items()
}
SPLIT_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}


def get_dataset(name: str) -> DatasetInfo:
    """Look a data set up by name; ``FashionMNIST``, ``fashion_mnist`` and the like are accepted."""
    key = str(name).lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist"}.get(key, key)
    if key not in DATASETS:
        raise MetricError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[key]


@dataclass
class ImageSet:
    """uint8 images [N, H, W, C], labels [N] (int64) or None, and what they are."""

    images: np.ndarray
    labels: np.ndarray | None
    description: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)


def load_split(
    dataset: str, data_dir: str | os.PathLike[str], split: str, n: int | None = None
) -> ImageSet:
    """The first ``n`` images (all when ``None``) of a real split, with their labels."""
    import torchvision  # training-only dependency, imported on use

    info = get_dataset(dataset)
    if split not in SPLIT_FILES:
        raise MetricError(f"unknown split {split!r}; choose train or test")
    data_dir = Path(data_dir)
    cls = {"fashion-mnist": torchvision.datasets.FashionMNIST, "mnist": torchvision.datasets.MNIST}
    try:
        ds = cls[info.name](str(data_dir), train=split == "train", download=False)
    except RuntimeError:
        expected = data_dir / info.folder / "raw" / SPLIT_FILES[split]
        raise MetricError(
            f"{info.name} {split} split not found: expected {expected} "
            "(torchvision layout; pass --data-dir)"
        ) from None
    images = ds.data.numpy()
    labels = ds.targets.numpy().astype(np.int64)
    total = len(images)
    if n is not None:
        if n > total:
            raise MetricError(f"{info.name} {split} split has {total} images, {n} asked for")
        images, labels = images[:n], labels[:n]
    return ImageSet(
        np.ascontiguousarray(images[..., None]),
        labels,
        {
            "kind": "real",
            "dataset": info.name,
            "split": split,
            "count": len(images),
            "selection": f"the first {len(images)} of {total} images",
        },
    )


# -- generators ----------------------------------------------------------------------


class Generator:
    """A trained generator: ``generate(z, labels)`` -> uint8 [N, H, W, C]."""

    kind: str
    path: Path
    latent_dim: int
    num_classes: int | None  # None: unconditional
    dataset: str | None
    name: str

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    def generate(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "name": self.name,
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "dataset": self.dataset,
        }


class CheckpointGenerator(Generator):
    """G rebuilt from a ganserve checkpoint (EMA weights when present), run with torch."""

    kind = "checkpoint"

    def __init__(self, path: Path, device: str | None = None) -> None:
        import torch

        from training.checkpoint import CheckpointError, load_generator
        from training.metrics.inception import resolve_device

        try:
            g, ckpt = load_generator(path)
        except CheckpointError as exc:
            raise MetricError(str(exc)) from None
        self.path = path
        self.device = resolve_device(device)
        self.g = g.to(self.device)
        self.latent_dim = int(g.latent_dim)
        self.num_classes = int(g.num_classes) if getattr(g, "num_classes", None) else None
        ds = ckpt.get("dataset") or {}
        self.dataset = ds.get("name") if isinstance(ds, dict) else ds
        self.name = f"{ckpt['arch']}@epoch{ckpt.get('epoch')}"
        self.arch = ckpt["arch"]
        self.epoch = ckpt.get("epoch")
        # where in its run the checkpoint was taken: thousands of images, training CPU time
        stats = ckpt.get("stats") or {}
        batch = (ckpt.get("options") or {}).get("batch_size")
        self.kimg = round(ckpt["step"] * batch / 1000, 1) if "step" in ckpt and batch else None
        cpu = stats.get("cpu_seconds")
        self.cpu_minutes = None if cpu is None else round(cpu / 60, 2)
        self._torch = torch

    def generate(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            zt = torch.from_numpy(z).to(self.device)
            if self.conditional:
                x = self.g(zt, torch.from_numpy(labels).to(self.device))
            else:
                x = self.g(zt)
            x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            return x.permute(0, 2, 3, 1).cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "arch": self.arch,
            "epoch": self.epoch,
            "kimg": self.kimg,
            "cpu_minutes": self.cpu_minutes,
        }


class OnnxGenerator(Generator):
    """An exported ``model.onnx`` + ``card.json`` directory, run with ONNX Runtime."""

    kind = "onnx"

    def __init__(self, model_dir: Path, device: str | None = None) -> None:
        import onnxruntime as ort

        self.path = model_dir
        try:
            self.card = ModelCard.load(model_dir)
        except CardError as exc:
            raise MetricError(f"{model_dir} is not a model dir: {exc}") from None
        self.card_path = card_file(model_dir)
        self.model_path = self.card.model_path(model_dir)
        if not self.model_path.is_file():
            raise MetricError(f"{model_dir} is not a model dir: {self.model_path.name} is missing")
        # onnxruntime-gpu lists CUDA even without a GPU (and logs errors when it fails), so
        # ask for it only where torch sees a CUDA device.
        want_cuda = (
            device in (None, "auto", "cuda")
            and "CUDAExecutionProvider" in ort.get_available_providers()
            and _cuda_available()
        )
        providers = ["CUDAExecutionProvider"] if want_cuda else []
        providers.append("CPUExecutionProvider")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # a failed CUDA provider falls back to CPU quietly
        try:
            self.session = ort.InferenceSession(str(self.model_path), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MetricError(f"{self.model_path} does not load: {first}") from None
        self.providers = self.session.get_providers()
        inputs = {i.name: i for i in self.session.get_inputs()}
        if "z" not in inputs:
            raise MetricError(f"{self.model_path} has no input 'z' (inputs: {', '.join(inputs)})")
        latent = self.card.latent_dim or inputs["z"].shape[-1]
        if not isinstance(latent, int):
            raise MetricError(f"{self.card_path} gives no latent_dim")
        self.latent_dim = latent
        if "label" in inputs:
            classes = self.card.num_classes or len(self.card.class_names or [])
            if not classes:
                raise MetricError(f"{self.card_path} gives no num_classes for a conditional model")
            self.num_classes = classes
        else:
            self.num_classes = None
        self.dataset = self.card.dataset
        self.name = self.card.name

    def generate(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        feed: dict[str, np.ndarray] = {"z": z.astype(np.float32)}
        if self.conditional:
            feed["label"] = labels.astype(np.int64)
        (out,) = self.session.run(["image"], feed)
        if out.dtype != np.uint8 or out.ndim != 4:
            raise MetricError(f"{self.model_path} returned {out.dtype} {out.shape}, not uint8 NHWC")
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "providers": self.providers}


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def open_generator(source: str | os.PathLike[str], device: str | None = None) -> Generator:
    """A checkpoint file, or a model dir (or its ``model.onnx``)."""
    path = Path(source)
    if path.is_dir():
        return OnnxGenerator(path, device)
    if path.is_file() and path.suffix == ".onnx":
        # model.onnx beside its card, or one level down (Triton's <model>/1/model.onnx)
        up = path.parent if card_file(path.parent).is_file() else path.parent.parent
        return OnnxGenerator(up if card_file(up).is_file() else path.parent, device)
    if path.is_file():
        return CheckpointGenerator(path, device)
    raise MetricError(f"source not found: {path} (a checkpoint file or a model dir)")


def generated_labels(n: int, num_classes: int | None) -> np.ndarray | None:
    """Labels cycle through the classes: 0, 1, ..., K-1, 0, 1, ... (balanced)."""
    return None if num_classes is None else np.arange(n, dtype=np.int64) % num_classes


def generate(
    gen: Generator,
    n: int,
    seed: int = 0,
    batch_size: int = 250,
    progress: Callable[[int, int], None] | None = None,
) -> ImageSet:
    """``n`` images from the latents ``make_latents(seed, n, latent_dim)``, labels cycled."""
    z = make_latents(seed, n, gen.latent_dim)
    labels = generated_labels(n, gen.num_classes)
    parts = []
    for i in range(0, n, batch_size):
        parts.append(
            gen.generate(
                z[i : i + batch_size], None if labels is None else labels[i : i + batch_size]
            )
        )
        if progress is not None:
            progress(min(i + batch_size, n), n)
    images = np.concatenate(parts) if parts else np.zeros((0, 1, 1, 1), np.uint8)
    return ImageSet(
        images,
        labels,
        {
            "kind": "generated",
            "count": n,
            "seed": seed,
            "latents": f"ganserve.latent.make_latents({seed}, {n}, {gen.latent_dim})",
            "labels": None if labels is None else f"i % {gen.num_classes}",
        },
    )


def load_folder_images(path: str | os.PathLike[str]) -> ImageSet:
    """Every image of an image folder (``folder:PATH`` data sets) as it trains: uint8 NHWC."""
    from training.data import DataError, read_folder

    try:
        images = read_folder(Path(path))
    except DataError as exc:
        raise MetricError(str(exc)) from None
    name = Path(path).resolve().name
    return ImageSet(
        images,
        None,
        {
            "kind": "real",
            "dataset": f"folder-{name}",
            "split": "all",
            "count": len(images),
            "selection": f"all {len(images)} images of the folder {name}",
        },
    )


def load_reference(dataset: str, data_dir: str | os.PathLike[str] | None) -> ImageSet:
    """The reference images of a data set: the 10k test split, or a whole image folder."""
    if dataset.startswith("folder:"):
        return load_folder_images(dataset[len("folder:") :])
    return load_split(dataset, data_dir or default_data_dir(), "test")
