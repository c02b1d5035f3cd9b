"""PyTorch generator -> ONNX graph whose output is the uint8 NHWC image."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import torch
from torch import nn

from export.specs import TRACE_BATCH, ExportSpec
from ganserve.latent import make_latents

FLOAT_OUTPUT = "image_float"  # tanh output, NCHW; only in the parity graph


class ImageGenerator(nn.Module):
    """Wraps G: (z[, label]) -> (uint8 image NHWC, float tanh output NCHW)."""

    def __init__(self, generator: nn.Module, conditional: bool) -> None:
        super().__init__()
        self.generator = generator
        self.conditional = conditional

    def forward(
        self, z: torch.Tensor, label: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.generator(z, label) if self.conditional else self.generator(z)
        image = torch.clamp(torch.round((x + 1.0) * 127.5), 0.0, 255.0).to(torch.uint8)
        return image.permute(0, 2, 3, 1), x


def example_inputs(
    latent_dim: int, num_classes: int | None, n: int, seed: int
) -> dict[str, np.ndarray]:
    """The seeded feeds of the latent contract; labels cycle 0, 1, ..., num_classes - 1."""
    feeds = {"z": make_latents(seed, n, latent_dim)}
    if num_classes:
        feeds["label"] = (np.arange(n) % num_classes).astype(np.int64)
    return feeds


def export_parity_graph(
    wrapper: ImageGenerator, spec: ExportSpec, latent_dim: int, num_classes: int | None
) -> onnx.ModelProto:
    """Trace ``wrapper`` (eval mode) with the legacy exporter; outputs image and image_float."""
    wrapper.eval()
    feeds = example_inputs(latent_dim, num_classes, TRACE_BATCH, seed=0)
    args = tuple(torch.from_numpy(feeds[name]) for name in spec.input_names)
    outputs = (*spec.output_names, FLOAT_OUTPUT)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(
            wrapper,
            args,
            buf,
            dynamo=False,
            opset_version=spec.opset,
            input_names=list(spec.input_names),
            output_names=list(outputs),
            dynamic_axes={**spec.dynamic_axes, FLOAT_OUTPUT: {0: "batch"}},
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.EVAL,
        )
    wrapper.eval()  # the exporter restores the mode it found; keep G in eval regardless
    return onnx.load_from_string(buf.getvalue())


def drop_float_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """The shipped graph: the parity graph without its float output (same nodes)."""
    shipped = onnx.ModelProto()
    shipped.CopyFrom(model)
    keep = [o for o in shipped.graph.output if o.name != FLOAT_OUTPUT]
    del shipped.graph.output[:]
    shipped.graph.output.extend(keep)
    return shipped


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and arithmetic in float16; inputs and outputs keep their float32/uint8 types."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert_float_to_float16(model, keep_io_types=True)
    return topological_sort(half)


def topological_sort(model: onnx.ModelProto) -> onnx.ModelProto:
    """Reorder nodes so each comes after its inputs' producers (the checker requires it)."""
    graph = model.graph
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        rest = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError(f"graph has a cycle or a missing input at node {rest[0].name!r}")
        pending = rest
    sorted_nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in ordered]
    del graph.node[:]
    graph.node.extend(sorted_nodes)
    return model
