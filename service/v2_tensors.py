"""Open Inference Protocol tensors: inference requests in, uint8 images out (no HTTP here).

``decode_request`` reads an inference request body: JSON alone, or, with the binary
tensor data extension, a JSON header of ``Inference-Header-Content-Length`` bytes
followed by each binary input's raw little-endian bytes, in input order.
``read_inputs`` holds the request against one model and the service's limits and
returns its latents and labels; ``encode_response`` writes the images back as JSON
or as binary data. Bad input raises ``ProtocolError`` with the message for the client.

A model's tensors follow the model contract: ``z`` FP32 [batch, latent_dim],
``label`` INT64 [batch] for conditional models, ``image`` UINT8 [batch, H, W, C].
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from service.config import Settings
from service.registry import LoadedModel
from service.v2_schemas import InferenceRequest, MetadataTensor, ModelMetadata, RequestInput

PLATFORM = "onnxruntime_onnx"  # Triton's name for models run by ONNX Runtime
EXTENSIONS = ["binary_tensor_data"]
OUTPUT = "image"
# The datatypes of the contract, as little-endian NumPy types (the binary extension's order).
NUMPY_TYPES: dict[str, np.dtype] = {"FP32": np.dtype("<f4"), "INT64": np.dtype("<i8")}
# Which JSON values each datatype takes: NumPy's kinds of the array JSON data makes.
JSON_KINDS = {"FP32": ("iuf", "numbers"), "INT64": ("iu", "integers")}


class ProtocolError(Exception):
    """A request the protocol cannot serve: an HTTP status and a message for the client."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class DecodedRequest:
    """An inference request's JSON, and the bytes of each input sent as binary data."""

    request: InferenceRequest
    binary: dict[str, memoryview]


def input_specs(model: LoadedModel) -> list[MetadataTensor]:
    """The model's inputs: z, and label for conditional models."""
    specs = [MetadataTensor(name="z", datatype="FP32", shape=[-1, model.latent_dim])]
    if model.conditional:
        specs.append(MetadataTensor(name="label", datatype="INT64", shape=[-1]))
    return specs


def model_metadata(model: LoadedModel) -> ModelMetadata:
    """The protocol's model metadata: inputs and output of the model contract."""
    return ModelMetadata(
        name=model.name,
        platform=PLATFORM,
        inputs=input_specs(model),
        outputs=[MetadataTensor(name=OUTPUT, datatype="UINT8", shape=[-1, *model.image_shape])],
    )


def _describe(exc: ValidationError) -> str:
    """The first validation errors of a request as one line: where, and what is wrong."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)


def decode_request(body: bytes, header_length: str | None) -> DecodedRequest:
    """Parse an inference request body; header_length is Inference-Header-Content-Length."""
    rest = memoryview(b"")
    head = body
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError:
            raise ProtocolError(
                f"Inference-Header-Content-Length must be an integer, not {header_length!r}"
            ) from None
        if not 0 < length <= len(body):
            raise ProtocolError(
                f"Inference-Header-Content-Length is {length}, "
                f"but the request body has {len(body)} bytes"
            )
        head, rest = body[:length], memoryview(body)[length:]
    try:
        request = InferenceRequest.model_validate_json(head)
    except ValidationError as exc:
        raise ProtocolError(f"not an inference request: {_describe(exc)}") from None
    names = [item.name for item in request.inputs]
    if len(set(names)) != len(names):
        raise ProtocolError(f"inputs are named more than once: {names}")
    binary: dict[str, memoryview] = {}
    offset = 0
    for item in request.inputs:
        size = (item.parameters or {}).get("binary_data_size")
        if size is None:
            if item.data is None:
                raise ProtocolError(
                    f"input {item.name!r} has neither data nor parameters.binary_data_size"
                )
            continue
        if item.data is not None:
            raise ProtocolError(f"input {item.name!r} has both data and binary_data_size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(
                f"input {item.name!r}: binary_data_size must be a byte count, not {size!r}"
            )
        if offset + size > len(rest):
            raise ProtocolError(
                f"input {item.name!r} declares {size} bytes of binary data, but only "
                f"{len(rest) - offset} follow"
                + (" the JSON" if offset == 0 else " the inputs before it")
                + ("" if header_length else " (no Inference-Header-Content-Length header)")
            )
        binary[item.name] = rest[offset : offset + size]
        offset += size
    if offset != len(rest):
        raise ProtocolError(
            f"{len(rest) - offset} bytes follow the binary data the inputs declare ({offset} bytes)"
        )
    return DecodedRequest(request, binary)


def _tensor(item: RequestInput, raw: memoryview | None) -> np.ndarray:
    """An input's values as an array of its shape (datatype checked already)."""
    dtype = NUMPY_TYPES[item.datatype]
    count = math.prod(item.shape)
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise ProtocolError(
                f"input {item.name!r} has {len(raw)} bytes of binary data; {item.datatype} "
                f"{item.shape} takes {count * dtype.itemsize}"
            )
        return np.frombuffer(raw, dtype=dtype).reshape(item.shape)
    try:
        values = np.asarray(item.data)
    except ValueError:  # ragged nesting
        raise ProtocolError(f"input {item.name!r}: data is not a rectangular array") from None
    if values.size != count:
        raise ProtocolError(
            f"input {item.name!r} has {values.size} values; shape {item.shape} takes {count}"
        )
    kinds, what = JSON_KINDS[item.datatype]
    if values.dtype.kind not in kinds:
        raise ProtocolError(f"input {item.name!r} is {item.datatype}: its data must be {what}")
    with np.errstate(over="ignore"):  # beyond float32's range: infinite, refused below
        return values.astype(dtype).reshape(item.shape)


