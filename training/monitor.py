"""Quality measured while training (like StyleGAN's metrics during training).

Every ``--metrics-kimg`` thousand training images the loop asks ``QualityMonitor``
for one figure of the sampling network (the EMA copy when there is one):

- ``cfd``: Fréchet distance in the domain classifier's features (Fashion-MNIST,
  MNIST), ``--metrics-images`` generated images vs the 10k test split. Costs a
  few seconds on the CPU, and tracks FID's ranking of models (docs/models.md).
- ``fid``: Fréchet Inception distance (ONNX Runtime Inception on the CPU),
  generated images vs the test split, or vs the whole folder for an image
  folder data set. Costs ``--metrics-images`` / ~12 images/s on two cores.

``cfd`` also logs the precision and recall of the generated images in the same
classifier features (``classifier_precision``, ``classifier_recall``, k = 3): a G
that keeps a low classifier FD while its variety collapses shows it in recall.
Conditional models also log ``conditional_accuracy`` (labels cycled 0..K-1).
Each point is one line of ``metric-<name>.jsonl`` and a ``"kind": "metric"``
line of ``stats.jsonl``; the figures use the same latents at every point
(``make_latents(sample_seed + 1, n, latent_dim)``), so the curve moves only
with G.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganserve.latent import make_latents


def _to_uint8_nhwc(x: torch.Tensor) -> np.ndarray:
    y = ((x.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).cpu().numpy()


class QualityMonitor:
    """Computes one metric of a generator against a fixed reference set."""

    def __init__(
        self,
        name: str,
        *,
        dataset: str,
        data_dir: str | Path | None,
        num_images: int,
        seed: int,
        num_classes: int,
        conditional: bool,
        device: torch.device,
    ) -> None:
        from training.metrics import FeatureCache, MetricContext, resolve_metrics
        from training.metrics.sources import ImageSet, load_reference

        self.name = name
        self.num_images = num_images
        self.seed = seed
        self.num_classes = num_classes
        self.conditional = conditional
        self.device = device
        self.reference = load_reference(dataset, data_dir)
        self.names = resolve_metrics("cls" if name == "cfd" else "fid", labelled=conditional)
        if name == "fid" and conditional:
            self.names.append("acc")
        self._context = MetricContext
        self._image_set = ImageSet
        self._cache = FeatureCache(FeatureCache.default_dir())
        self._dataset = dataset
        self._reference_features: dict[tuple[str, str], np.ndarray] = {}
        self._extractors: dict[str, Any] = {}

    @torch.no_grad()
    def _generate(self, g: nn.Module) -> tuple[np.ndarray, np.ndarray | None]:
        was_training = g.training
        g.eval()
        z = make_latents(self.seed, self.num_images, g.latent_dim)
        labels = np.arange(self.num_images, dtype=np.int64) % self.num_classes
        parts = []
        for i in range(0, self.num_images, 250):
            zt = torch.from_numpy(z[i : i + 250]).to(self.device)
            if self.conditional:
                x = g(zt, torch.from_numpy(labels[i : i + 250]).to(self.device))
            else:
                x = g(zt)
            parts.append(_to_uint8_nhwc(x))
        g.train(was_training)
        return np.concatenate(parts), (labels if self.conditional else None)

    def measure(self, g: nn.Module) -> dict[str, float]:
        """The figures of ``g`` now, with ``seconds`` (wall time of the measurement)."""
        from training.metrics import run_metric

        start = time.perf_counter()
        images, labels = self._generate(g)
        candidates = self._image_set(images, labels, {"kind": "generated"})
        ctx = self._context(
            candidates=candidates,
            reference=self.reference,
            dataset=self._dataset,
            device=str(self.device),
            cache=self._cache,
        )
        # reuse the reference features and the extractors between points
        ctx._features.update(self._reference_features)
        ctx._extractors.update(self._extractors)
        out: dict[str, float] = {}
        for name in self.names:
            out.update(run_metric(ctx, name))
        self._reference_features = {k: v for k, v in ctx._features.items() if k[1] == "reference"}
        self._extractors = dict(ctx._extractors)
        out["seconds"] = round(time.perf_counter() - start, 2)
        return {k: float(v) for k, v in out.items()}
