"""Triton Inference Server model configuration (ONNX Runtime backend, dynamic batching)."""

from __future__ import annotations

from export.specs import ExportSpec

MAX_BATCH = 512
PREFERRED_BATCHES = (16, 64, 256)
MAX_QUEUE_DELAY_US = 2000


def triton_config(name: str, spec: ExportSpec, latent_dim: int, image_shape: list[int]) -> str:
    """``config.pbtxt`` for ``<name>/1/model.onnx``; dims exclude the batch axis."""
    inputs = [f'  {{ name: "z" data_type: TYPE_FP32 dims: [ {latent_dim} ] }}']
    if spec.conditional:
        # Triton needs at least one non-batch dim: [1] on the wire, reshaped to the graph's [batch]
        inputs.append(
            '  { name: "label" data_type: TYPE_INT64 dims: [ 1 ] reshape: { shape: [ ] } }'
        )
    h, w, c = image_shape
    preferred = ", ".join(str(b) for b in PREFERRED_BATCHES)
    return (
        f'name: "{name}"\n'
        'backend: "onnxruntime"\n'
        f"max_batch_size: {MAX_BATCH}\n"
        "input [\n" + ",\n".join(inputs) + "\n]\n"
        "output [\n"
        f'  {{ name: "image" data_type: TYPE_UINT8 dims: [ {h}, {w}, {c} ] }}\n'
        "]\n"
        "dynamic_batching {\n"
        f"  preferred_batch_size: [ {preferred} ]\n"
        f"  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}\n"
        "}\n"
        "instance_group [ { kind: KIND_AUTO } ]\n"
    )
