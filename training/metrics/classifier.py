"""The domain classifier: a small CNN per data set, trained on its train split.

It gives two metrics: conditional accuracy (how often generated images get the
label they were conditioned on) and the Fréchet distance in its penultimate
feature space (``classifier_fd``, a fast stand-in for FID in tests).

Train and commit the weights (a few minutes on 2 CPU cores)::

    python -m training.metrics.classifier --dataset fashion-mnist --data-dir ../shared/data

writes ``training/assets/classifier-<dataset>.pt`` and, beside it, ``.json``
with the test accuracy on the full test split.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.metrics.errors import MetricError
from training.metrics.sources import default_data_dir, get_dataset, load_split

ASSETS = Path(__file__).resolve().parent.parent / "assets"
FORMAT = "ganserve-classifier/1"


class DomainClassifier(nn.Module):
    """Three conv blocks (28 -> 14 -> 7 -> 3, ``width`` x 1, 2, 4 channels), a 128-d layer."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.kwargs = {"num_classes": num_classes, "in_channels": in_channels, "width": width}
        w = width  # channels of the first block; doubled per block
        self.features = nn.Sequential(
            *self._block(in_channels, w),
            *self._block(w, 2 * w),
            *self._block(2 * w, 4 * w),
            nn.Flatten(),
            nn.Linear(4 * w * 3 * 3, 128),
            nn.BatchNorm1d(128),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, num_classes))
        self.feature_dim = 128

    @staticmethod
    def _block(cin: int, cout: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features [N, 128] of float images in [-1, 1]."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, C] -> float [N, C, H, W] in [-1, 1] (the generators' range)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def asset_paths(dataset: str, assets: Path = ASSETS) -> tuple[Path, Path]:
    name = get_dataset(dataset).name
    return assets / f"classifier-{name}.pt", assets / f"classifier-{name}.json"


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Classifier:
    """A committed classifier: ``predict`` labels, ``features`` (128-d), with its record."""

    def __init__(self, net: DomainClassifier, record: dict[str, Any], batch_size: int = 500):
        self.net = net.eval()
        self.record = record
        self.batch_size = batch_size
        self.dataset = record.get("dataset")
        self.name = f"classifier-{self.dataset}"
        self.dim = net.feature_dim
        self.protocol = {
            "network": f"domain classifier {self.name} (training/metrics/classifier.py)",
            "weights_sha256": record.get("weights_sha256"),
            "test_accuracy": record.get("test_accuracy"),
            "features": "penultimate layer, 128-d; input uint8 / 127.5 - 1",
        }

    @torch.inference_mode()
    def _run(self, images: np.ndarray, fn: str) -> np.ndarray:
        outs = []
        for i in range(0, len(images), self.batch_size):
            x = to_input(images[i : i + self.batch_size])
            outs.append(getattr(self.net, fn)(x).float().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, self.dim), np.float32)

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self._run(images, "forward")

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.logits(images).argmax(axis=1).astype(np.int64)

    def __call__(self, images: np.ndarray, progress: Any = None) -> np.ndarray:
        """Penultimate features [N, 128] (the same call shape as ``InceptionFeatures``)."""
        return self._run(images, "embed")


def save_classifier(
    net: DomainClassifier, dataset: str, record: dict[str, Any], assets: Path
) -> Path:
    weights, meta = asset_paths(dataset, assets)
    weights.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "dataset": get_dataset(dataset).name,
        "kwargs": net.kwargs,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
    }
    torch.save(payload, weights)
    record = {**record, "weights": weights.name, "weights_sha256": sha256_of(weights)}
    meta.write_text(json.dumps(record, indent=2) + "\n")
    return weights


@functools.cache
def _load_cached(weights: str, meta: str) -> Classifier:
    payload = torch.load(weights, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MetricError(f"{weights} is not a ganserve classifier (expected format {FORMAT})")
    net = DomainClassifier(**payload["kwargs"])
    net.load_state_dict(payload["state_dict"])
    record = json.loads(Path(meta).read_text()) if Path(meta).is_file() else {}
    record.setdefault("dataset", payload["dataset"])
    return Classifier(net, record)


def load_classifier(dataset: str, assets: Path = ASSETS) -> Classifier:
    """The committed classifier of ``dataset`` (loaded once)."""
    weights, meta = asset_paths(dataset, assets)
    if not weights.is_file():
        raise MetricError(
            f"no classifier for {get_dataset(dataset).name}: {weights} is missing "
            f"(train it: python -m training.metrics.classifier --dataset {dataset})"
        )
    return _load_cached(str(weights), str(meta))


#: below this top probability an image counts as unsure (``classifier_unsure``)
UNSURE_BELOW = 0.9


def confidence(clf: Classifier, images: np.ndarray) -> dict[str, float]:
    """How plainly the images show one class: the mean of the classifier's top softmax
    probability, and the share of images whose top probability is under ``UNSURE_BELOW``."""
    if len(images) == 0:
        raise MetricError("confidence of an empty set")
    logits = clf.logits(images).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    top = probs.max(axis=1) / probs.sum(axis=1)
    return {
        "classifier_confidence": float(top.mean()),
        "classifier_unsure": float((top < UNSURE_BELOW).mean()),
    }


def accuracy(clf: Classifier, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of images the classifier labels as ``labels``."""
    if len(images) == 0:
        raise MetricError("accuracy of an empty set")
    return float((clf.predict(images) == np.asarray(labels)).mean())


def train(
    dataset: str,
    data_dir: Path,
    *,
    epochs: int = 6,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    log: Any = print,
) -> tuple[DomainClassifier, dict[str, Any]]:
    """Train on the full train split, evaluate on the full test split."""
    info = get_dataset(dataset)
    train_set = load_split(info.name, data_dir, "train")
    test_set = load_split(info.name, data_dir, "test")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_all = to_input(train_set.images)
    y_all = torch.from_numpy(train_set.labels)
    net = DomainClassifier(num_classes=info.num_classes).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * (len(x_all) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    start = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x_all), generator=gen)
        total = 0.0
        for i in range(len(x_all) // batch_size):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            x = x_all[idx].contiguous(memory_format=torch.channels_last)
            loss = loss_fn(net(x), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(
            f"epoch {epoch + 1}/{epochs}: loss {total / (i + 1):.4f} "
            f"({time.perf_counter() - start:.0f} s)"
        )
    seconds = time.perf_counter() - start
    clf = Classifier(net, {"dataset": info.name})
    acc = accuracy(clf, test_set.images, test_set.labels)
    record = {
        "dataset": info.name,
        "test_accuracy": round(acc, 4),
        "test_images": len(test_set),
        "train_images": len(train_set),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in net.parameters()),
        "torch": torch.__version__,
    }
    return net, record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.metrics.classifier",
        description="Train the domain classifier of a data set and write it to training/assets/.",
    )
    parser.add_argument("--dataset", required=True, help="fashion-mnist or mnist")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--assets", type=Path, default=ASSETS, help="where the weights go")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        info = get_dataset(args.dataset)
        if args.epochs < 1:
            raise MetricError("--epochs must be at least 1")
        net, record = train(
            info.name,
            args.data_dir,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
    except MetricError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    record["command"] = "python -m training.metrics.classifier " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    weights = save_classifier(net, info.name, record, args.assets)
    size = os.path.getsize(weights)
    print(
        f"{info.name}: test accuracy {record['test_accuracy']:.4f} on {record['test_images']} "
        f"test images; {record['train_seconds']:.0f} s; {weights} ({size / 1e6:.2f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
