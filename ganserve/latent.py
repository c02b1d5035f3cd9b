"""The latent contract: one seed names the same latent batch in every stage.

    z = numpy.random.default_rng(seed).standard_normal((n, latent_dim)).astype(numpy.float32)

Row i does not depend on n, so the first 8 rows of a 64-row batch equal the
8-row batch of the same seed. Training samples, export parity checks, the
service and the SDK docs all build latents here, with numpy alone (the service
never imports torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

PerturbMode = Literal["set", "add", "scale", "noise"]
PERTURB_MODES: tuple[str, ...] = ("set", "add", "scale", "noise")

#: The dimensions and values of the reports' latent experiment (a 15 x 8 grid).
REPORT_DIMS: tuple[int, ...] = (5, 20, 40, 60, 80)
REPORT_VALUES: tuple[float, ...] = (-3.0, 0.0, 3.0)


def make_latents(seed: int, n: int, latent_dim: int) -> np.ndarray:
    """Return the float32 [n, latent_dim] latent batch that ``seed`` names."""
    if n < 0 or latent_dim < 1:
        raise ValueError(f"need n >= 0 and latent_dim >= 1, got n={n}, latent_dim={latent_dim}")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, latent_dim)).astype(np.float32)


def noise_for(seed: int, n: int, latent_dim: int) -> np.ndarray:
    """The seeded N(0, 1) noise that ``noise`` perturbations add (independent of the latents)."""
    rng = np.random.default_rng([seed, 1])
    return rng.standard_normal((n, latent_dim)).astype(np.float32)


def perturb_latents(
    z: np.ndarray,
    values: Sequence[float],
    *,
    dims: Sequence[int] | None,
    mode: str = "set",
    seed: int = 0,
) -> np.ndarray:
    """Apply each (dim, value) perturbation to the base batch ``z`` [n, d].

    Returns [rows * n, d], row-major: one row of n samples per (dim, value)
    pair, dims outer and values inner. ``dims=None`` applies each value to the
    whole vector (one row per value). Modes: ``set`` z[d] = v, ``add`` z[d] += v,
    ``scale`` z[d] *= v, ``noise`` z[d] += v * eps with eps seeded by ``seed``.
    """
    if mode not in PERTURB_MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(PERTURB_MODES)}")
    z = np.asarray(z, dtype=np.float32)
    n, latent_dim = z.shape
    columns: list[slice | int] = [slice(None)] if dims is None else [int(d) for d in dims]
    for c in columns:
        if isinstance(c, int) and not 0 <= c < latent_dim:
            raise ValueError(f"dimension {c} is outside [0, {latent_dim})")
    eps = noise_for(seed, n, latent_dim) if mode == "noise" else None
    rows = []
    for c in columns:
        for v in values:
            zz = z.copy()
            v32 = np.float32(v)
            if mode == "set":
                zz[:, c] = v32
            elif mode == "add":
                zz[:, c] += v32
            elif mode == "scale":
                zz[:, c] *= v32
            else:
                assert eps is not None
                zz[:, c] += v32 * eps[:, c]
            rows.append(zz)
    if not rows:
        return np.zeros((0, latent_dim), dtype=np.float32)
    return np.concatenate(rows, axis=0)
