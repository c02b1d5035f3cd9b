"""Load-time rewrites of a generator's ONNX graph that ONNX Runtime's CPU provider runs faster.

One rewrite: a ``ConvTranspose`` whose input is 1x1 (a DCGAN generator's first layer,
latent -> k x k feature map) becomes ``Flatten -> Gemm -> Reshape``, with a
``BatchNormalization`` that follows it folded into the Gemm's weights and bias. ORT's
CPU ConvTranspose runs one matrix-vector product per image of the batch; the Gemm
runs one matrix product for the whole batch (the session's images/s at 64 latents:
docs/benchmarks.md). Both compute ``y[n, o, i, j] = sum_c x[n, c] * w[c, o, i, j]``.

The model file is not changed: the service runs the rewritten graph, and only when it
answers the probe latents as the original graph does (``check``: uint8 images within
one grey level, at few values; a reordered float sum may round the other way).
Otherwise the original graph serves and a warning says why (``service.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
from onnx import helper, numpy_helper

CONVT_1X1 = "convtranspose-1x1-gemm"  # the rewrite's name, as /models lists it
MAX_LEVEL_DIFF = 1  # uint8 grey levels a rewritten graph's image may differ by
MAX_DIFF_SHARE = 1e-3  # the share of image values that may differ at all


@dataclass(frozen=True)
class Rewritten:
    """A rewritten graph and the names of the rewrites applied (in graph order)."""

    model_bytes: bytes
    applied: tuple[str, ...]


def runtime_shapes(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray]
) -> dict[str, tuple[int, ...]]:
    """The shape of every node output for ``feeds``: one run of the unoptimised graph with
    each node output made a graph output (no shape inference through dynamic reshapes)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in have:
                probe.graph.output.append(onnx.ValueInfoProto(name=name))
                have.add(name)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        probe.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, feeds)
    return {name: tuple(value.shape) for name, value in zip(names, values, strict=True)}


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _is_convt_1x1(
    node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]], init: dict[str, Any]
) -> bool:
    if node.op_type != "ConvTranspose" or len(node.input) < 2 or node.input[1] not in init:
        return False
    if len(node.input) > 2 and node.input[2] and node.input[2] not in init:
        return False
    shape = shapes.get(node.input[0])
    attrs = _attrs(node)
    return (
        shape is not None
        and len(shape) == 4
        and tuple(shape[2:]) == (1, 1)
        and attrs.get("group", 1) == 1
        and not any(attrs.get("pads", [0]))
        and not any(attrs.get("output_padding", [0]))
        and not attrs.get("output_shape")
        and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    )


def _foldable_bn(
    out: str,
    consumers: dict[str, list[onnx.NodeProto]],
    init: dict[str, Any],
    graph_outputs: set[str],
) -> onnx.NodeProto | None:
    """The inference BatchNormalization that is ``out``'s only consumer, if there is one."""
    users = consumers.get(out, [])
    if out in graph_outputs or len(users) != 1:
        return None
    bn = users[0]
    if bn.op_type != "BatchNormalization" or len([o for o in bn.output if o]) != 1:
        return None
    if _attrs(bn).get("training_mode", 0) or not all(i in init for i in bn.input[1:5]):
        return None
    return bn


def rewrite(model_bytes: bytes, feeds: dict[str, np.ndarray]) -> Rewritten:
    """The graph with every 1x1-input ConvTranspose as a Gemm (shapes found by running
    ``feeds``); ``applied`` is empty, and the bytes the input's, when none applies."""
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    init = {t.name: t for t in graph.initializer}
    shapes = runtime_shapes(model, feeds)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}

    nodes: list[onnx.NodeProto] = []
    folded: set[str] = set()  # output names of the BatchNormalizations folded away
    applied: list[str] = []
    for node in graph.node:
        if node.op_type == "BatchNormalization" and node.output[0] in folded:
            continue
        if not _is_convt_1x1(node, shapes, init):
            nodes.append(node)
            continue
        w = numpy_helper.to_array(init[node.input[1]])
        cin, cout, kh, kw = w.shape
        has_bias = len(node.input) > 2 and node.input[2]
        b = numpy_helper.to_array(init[node.input[2]]) if has_bias else np.zeros(cout, w.dtype)
        out = node.output[0]
        bn = _foldable_bn(out, consumers, init, graph_outputs)
        if bn is not None:
            eps = float(_attrs(bn).get("epsilon", 1e-5))
            gamma, beta, mean, var = (
                numpy_helper.to_array(init[name]).astype(np.float64) for name in bn.input[1:5]
            )
            scale = gamma / np.sqrt(var + eps)
            w = (w.astype(np.float64) * scale[None, :, None, None]).astype(w.dtype)
            b = ((b.astype(np.float64) - mean) * scale + beta).astype(w.dtype)
            out = bn.output[0]
            folded.add(out)
        prefix = f"ganserve_convt1x1_{len(applied)}"
        graph.initializer.extend(
            [
                numpy_helper.from_array(w.reshape(cin, cout * kh * kw), prefix + "_weight"),
                numpy_helper.from_array(np.repeat(b, kh * kw).astype(w.dtype), prefix + "_bias"),
                numpy_helper.from_array(np.array([-1, cout, kh, kw], np.int64), prefix + "_shape"),
            ]
        )
        nodes += [
            helper.make_node("Flatten", [node.input[0]], [prefix + "_x"], axis=1),
            helper.make_node(
                "Gemm", [prefix + "_x", prefix + "_weight", prefix + "_bias"], [prefix + "_y"]
            ),
            helper.make_node("Reshape", [prefix + "_y", prefix + "_shape"], [out]),
        ]
        applied.append(CONVT_1X1)
    if not applied:
        return Rewritten(model_bytes, ())
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    return Rewritten(model.SerializeToString(), tuple(applied))


def check(original: np.ndarray, rewritten: np.ndarray) -> str | None:
    """None when the rewritten graph's images match the original's; else the mismatch."""
    if original.shape != rewritten.shape or original.dtype != rewritten.dtype:
        return f"images of {rewritten.dtype} {list(rewritten.shape)}, not {list(original.shape)}"
    diff = np.abs(original.astype(np.int16) - rewritten.astype(np.int16))
    worst = int(diff.max(initial=0))
    share = float(np.count_nonzero(diff)) / max(diff.size, 1)
    if worst > MAX_LEVEL_DIFF or share > MAX_DIFF_SHARE:
        return f"images differ by up to {worst} grey levels at {share:.2%} of values"
    return None
