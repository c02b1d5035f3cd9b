"""Quality metrics of generated images, registered by name.

Each metric is a function ``(ctx: MetricContext) -> dict[str, float]`` that
registers itself with ``@register_metric``. The context holds the candidate
images (generated, or a real split for the floor), the reference images (a
real split) and the feature extractors, and computes each feature set once:

| name | results | feature space |
|---|---|---|
| ``fid`` | ``fid`` | Inception-v3 pool3 |
| ``kid`` | ``kid``, ``kid_std`` | Inception-v3 pool3 |
| ``pr`` | ``precision``, ``recall`` (k = 3) | Inception-v3 pool3 |
| ``cfd`` | ``classifier_fd`` | the domain classifier's penultimate layer |
| ``cpr`` | ``classifier_precision``, ``classifier_recall`` (k = 3) | the same classifier layer |
| ``acc`` | ``conditional_accuracy`` (labelled candidates only) | the classifier's labels |
| ``conf`` | ``classifier_confidence``, ``classifier_unsure`` | the classifier's probabilities |

``cls`` names the classifier metrics: ``cfd``, ``cpr``, and ``acc`` when the
candidates carry labels. ``cpr`` is the cheap way to see lost variety while
training: a G that collapses within a class can keep a low classifier FD, but
its recall falls. ``conf`` (asked by name, not part of ``cls``) measures how plainly
each image shows one class: the mean of the classifier's top probability, and the share
of images where it is under 0.9 (a digit in between two, say). Inception features of
real splits are cached on disk (``FeatureCache``), keyed by data set, split, count and a
hash of the images.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.metrics import fid as fd
from training.metrics.errors import MetricError
from training.metrics.sources import ImageSet

MetricFn = Callable[["MetricContext"], dict[str, float]]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn
    description: str
    needs_labels: bool = False  # only for candidates with (conditioning) labels
    inception: bool = False  # uses the Inception features (slow on CPU)


METRICS: dict[str, Metric] = {}
ALIASES: dict[str, tuple[str, ...]] = {"cls": ("cfd", "cpr", "acc")}
CLASSIFIER_METRICS = (*ALIASES["cls"], "conf")  # they need the data set's domain classifier
_SINGULAR = {"candidates": "candidate", "reference": "reference"}


def register_metric(
    name: str, *, description: str, needs_labels: bool = False, inception: bool = False
) -> Callable[[MetricFn], MetricFn]:
    """Register ``fn`` as metric ``name``."""

    def wrap(fn: MetricFn) -> MetricFn:
        METRICS[name] = Metric(name, fn, description, needs_labels, inception)
        return fn

    return wrap


def resolve_metrics(spec: str | list[str], labelled: bool) -> list[str]:
    """``"fid,kid,cls"`` -> metric names; ``cls`` adds ``acc`` only for labelled candidates.

    Raises ``MetricError`` for unknown names and for ``acc`` asked by name on
    candidates without labels (an unconditional model).
    """
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if not names:
        raise MetricError("no metrics named")
    out: list[str] = []
    for name in names:
        if name in ALIASES:
            expanded = [m for m in ALIASES[name] if labelled or not METRICS[m].needs_labels]
        elif name in METRICS:
            if METRICS[name].needs_labels and not labelled:
                raise MetricError(
                    f"metric {name!r} needs a conditional model (the source has no labels)"
                )
            expanded = [name]
        else:
            known = ", ".join([*METRICS, *ALIASES])
            raise MetricError(f"unknown metric {name!r}; choose from {known}")
        out += [m for m in expanded if m not in out]
    return out


class FeatureCache:
    """Features of real image sets on disk.

    One ``.npy`` per set: ``<extractor>-<dataset>-<split>-n<count>-<sha1 of the images>``.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def default_dir() -> Path:
        env = os.environ.get("GANSERVE_CACHE_DIR")
        return Path(env) if env else Path.home() / ".cache" / "ganserve" / "metrics"

    def path_for(self, extractor: str, images: ImageSet) -> Path | None:
        desc = images.description
        if desc.get("kind") != "real":
            return None
        digest = hashlib.sha1(np.ascontiguousarray(images.images).tobytes()).hexdigest()[:16]
        name = f"{extractor}-{desc['dataset']}-{desc['split']}-n{len(images)}-{digest}.npy"
        return self.directory / name

    def load(self, path: Path) -> np.ndarray | None:
        try:
            feats = np.load(path)
        except (OSError, ValueError):
            return None
        self.hits += 1
        return feats

    def save(self, path: Path, feats: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            np.save(f, feats)
        os.replace(tmp, path)


@dataclass
class MetricContext:
    """Candidates vs reference, with lazily computed (and cached) features."""

    candidates: ImageSet
    reference: ImageSet
    dataset: str
    device: str | None = None
    batch_size: int = 32
    inception_backend: str = "auto"
    cache: FeatureCache | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3
    log: Callable[[str], None] = lambda _msg: None
    timings: dict[str, float] = field(default_factory=dict)
    _features: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    _extractors: dict[str, Any] = field(default_factory=dict)

    def _images(self, which: str) -> ImageSet:
        if which not in ("candidates", "reference"):
            raise ValueError(which)
        return self.candidates if which == "candidates" else self.reference

    def inception_extractor(self) -> Any:
        if "inception" not in self._extractors:
            from training.metrics.inception import InceptionFeatures

            self._extractors["inception"] = InceptionFeatures(
                self.device, self.batch_size, backend=self.inception_backend
            )
        return self._extractors["inception"]

    def classifier(self) -> Any:
        if "classifier" not in self._extractors:
            from training.metrics.classifier import load_classifier

            self._extractors["classifier"] = load_classifier(self.dataset)
        return self._extractors["classifier"]

    def feature_sets(self, space: str) -> tuple[np.ndarray, np.ndarray]:
        """(candidates, reference) features in ``space``."""
        return self.features(space, "candidates"), self.features(space, "reference")

    def features(self, space: str, which: str) -> np.ndarray:
        """Features of ``which`` (candidates/reference) in ``space`` (inception/classifier)."""
        key = (space, which)
        if key in self._features:
            return self._features[key]
        images = self._images(which)
        extractor = self.inception_extractor() if space == "inception" else self.classifier()
        cacheable = self.cache is not None and space == "inception"  # the slow one
        path = self.cache.path_for(extractor.name, images) if cacheable else None
        feats = self.cache.load(path) if path is not None and path.is_file() else None
        if feats is not None and feats.shape != (len(images), extractor.dim):
            feats = None
        if feats is None:
            if path is not None:
                self.cache.misses += 1
            start = time.perf_counter()
            self.log(f"{space} features of {len(images)} {_SINGULAR[which]} images ...")
            feats = extractor(images.images, progress=self._progress(space, which))
            seconds = time.perf_counter() - start
            self.timings[f"{space}_{which}_seconds"] = round(seconds, 2)
            if space == "inception" and len(images):
                rate = round(len(images) / seconds, 2)
                self.timings[f"inception_{which}_images_per_second"] = rate
            if path is not None:
                self.cache.save(path, feats)
        else:
            self.log(f"{space} features of {len(images)} {_SINGULAR[which]} images from {path}")
        self._features[key] = feats
        return feats

    def _progress(self, space: str, which: str) -> Callable[[int, int], None]:
        start = time.perf_counter()
        last = [start]

        def report(done: int, total: int) -> None:
            now = time.perf_counter()
            if now - last[0] >= 30 or done == total:
                last[0] = now
                rate = done / max(now - start, 1e-9)
                eta = (total - done) / max(rate, 1e-9)
                self.log(f"  {space} {which}: {done}/{total} ({rate:.1f} img/s, {eta:.0f} s left)")

        return report

    def protocol(self, name: str) -> dict[str, Any]:
        """What a metric's figure depends on."""
        spec = METRICS[name]
        out: dict[str, Any] = {}
        if spec.inception:
            from training.metrics.inception import PROTOCOL

            out["features"] = PROTOCOL
        if name == "kid":
            out["kid"] = {
                "kernel": "(x.y / d + 1)^3",
                "estimator": "unbiased MMD^2",
                "subsets": self.kid_subsets,
                "subset_size": min(self.kid_subset_size, len(self.candidates), len(self.reference)),
            }
        if name == "pr":
            out["pr"] = {"k": self.pr_k, "method": "Kynkaanniemi et al. 2019 k-NN balls"}
        if name in CLASSIFIER_METRICS:
            out["classifier"] = self.classifier().protocol
        return out


def run_metric(ctx: MetricContext, name: str) -> dict[str, float]:
    spec = METRICS[name]
    if spec.needs_labels and ctx.candidates.labels is None:
        raise MetricError(f"metric {name!r} needs a conditional model (the source has no labels)")
    return spec.fn(ctx)


@register_metric("fid", description="Fréchet Inception distance", inception=True)
def _fid(ctx: MetricContext) -> dict[str, float]:
    return {"fid": fd.fid_from_features(*ctx.feature_sets("inception"))}


@register_metric("kid", description="kernel Inception distance", inception=True)
def _kid(ctx: MetricContext) -> dict[str, float]:
    a, b = ctx.feature_sets("inception")
    mean, std = fd.kernel_inception_distance(a, b, ctx.kid_subsets, ctx.kid_subset_size)
    return {"kid": mean, "kid_std": std}


@register_metric("pr", description="precision and recall (k-NN, Inception)", inception=True)
def _pr(ctx: MetricContext) -> dict[str, float]:
    a, b = ctx.feature_sets("inception")
    precision, recall = fd.precision_recall(b, a, k=ctx.pr_k)
    return {"precision": precision, "recall": recall}


@register_metric("cfd", description="Fréchet distance in the domain classifier's features")
def _cfd(ctx: MetricContext) -> dict[str, float]:
    return {"classifier_fd": fd.fid_from_features(*ctx.feature_sets("classifier"))}


@register_metric("cpr", description="precision and recall (k-NN, the domain classifier)")
def _cpr(ctx: MetricContext) -> dict[str, float]:
    a, b = ctx.feature_sets("classifier")
    precision, recall = fd.precision_recall(b, a, k=ctx.pr_k)
    return {"classifier_precision": precision, "classifier_recall": recall}


@register_metric("acc", description="share labelled as their conditioning label", needs_labels=True)
def _acc(ctx: MetricContext) -> dict[str, float]:
    from training.metrics.classifier import accuracy

    images = ctx.candidates
    return {"conditional_accuracy": accuracy(ctx.classifier(), images.images, images.labels)}


@register_metric("conf", description="the classifier's top probability (mean; share under 0.9)")
def _conf(ctx: MetricContext) -> dict[str, float]:
    from training.metrics.classifier import confidence

    return confidence(ctx.classifier(), ctx.candidates.images)


__all__ = [
    "ALIASES",
    "CLASSIFIER_METRICS",
    "METRICS",
    "FeatureCache",
    "Metric",
    "MetricContext",
    "MetricError",
    "register_metric",
    "resolve_metrics",
    "run_metric",
]
