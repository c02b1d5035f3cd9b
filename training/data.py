"""Training data held as one tensor on the training device.

``load_dataset("fashion-mnist" | "mnist" | "folder:PATH" | "fake", ...)`` returns an
``ImageData``: images float32 [N, C, H, W] in [-1, 1] (``Normalize((0.5,), (0.5,))``),
labels int64 [N] or None, and the class names. MNIST-size sets (47 MB as float32)
live on the device, so an epoch is a random permutation of indices, not a
DataLoader re-reading and re-transforming every image.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.data

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple(str(i) for i in range(10))

#: name -> (torchvision folder name, class names)
TORCHVISION_SETS = {
    "fashion-mnist": ("FashionMNIST", FASHION_MNIST_CLASSES),
    "mnist": ("MNIST", MNIST_CLASSES),
}
DATASET_CHOICES = ("fashion-mnist", "mnist", "folder:PATH", "fake")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"}
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
#: ``--data-mode auto`` streams a folder whose decoded images would take more than this.
STREAM_ABOVE_BYTES = 2 * 1024**3
DATA_MODES = ("auto", "memory", "stream")


class DataError(ValueError):
    """A data set that cannot be loaded, with a one-line reason."""


@dataclass
class ImageData:
    """A training set: uint8 pixels in memory, or a folder decoded batch by batch.

    ``images`` is uint8 [N, C, H, W] on the training device (4x less memory
    than float32), or None when ``streamed`` decodes the files on demand in
    ``workers`` DataLoader processes, so memory stays bounded whatever N is.
    """

    name: str
    images: torch.Tensor | None
    labels: torch.Tensor | None  # int64 [N], or None for an unlabelled folder
    class_names: tuple[str, ...] | None
    shape: tuple[int, int, int]  # (C, H, W) as the architecture wants it
    streamed: FolderImages | None = None
    workers: int = 2

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.shape

    @property
    def mode(self) -> str:
        return "stream" if self.streamed is not None else "memory"

    def __len__(self) -> int:
        if self.streamed is not None:
            return len(self.streamed)
        assert self.images is not None
        return int(self.images.shape[0])

    def first(self, n: int) -> ImageData:
        """The first ``n`` images (``--limit``)."""
        labels = None if self.labels is None else self.labels[:n]
        if self.streamed is not None:
            streamed = FolderImages(self.streamed.files[:n], self.shape)
            return replace(self, labels=labels, streamed=streamed)
        assert self.images is not None
        return replace(self, images=self.images[:n], labels=labels)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names) if self.class_names else None,
            "image_shape": list(self.image_shape),
            "size": len(self),
        }

    def batches(
        self, index_lists: list[torch.Tensor], device: torch.device | str
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(indices, float32 images in [-1, 1] on ``device``) for each list of indices."""
        if self.streamed is None:
            assert self.images is not None
            for idx in index_lists:
                idx = idx.to(self.images.device)
                yield idx, to_float(self.images[idx])
            return
        loader = torch.utils.data.DataLoader(
            self.streamed,
            batch_sampler=[idx.tolist() for idx in index_lists],
            num_workers=self.workers,
            pin_memory=torch.device(device).type == "cuda",
        )
        for idx, x in zip(index_lists, loader, strict=True):
            yield idx, to_float(x.to(device, non_blocking=True))


def default_data_dir() -> Path:
    """``$GANSERVE_DATA_DIR``, else ``../shared/data`` beside the project, else ``./data``."""
    env = os.environ.get("GANSERVE_DATA_DIR")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return shared if shared.is_dir() else Path("data")