def read_inputs(
    decoded: DecodedRequest, model: LoadedModel, settings: Settings
) -> tuple[np.ndarray, np.ndarray | None]:
    """The request's latents z [batch, latent_dim] and labels [batch] (None if unconditional)."""
    specs = {spec.name: spec for spec in input_specs(model)}
    given = {item.name: item for item in decoded.request.inputs}
    described = " and ".join(f"{s.name!r} {s.datatype} {s.shape}" for s in specs.values())
    for name in given:
        if name not in specs:
            raise ProtocolError(f"model {model.name} has no input {name!r}; it takes {described}")
    for name, spec in specs.items():
        if name not in given:
            raise ProtocolError(f"input {name!r} ({spec.datatype} {spec.shape}) is missing")
    for name, item in given.items():
        spec = specs[name]
        if item.datatype != spec.datatype:
            raise ProtocolError(f"input {name!r} must be {spec.datatype}, not {item.datatype}")
        if len(item.shape) != len(spec.shape) or any(
            want not in (-1, got) or got < 0
            for want, got in zip(spec.shape, item.shape, strict=True)
        ):
            raise ProtocolError(
                f"input {name!r} has shape {item.shape}; model {model.name} takes {spec.shape}"
            )
    batch = given["z"].shape[0]
    if batch < 1:
        raise ProtocolError("input 'z' holds no latents (its batch is 0)")
    if batch > settings.max_n:
        raise ProtocolError(f"the batch of {batch} latents is over the limit of {settings.max_n}")
    h, w, _ = model.image_shape
    if batch * h * w > settings.max_grid_pixels:
        raise ProtocolError(
            f"the batch's images would have {batch * h * w} pixels; "
            f"at most {settings.max_grid_pixels} per request"
        )
    z = _tensor(given["z"], decoded.binary.get("z"))
    bad = int(np.count_nonzero(~np.isfinite(z)))
    if bad:
        raise ProtocolError(
            f"input 'z' holds {bad} values that are NaN or infinite (or beyond FP32's range)"
        )
    if not model.conditional:
        return z, None
    item = given["label"]
    if item.shape[0] != batch:
        raise ProtocolError(f"input 'label' has {item.shape[0]} labels for {batch} latents")
    labels = _tensor(item, decoded.binary.get("label"))
    outside = labels[(labels < 0) | (labels >= model.num_classes)]
    if outside.size:
        raise ProtocolError(
            f"label {int(outside[0])} is outside [0, {model.num_classes}) for model {model.name}"
        )
    return z, labels


def wants_binary(request: InferenceRequest) -> bool:
    """Whether the image goes back as binary data; checks the outputs asked for."""

    def flag(parameters: dict[str, Any] | None, key: str, default: bool) -> bool:
        value = (parameters or {}).get(key, default)
        if not isinstance(value, bool):
            raise ProtocolError(f"parameter {key} must be true or false, not {value!r}")
        return value

    binary = flag(request.parameters, "binary_data_output", False)
    outputs = request.outputs or []
    for output in outputs:
        if output.name != OUTPUT:
            raise ProtocolError(f"there is no output {output.name!r}; the output is {OUTPUT!r}")
        if (output.parameters or {}).get("classification"):
            raise ProtocolError("the classification extension is not supported")
    if len(outputs) > 1:
        raise ProtocolError(f"output {OUTPUT!r} is asked for {len(outputs)} times")
    for output in outputs:
        binary = flag(output.parameters, "binary_data", binary)
    return binary


def encode_response(
    model: str, request_id: str | None, images: np.ndarray, binary: bool
) -> tuple[bytes, dict[str, str], str]:
    """The response body, its extra headers and its media type, for uint8 images."""
    output: dict[str, Any] = {"name": OUTPUT, "datatype": "UINT8", "shape": list(images.shape)}
    head: dict[str, Any] = {"model_name": model}
    if request_id is not None:
        head["id"] = request_id
    head["outputs"] = [output]
    if binary:
        data = np.ascontiguousarray(images).tobytes()
        output["parameters"] = {"binary_data_size": len(data)}
        header = json.dumps(head, separators=(",", ":")).encode()
        extra = {"Inference-Header-Content-Length": str(len(header))}
        return header + data, extra, "application/octet-stream"
    output["data"] = images.reshape(-1).tolist()
    return json.dumps(head, separators=(",", ":")).encode(), {}, "application/json"
