"""Training data held as one tensor on the training device.

``load_dataset("fashion-mnist" | "mnist" | "folder:PATH" | "fake", ...)`` returns an
``ImageData``: images float32 [N, C, H, W] in [-1, 1] (``Normalize((0.5,), (0.5,))``),
labels int64 [N] or None, and the class names. MNIST-size sets (47 MB as float32)
live on the device, so an epoch is a random permutation of indices, not a
DataLoader re-reading and re-transforming every image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

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


class DataError(ValueError):
    """A data set that cannot be loaded, with a one-line reason."""


@dataclass
class ImageData:
    name: str
    images: torch.Tensor  # float32 [N, C, H, W] in [-1, 1], on the training device
    labels: torch.Tensor | None  # int64 [N], or None for an unlabelled folder
    class_names: tuple[str, ...] | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return (int(c), int(h), int(w))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names) if self.class_names else None,
            "image_shape": list(self.image_shape),
            "size": len(self),
        }


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
            colour = im.mode not in ("1", "L", "LA", "I", "I;16", "F")
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


def _read_files(files: list[tuple[Path, int]]) -> np.ndarray:
    arrays: list[np.ndarray] = []
    first: tuple[Path, tuple[int, ...], bool] | None = None
    for f, _ in files:
        arr, colour = _read_image(f)
        if first is None:
            first = (f, arr.shape, colour)
        elif arr.shape[:2] != first[1][:2]:
            h, w = first[1][:2]
            raise DataError(
                f"images of different sizes in one folder: {f} is {arr.shape[1]}x{arr.shape[0]}, "
                f"{first[0]} is {w}x{h} (resize them to one size first)"
            )
        elif colour != first[2]:
            kinds = {True: "colour", False: "grayscale"}
            raise DataError(
                f"grayscale and colour images in one folder: {f} is {kinds[colour]}, "
                f"{first[0]} is {kinds[first[2]]} (convert them to one kind first)"
            )
        arrays.append(arr)
    return np.stack(arrays)


def _load_folder(
    path: Path, shape: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor | None, tuple[str, ...] | None]:
    files, classes = _folder_files(path)
    x = torch.from_numpy(_read_files(files)).permute(0, 3, 1, 2).float()
    labels = torch.tensor([i for _, i in files]) if classes else None
    return x.div(127.5).sub(1.0), labels, classes


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
) -> ImageData:
    """Load ``spec`` resized to ``image_shape`` as one tensor on ``device``."""
    if spec in TORCHVISION_SETS:
        raw, labels, classes = load_torchvision_split(
            spec, data_dir or default_data_dir(), train=train, download=download
        )
        if limit:
            raw, labels = raw[:limit], labels[:limit]
        images = raw.unsqueeze(1).float().div(127.5).sub(1.0)
        names: tuple[str, ...] | None = classes
        lab: torch.Tensor | None = labels
    elif spec == "fake":  # deterministic random images for tests: no download, no files
        g = torch.Generator().manual_seed(seed)
        n = limit or fake_size
        images = torch.rand((n, *image_shape), generator=g).mul(2).sub(1)
        lab = torch.randint(0, 10, (n,), generator=g)
        names = tuple(f"class {i}" for i in range(10))
    elif spec.startswith("folder:"):
        images, lab, names = _load_folder(Path(spec[len("folder:") :]), image_shape)
        if limit:
            images = images[:limit]
            lab = lab[:limit] if lab is not None else None
    else:
        raise DataError(f"unknown dataset {spec!r}; choose one of {', '.join(DATASET_CHOICES)}")
    images = _fit_shape(images, image_shape).clamp_(-1, 1).contiguous()
    return ImageData(
        name=spec,
        images=images.to(device),
        labels=None if lab is None else lab.to(device),
        class_names=names,
    )
