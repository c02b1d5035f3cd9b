"""Parity: the same seeded batches through PyTorch and ONNX Runtime (CPU), every failure at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from export.graph import FLOAT_OUTPUT, ImageGenerator, example_inputs


@dataclass
class Check:
    """One compared output at one batch size."""

    what: str  # "float" (tanh output) or "uint8" (the image)
    batch: int
    max_abs_diff: float
    tolerance: float
    worst_index: tuple[int, ...]
    torch_value: float
    onnx_value: float
    mismatched: int  # elements over the tolerance
    differing: int = 0  # elements that differ at all
    size: int = 0  # elements compared
    problem: str = ""  # a shape/dtype/name failure, when there is one

    @property
    def ok(self) -> bool:
        return not self.problem and self.max_abs_diff <= self.tolerance


@dataclass
class ParityReport:
    """Every check of one export; ``failures`` gathers those over tolerance."""

    precision: str
    seed: int
    checks: list[Check] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def worst(self, what: str) -> float:
        return max((c.max_abs_diff for c in self.checks if c.what == what), default=0.0)

    def summary(self) -> dict[str, Any]:
        """The parity figures written to the model card."""
        checks = [c for c in self.checks if not c.problem]
        tol = {c.what: c.tolerance for c in checks}
        return {
            "precision": self.precision,
            "seed": self.seed,
            "batch_sizes": sorted({c.batch for c in checks}),
            "float_max_abs_diff": float(self.worst("float")),
            "float_tolerance": tol.get("float"),
            "uint8_max_abs_diff": int(self.worst("uint8")),
            "uint8_tolerance": int(tol["uint8"]) if "uint8" in tol else None,
            "uint8_values_differing": int(sum(c.differing for c in checks if c.what == "uint8")),
            "uint8_values_compared": int(sum(c.size for c in checks if c.what == "uint8")),
            "runtime": f"onnxruntime {ort.__version__} CPUExecutionProvider",
            "reference": f"torch {torch.__version__.split('+')[0]} eager CPU",
        }

    def table(self, limit: int = 10) -> str:
        """The worst differences, failures first, as a fixed-width table."""
        rows = sorted(self.checks, key=lambda c: (c.ok, -c.max_abs_diff / max(c.tolerance, 1e-12)))
        head = (
            f"  {'check':<6} {'batch':>5} {'max|diff|':>10} {'tol':>8} {'over':>7}  "
            f"{'worst at':<18} {'torch':>9} {'onnx':>9}  status"
        )
        lines = [head]
        for c in rows[:limit]:
            if c.problem:
                lines.append(f"  {c.what:<6} {c.batch:>5}  FAIL: {c.problem}")
                continue
            lines.append(
                f"  {c.what:<6} {c.batch:>5} {c.max_abs_diff:>10.3g} {c.tolerance:>8.3g} "
                f"{c.mismatched:>7}  {str(c.worst_index):<18} {c.torch_value:>9.5g} "
                f"{c.onnx_value:>9.5g}  {'ok' if c.ok else 'FAIL'}"
            )
        return "\n".join(lines)


def cpu_session(model: onnx.ModelProto | bytes, threads: int = 0) -> ort.InferenceSession:
    """An ONNX Runtime session pinned to the CPU provider."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


def _compare(
    what: str, batch: int, ref: np.ndarray, got: np.ndarray, tol: float, name: str
) -> Check:
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return Check(what, batch, float("inf"), tol, (), 0.0, 0.0, int(ref.size),
                     problem=f"{name}: expected {ref.dtype}{list(ref.shape)}, "
                     f"got {got.dtype}{list(got.shape)}")  # fmt: skip
    diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    if diff.size == 0:
        return Check(what, batch, 0.0, tol, (), 0.0, 0.0, 0)
    flat = int(np.argmax(diff))
    idx = tuple(int(i) for i in np.unravel_index(flat, diff.shape))
    return Check(
        what,
        batch,
        float(diff.flat[flat]),
        tol,
        idx,
        float(ref[idx]),
        float(got[idx]),
        int((diff > tol).sum()),
        int((diff > 0).sum()),
        int(diff.size),
    )


def check_parity(
    wrapper: ImageGenerator,
    parity_graph: onnx.ModelProto,
    shipped_graph: onnx.ModelProto,
    *,
    latent_dim: int,
    num_classes: int | None,
    batches: tuple[int, ...],
    seed: int,
    float_atol: float,
    uint8_atol: int,
    precision: str = "float32",
) -> ParityReport:
    """Compare PyTorch with ORT: float output via the parity graph, images via the shipped one."""
    report = ParityReport(precision=precision, seed=seed)
    parity = cpu_session(parity_graph)
    shipped = cpu_session(shipped_graph)
    wrapper.eval()
    for n in batches:
        feeds = example_inputs(latent_dim, num_classes, n, seed)
        with torch.no_grad():
            args = [torch.from_numpy(feeds["z"])]
            if "label" in feeds:
                args.append(torch.from_numpy(feeds["label"]))
            ref_image, ref_float = (t.numpy() for t in wrapper(*args))
        got_float = parity.run([FLOAT_OUTPUT], feeds)[0]
        got_image = shipped.run(["image"], feeds)[0]
        report.checks.append(_compare("float", n, ref_float, got_float, float_atol, FLOAT_OUTPUT))
        report.checks.append(_compare("uint8", n, ref_image, got_image, uint8_atol, "image"))
    return report
