"""One export spec per registered architecture: the I/O contract and parity tolerances.

Every architecture in ``training.networks.ARCHITECTURES`` gets a spec with the
default tolerances unless ``TOLERANCES`` gives it others;
``tests/export/test_export_architectures.py`` checks that each has a spec and
exports every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training.networks import ARCHITECTURES, get_arch

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


#: Architectures whose parity needs other tolerances than ExportSpec's defaults, e.g.
#: ``{"dcgan64": {"float_atol": 2e-4}}`` (none does yet).
TOLERANCES: dict[str, dict[str, Any]] = {}


def _spec(arch: str) -> ExportSpec:
    conditional = get_arch(arch).conditional  # KeyError naming the architectures
    return ExportSpec(arch=arch, conditional=conditional, **TOLERANCES.get(arch, {}))


SPECS: dict[str, ExportSpec] = {arch: _spec(arch) for arch in ARCHITECTURES}


def get_spec(arch: str) -> ExportSpec:
    """The export spec of ``arch``; ``KeyError`` with a one-line message when it is unknown."""
    return SPECS.get(arch) or _spec(arch)
