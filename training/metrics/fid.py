"""Feature-space distances: FID, KID and precision/recall, on any [N, D] features.

- ``frechet_distance``: the Fréchet distance between two Gaussians (Heusel et
  al. 2017), ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))`` with
  ``scipy.linalg.sqrtm``; the imaginary part that rounding leaves in the
  square root is dropped, as StyleGAN's and pytorch-fid's code do.
  ``fid_from_features`` uses it whenever both sets have more samples than
  feature dimensions (the 10k protocol). With fewer samples the covariances
  are singular (``sqrtm`` is then slow and inexact) and the same trace comes
  exactly from the centred features A, B: ``Tr sqrt(S1 S2)`` is the sum of the
  singular values of ``A B^T`` over ``sqrt((n - 1)(m - 1))``.
- ``kernel_inception_distance``: the unbiased MMD^2 with the polynomial
  kernel ``(x.y / d + 1)^3`` averaged over random subsets (Binkowski et al.
  2018; StyleGAN's estimator).
- ``precision_recall``: improved precision and recall with k-nearest-neighbour
  balls (Kynkäänniemi et al. 2019), k = 3.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from training.metrics.errors import MetricError


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (float64, unbiased) of features [N, D]."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise MetricError(f"need at least 2 feature rows [N, D], got shape {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MetricError(f"feature sizes differ: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular products warn; the result is checked below
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(sigma1)) * 1e-6
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    fd = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(fd)


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets [N, D], [M, D]."""
    a = np.asarray(features1, dtype=np.float64)
    b = np.asarray(features2, dtype=np.float64)
    if a.ndim == 2 and b.ndim == 2 and min(len(a), len(b)) > a.shape[1]:
        return frechet_distance(*feature_stats(a), *feature_stats(b))
    return frechet_distance_low_rank(a, b)


def frechet_distance_low_rank(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance from the features themselves (exact; fast when N, M < D)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise MetricError(f"need two feature sets [N >= 2, D], got {a.shape} and {b.shape}")
    ca, cb = a - a.mean(axis=0), b - b.mean(axis=0)
    k1, k2 = len(a) - 1, len(b) - 1
    cross = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt(k1 * k2)
    diff = a.mean(axis=0) - b.mean(axis=0)
    return float(diff @ diff + (ca * ca).sum() / k1 + (cb * cb).sum() / k2 - 2.0 * cross)


def kernel_inception_distance(
    gen: np.ndarray,
    real: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: mean and standard deviation over subsets of the unbiased MMD^2 estimate."""
    gen = np.asarray(gen, dtype=np.float32)
    real = np.asarray(real, dtype=np.float32)
    if gen.ndim != 2 or real.ndim != 2 or gen.shape[1] != real.shape[1]:
        raise MetricError(f"feature shapes do not match: {gen.shape} vs {real.shape}")
    m = min(len(gen), len(real), subset_size)
    if m < 2:
        raise MetricError("KID needs at least 2 samples in each set")
    d = gen.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for s in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        kxx = (x @ x.T / d + 1).astype(np.float64) ** 3
        kyy = (y @ y.T / d + 1).astype(np.float64) ** 3
        kxy = (x @ y.T / d + 1).astype(np.float64) ** 3
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values[s] = within - 2.0 * kxy.mean()
    return float(values.mean()), float(values.std())


def _kth_radii(x: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    """Distance of each row of ``x`` to its k-th nearest other row."""
    out = []
    for i in range(0, len(x), batch):
        dist = torch.cdist(x[i : i + batch], x)
        out.append(dist.kthvalue(k + 1, dim=1).values)  # the row itself is the nearest (0)
    return torch.cat(out)


def _covered(queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor, batch: int) -> float:
    """Fraction of ``queries`` inside at least one ball (points, radii)."""
    inside = 0
    for i in range(0, len(queries), batch):
        dist = torch.cdist(queries[i : i + batch], points)
        inside += int((dist <= radii[None, :]).any(dim=1).sum())
    return inside / len(queries)


def precision_recall(
    real: np.ndarray, gen: np.ndarray, k: int = 3, batch: int = 1000
) -> tuple[float, float]:
    """Improved precision (gen inside the real manifold) and recall (real inside gen's)."""
    r = torch.as_tensor(np.asarray(real, dtype=np.float32))
    g = torch.as_tensor(np.asarray(gen, dtype=np.float32))
    if r.ndim != 2 or g.ndim != 2 or r.shape[1] != g.shape[1]:
        raise MetricError(f"feature shapes do not match: {tuple(r.shape)} vs {tuple(g.shape)}")
    if min(len(r), len(g)) <= k:
        raise MetricError(f"precision/recall with k={k} needs more than {k} samples per set")
    with torch.inference_mode():
        real_radii = _kth_radii(r, k, batch)
        gen_radii = _kth_radii(g, k, batch)
        precision = _covered(g, r, real_radii, batch)
        recall = _covered(r, g, gen_radii, batch)
    return precision, recall