def raw_files(split_train: bool) -> tuple[str, str]:
    prefix = "train" if split_train else "t10k"
    return (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")


def load_torchvision_split(
    name: str, data_dir: str | os.PathLike[str], *, train: bool = True, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """uint8 images [N, 28, 28], int64 labels [N] and class names of one official split."""
    import torchvision

    folder, classes = TORCHVISION_SETS[name]
    root = Path(data_dir)
    raw = root / folder / "raw"
    missing = [f for f in raw_files(train) if not (raw / f).is_file()]
    if missing and not download:
        raise DataError(
            f"{name} not found: {', '.join(missing)} missing in {raw} "
            "(pass --data-dir to a folder in torchvision's layout, or --download)"
        )
    cls = (
        torchvision.datasets.FashionMNIST if name == "fashion-mnist" else torchvision.datasets.MNIST
    )
    try:
        ds = cls(str(root), train=train, download=download)
    except Exception as exc:  # corrupt files, failed download
        raise DataError(f"cannot read {name} from {raw}: {exc}") from None
    return ds.data, ds.targets.long(), classes


def _fit_shape(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Resize [N, C, H, W] to the architecture's (C, H, W): bilinear size, repeated channels."""
    c, h, w = shape
    if x.shape[2:] != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    if x.shape[1] != c:
        if x.shape[1] == 1:
            x = x.repeat(1, c, 1, 1)
        elif c == 1:
            x = x.mean(dim=1, keepdim=True)
        else:
            raise DataError(f"cannot turn {x.shape[1]}-channel images into {c} channels")
    return x


def _folder_files(path: Path) -> tuple[list[tuple[Path, int]], tuple[str, ...] | None]:
    """The image files of a folder with their class index (-1 unlabelled), and the classes."""
    if not path.is_dir():
        raise DataError(f"image folder not found: {path}")
    subdirs = sorted(d for d in path.iterdir() if d.is_dir())
    labelled = [d for d in subdirs if any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir())]
    files: list[tuple[Path, int]] = []
    classes: tuple[str, ...] | None = None
    if len(labelled) >= 2:  # ImageFolder layout: one subfolder per class
        classes = tuple(d.name for d in labelled)
        for i, d in enumerate(labelled):
            files += [(f, i) for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    else:
        root = labelled[0] if labelled else path
        files = [(f, -1) for f in sorted(root.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}")
    return files, classes


def _read_image(path: Path) -> tuple[np.ndarray, bool]:
    """(uint8 [H, W, C], is colour) of one file; alpha is composited on white."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            colour = im.mode not in GRAY_MODES
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, rgba)
            arr = np.asarray(im.convert("RGB" if colour else "L"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    return (arr if colour else arr[..., None]), colour


def read_folder(path: Path) -> np.ndarray:
    """Every image of a folder as uint8 [N, H, W, C] (C = 1 or 3), as they are on disk.

    One size and one kind (grayscale or colour) throughout, or a ``DataError``
    naming the first file that differs.
    """
    return _read_files(_folder_files(path)[0])


def _check_same(
    first: tuple[Path, tuple[int, int], bool], f: Path, size: tuple[int, int], colour: bool
) -> None:
    if size != first[1]:
        (w, h), (w0, h0) = size, first[1]
        raise DataError(
            f"images of different sizes in one folder: {f} is {w}x{h}, "
            f"{first[0]} is {w0}x{h0} (resize them to one size first)"
        )
    if colour != first[2]:
        kinds = {True: "colour", False: "grayscale"}
        raise DataError(
            f"grayscale and colour images in one folder: {f} is {kinds[colour]}, "
            f"{first[0]} is {kinds[first[2]]} (convert them to one kind first)"
        )


def _read_files(files: list[tuple[Path, int]]) -> np.ndarray:
    """The files decoded into one preallocated uint8 [N, H, W, C] array."""
    out: np.ndarray | None = None
    first: tuple[Path, tuple[int, int], bool] | None = None
    for i, (f, _) in enumerate(files):
        arr, colour = _read_image(f)
        size = (arr.shape[1], arr.shape[0])
        if first is None:
            first = (f, size, colour)
            out = np.empty((len(files), *arr.shape), dtype=np.uint8)
        else:
            _check_same(first, f, size, colour)
        assert out is not None
        out[i] = arr
    assert out is not None
    return out


def _probe_files(files: list[tuple[Path, int]]) -> tuple[tuple[int, int], bool]:
    """Check every file's header (size, grayscale or colour) without decoding the pixels."""
    from PIL import Image

    first: tuple[Path, tuple[int, int], bool] | None = None
    for f, _ in files:
        try:
            with Image.open(f) as im:
                size, colour = im.size, im.mode not in GRAY_MODES
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"cannot read image {f}: {exc}") from None
        if first is None:
            first = (f, size, colour)
        else:
            _check_same(first, f, size, colour)
    assert first is not None
    return first[1], first[2]


def _fit_uint8(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 [N, C, H, W] at the architecture's (C, H, W): resized and rounded where it differs."""
    c, h, w = shape
    if x.shape[1:] == (c, h, w):
        return x.contiguous()
    y = _fit_shape(x.float(), shape)
    return y.round_().clamp_(0, 255).to(torch.uint8).contiguous()


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [-1, 1] (``Normalize((0.5,), (0.5,))``)."""
    return x.float().div_(127.5).sub_(1.0)


class FolderImages(torch.utils.data.Dataset[torch.Tensor]):
    """The images of a folder decoded on demand (by DataLoader workers): uint8 [C, H, W]."""

    def __init__(self, files: list[Path], shape: tuple[int, int, int]) -> None:
        self.files, self.shape = files, shape

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        arr, _ = _read_image(self.files[i])
        return _fit_uint8(torch.from_numpy(arr[None]).permute(0, 3, 1, 2), self.shape)[0]


def _load_folder(path: Path, shape: tuple[int, int, int], mode: str, workers: int) -> ImageData:
    files, classes = _folder_files(path)
    labels = torch.tensor([i for _, i in files]) if classes else None
    name = f"folder:{path}"
    if mode == "auto":
        (w, h), colour = _probe_files(files[:1])
        mode = (
            "stream" if len(files) * h * w * (3 if colour else 1) > STREAM_ABOVE_BYTES else "memory"
        )
    if mode == "stream":
        _probe_files(files)
        streamed = FolderImages([f for f, _ in files], shape)
        return ImageData(name, None, labels, classes, shape, streamed, workers)
    images = _fit_uint8(torch.from_numpy(_read_files(files)).permute(0, 3, 1, 2), shape)
    return ImageData(name, images, labels, classes, shape)


def load_dataset(
    spec: str,
    *,
    image_shape: tuple[int, int, int],
    data_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str = "cpu",
    download: bool = False,
    limit: int | None = None,
    train: bool = True,
    fake_size: int = 512,
    seed: int = 0,
    mode: str = "auto",
    workers: int = 2,
) -> ImageData:
    """Load ``spec`` at ``image_shape``: uint8 on ``device``, or streamed from a folder.

    ``mode`` is ``memory``, ``stream`` (folders only) or ``auto`` (stream a
    folder past ``STREAM_ABOVE_BYTES``); ``workers`` decode a streamed folder.
    """
    if mode not in DATA_MODES:
        raise DataError(f"unknown data mode {mode!r}; choose one of {', '.join(DATA_MODES)}")
    if spec.startswith("folder:"):
        data = _load_folder(Path(spec[len("folder:") :]), image_shape, mode, workers)
        if limit:
            data = data.first(limit)
        if data.images is not None:
            data.images = data.images.to(device)
        if data.labels is not None:
            data.labels = data.labels.to(device)
        return data
    if mode == "stream":
        raise DataError(f"--data-mode stream reads image folders; {spec} is held in memory")
    if spec in TORCHVISION_SETS:
        raw, labels, classes = load_torchvision_split(
            spec, data_dir or default_data_dir(), train=train, download=download
        )
        if limit:
            raw, labels = raw[:limit], labels[:limit]
        images = raw.unsqueeze(1)
        names: tuple[str, ...] | None = classes
        lab: torch.Tensor | None = labels
    elif spec == "fake":  # deterministic random images for tests: no download, no files
        g = torch.Generator().manual_seed(seed)
        n = limit or fake_size
        images = torch.randint(0, 256, (n, *image_shape), generator=g, dtype=torch.uint8)
        lab = torch.randint(0, 10, (n,), generator=g)
        names = tuple(f"class {i}" for i in range(10))
    else:
        raise DataError(f"unknown dataset {spec!r}; choose one of {', '.join(DATASET_CHOICES)}")
    images = _fit_uint8(images, image_shape)
    return ImageData(
        name=spec,
        images=images.to(device),
        labels=None if lab is None else lab.to(device),
        class_names=names,
        shape=image_shape,
    )
