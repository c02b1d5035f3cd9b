"""One export spec per registered architecture: the I/O contract and parity tolerances.

Every architecture in ``training.networks.ARCHITECTURES`` needs an entry here;
``tests/export/test_specs.py`` fails when one is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.networks import ARCHITECTURES

OPSET = 17
PARITY_SEED = 0
PARITY_BATCHES: tuple[int, ...] = (1, 64)
TRACE_BATCH = 2  # the batch traced at export; any size but 1 keeps the axis from being specialised


@dataclass(frozen=True)
class ExportSpec:
    """How one architecture is exported and how closely ONNX must match PyTorch."""

    arch: str
    conditional: bool
    opset: int = OPSET
    float_atol: float = 1e-4  # float32 graph: |tanh_torch - tanh_onnx|
    uint8_atol: int = 1  # float32 graph: |image_torch - image_onnx| in levels
    fp16_float_atol: float = 1e-2  # the float16 variant, looser
    fp16_uint8_atol: int = 2

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("z", "label") if self.conditional else ("z",)

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("image",)

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        return {name: {0: "batch"} for name in (*self.input_names, *self.output_names)}


def _spec(arch: str, **kw: float | int) -> ExportSpec:
    return ExportSpec(arch=arch, conditional=ARCHITECTURES[arch].conditional, **kw)  # type: ignore[arg-type]


SPECS: dict[str, ExportSpec] = {
    "mlp-small": _spec("mlp-small"),
    "mlp": _spec("mlp"),
    "dcgan": _spec("dcgan"),
    "dcgan-upsample": _spec("dcgan-upsample"),
    "mlp-residual": _spec("mlp-residual"),
    "cgan": _spec("cgan"),
    "dcgan64": _spec("dcgan64"),
    "dcgan-cond": _spec("dcgan-cond"),
}


def get_spec(arch: str) -> ExportSpec:
    """The export spec of ``arch``; ``KeyError`` with a one-line message when there is none."""
    try:
        return SPECS[arch]
    except KeyError:
        raise KeyError(
            f"no export spec for architecture {arch!r}; exportable: {', '.join(sorted(SPECS))}"
        ) from None
