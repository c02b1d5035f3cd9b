"""Bodies of the Open Inference Protocol (KServe v2) routes, named as its REST specification does.

``InferenceRequest`` is also how ``service.v2_tensors`` reads the JSON part of an
inference request (what comes after it, with the binary tensor data extension, is
raw tensor bytes).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Parameters = dict[str, Any]  # the protocol's $parameters: name -> string, number or boolean


class ProtocolErrorResponse(BaseModel):
    """An error, in the protocol's shape."""

    error: str


class ServerMetadata(BaseModel):
    """The server's name, version and protocol extensions."""

    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    """One input or output: name, datatype and shape (-1: any size)."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """A model's inputs and outputs."""

    name: str
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class RequestInput(BaseModel):
    """An input tensor: its data as a (flat or nested) JSON array, or binary after the JSON."""

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = Field(
        default=None, description="binary_data_size: the tensor's bytes after the JSON, if binary."
    )
    data: list[Any] | None = None


class RequestOutput(BaseModel):
    """An output asked for; ``parameters.binary_data`` asks for it as binary data."""

    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    """An inference request: ``z`` FP32 [batch, latent_dim] (and ``label`` INT64 [batch])."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "1",
                    "inputs": [
                        {"name": "z", "shape": [1, 4], "datatype": "FP32", "data": [0, 1, 0, 1]}
                    ],
                }
            ]
        }
    )

    id: str | None = None
    parameters: Parameters | None = Field(
        default=None,
        description="binary_data_output: every output as binary data unless an output says not.",
    )
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    """An output tensor: data as a flat JSON array, or binary after the JSON."""

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[int] | None = None


class InferenceResponse(BaseModel):
    """The images: ``image`` UINT8 [batch, height, width, channels]."""

    model_name: str
    id: str | None = None
    outputs: list[ResponseOutput]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its nested models written in place (no $ref to resolve)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
