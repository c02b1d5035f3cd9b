"""The Open Inference Protocol, spoken by a client nobody here wrote: ``tritonclient[http]``.

A real uvicorn server serves two shipped models (one unconditional, one conditional)
and one refused model, behind an API key; the client reads metadata, sends latents
made by the latent contract as JSON or binary tensors, and must get back exactly
the images the ONNX session gives for the same latents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from test_service_e2e import free_port, start_server, stop, wait_ready

from ganserve.latent import make_latents
from service.config import Settings
from service.registry import session_options

httpclient = pytest.importorskip("tritonclient.http")
InferenceServerException = pytest.importorskip("tritonclient.utils").InferenceServerException

SHIPPED = Path(__file__).resolve().parents[2] / "models"
UNCONDITIONAL = "dcgan-fashion"
CONDITIONAL = "dcgan-cond-fashion"
KEY = "v2-test-key"


def auth() -> dict[str, str]:
    """The API key header, fresh each call: the client adds its own headers to the dict."""
    return {"Authorization": f"Bearer {KEY}"}


def shipped_models(root: Path, *names: str) -> Path:
    """A models directory holding links to shipped models."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).symlink_to(SHIPPED / name, target_is_directory=True)
    return root


def refused_copy(root: Path, name: str = "broken") -> None:
    """A model whose card does not match its model.onnx (refused at load)."""
    (root / name).mkdir()
    (root / name / "model.onnx").symlink_to(SHIPPED / UNCONDITIONAL / "model.onnx")
    card = json.loads((SHIPPED / UNCONDITIONAL / "card.json").read_text())
    card.update(name=name, sha256="0" * 64)
    (root / name / "card.json").write_text(json.dumps(card))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m service`` with two shipped models, a refused one and an API key."""
    root = shipped_models(tmp_path_factory.mktemp("v2") / "models", UNCONDITIONAL, CONDITIONAL)
    refused_copy(root)
    port = free_port()
    args = ["-m", "service", "--port", str(port), "--models-dir", str(root)]
    proc = start_server(args, {"GANSERVE_LOG_LEVEL": "warning", "GANSERVE_API_KEY": KEY})
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}")
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpclient.InferenceServerClient]:
    with httpclient.InferenceServerClient(server) as c:
        yield c


def onnx_images(name: str, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """What the model's ONNX session gives for z (and labels), run here without the service."""
    session = ort.InferenceSession(
        str(SHIPPED / name / "model.onnx"),
        sess_options=session_options(Settings()),
        providers=["CPUExecutionProvider"],
    )
    feeds = {"z": z} if labels is None else {"z": z, "label": labels}
    return session.run(["image"], feeds)[0]


def tensor(name: str, array: np.ndarray, datatype: str, binary: bool) -> httpclient.InferInput:
    item = httpclient.InferInput(name, list(array.shape), datatype)
    item.set_data_from_numpy(array, binary_data=binary)
    return item


def test_health_and_server_metadata(client: httpclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "ganserve"
    assert "binary_tensor_data" in meta["extensions"]
    assert client.is_model_ready(UNCONDITIONAL, headers=auth())
    assert client.is_model_ready(CONDITIONAL, headers=auth())
    assert not client.is_model_ready("no-such-model", headers=auth())
    assert not client.is_model_ready("broken", headers=auth())
    assert not client.is_model_ready(UNCONDITIONAL)  # no API key


@pytest.mark.parametrize("name", [UNCONDITIONAL, CONDITIONAL])
def test_model_metadata_follows_the_model_contract(
    client: httpclient.InferenceServerClient, name: str
) -> None:
    card = json.loads((SHIPPED / name / "card.json").read_text())
    meta = client.get_model_metadata(name, headers=auth())
    assert meta["name"] == name
    assert meta["platform"] == "onnxruntime_onnx"
    inputs = {"z": {"name": "z", "datatype": "FP32", "shape": [-1, card["latent_dim"]]}}
    if card["conditional"]:
        inputs["label"] = {"name": "label", "datatype": "INT64", "shape": [-1]}
    assert meta["inputs"] == list(inputs.values())
    assert meta["outputs"] == [
        {"name": "image", "datatype": "UINT8", "shape": [-1, *card["image_shape"]]}
    ]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("name", [UNCONDITIONAL, CONDITIONAL])
def test_latents_round_trip_to_the_onnx_images_bit_exactly(
    client: httpclient.InferenceServerClient, name: str, binary: bool
) -> None:
    """The metadata says what to send; the images equal the ONNX session's byte for byte."""
    meta = client.get_model_metadata(name, headers=auth())
    by_name = {i["name"]: i for i in meta["inputs"]}
    latent_dim = by_name["z"]["shape"][1]
    z = make_latents(11, 6, latent_dim)
    inputs = [tensor("z", z, by_name["z"]["datatype"], binary)]
    labels = None
    if "label" in by_name:
        labels = np.array([7, 0, 9, 3, 7, 8], dtype=np.int64)
        inputs.append(tensor("label", labels, by_name["label"]["datatype"], binary))
    outputs = [httpclient.InferRequestedOutput("image", binary_data=binary)]
    result = client.infer(name, inputs, outputs=outputs, request_id="r-1", headers=auth())
    images = result.as_numpy("image")
    expected = onnx_images(name, z, labels)
    assert images.dtype == np.uint8 and images.shape == (6, *expected.shape[1:])
    assert np.array_equal(images, expected)
    response = result.get_response()
    assert response["model_name"] == name and response["id"] == "r-1"
    assert ("binary_data_size" in response["outputs"][0].get("parameters", {})) == binary


def test_a_row_does_not_depend_on_the_batch(client: httpclient.InferenceServerClient) -> None:
    """Latent row i of seed s gives the same image in a batch of 1 and of 64 (no outputs asked:
    the client asks for every output as binary data)."""
    z = make_latents(5, 64, 100)
    big = client.infer(UNCONDITIONAL, [tensor("z", z, "FP32", True)], headers=auth())
    one = client.infer(UNCONDITIONAL, [tensor("z", z[:1], "FP32", True)], headers=auth())
    assert np.array_equal(big.as_numpy("image")[:1], one.as_numpy("image"))
    assert np.array_equal(big.as_numpy("image"), onnx_images(UNCONDITIONAL, z))


def z_of(shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


BAD_INPUTS = {
    "wrong shape": (
        UNCONDITIONAL,
        lambda b: [tensor("z", z_of((2, 99)), "FP32", b)],
        "400",
        "input 'z' has shape [2, 99]; model dcgan-fashion takes [-1, 100]",
    ),
    "one dimension": (
        UNCONDITIONAL,
        lambda b: [tensor("z", z_of((100,)), "FP32", b)],
        "400",
        "input 'z' has shape [100]",
    ),
    "wrong datatype": (
        UNCONDITIONAL,
        lambda b: [tensor("z", z_of((2, 100), "float64"), "FP64", b)],
        "400",
        "input 'z' must be FP32, not FP64",
    ),
    "NaN in z": (
        UNCONDITIONAL,
        lambda b: [tensor("z", np.full((2, 100), np.nan, np.float32), "FP32", b)],
        "400",
        "input 'z' holds 200 values that are NaN or infinite",
    ),
    "infinity in z": (
        UNCONDITIONAL,
        lambda b: [tensor("z", np.array([[np.inf] + [0.0] * 99], np.float32), "FP32", b)],
        "400",
        "input 'z' holds 1 values that are NaN or infinite",
    ),
    "oversized batch": (
        UNCONDITIONAL,
        lambda b: [tensor("z", z_of((257, 100)), "FP32", b)],
        "400",
        "the batch of 257 latents is over the limit of 256",
    ),
    "empty batch": (
        UNCONDITIONAL,
        lambda b: [tensor("z", z_of((0, 100)), "FP32", b)],
        "400",
        "its batch is 0",
    ),
    "unknown model": (
        "no-such-model",
        lambda b: [tensor("z", z_of((1, 100)), "FP32", b)],
        "404",
        "unknown model 'no-such-model'; available models: dcgan-cond-fashion, dcgan-fashion",
    ),
    "refused model": (
        "broken",
        lambda b: [tensor("z", z_of((1, 100)), "FP32", b)],
        "503",
        "model 'broken' is not being served: sha256 of model.onnx is",
    ),
    "label for an unconditional model": (
        UNCONDITIONAL,
        lambda b: [
            tensor("z", z_of((1, 100)), "FP32", b),
            tensor("label", np.zeros(1, np.int64), "INT64", b),
        ],
        "400",
        "model dcgan-fashion has no input 'label'",
    ),
    "missing label": (
        CONDITIONAL,
        lambda b: [tensor("z", z_of((1, 100)), "FP32", b)],
        "400",
        "input 'label' (INT64 [-1]) is missing",
    ),
    "label out of range": (
        CONDITIONAL,
        lambda b: [
            tensor("z", z_of((2, 100)), "FP32", b),
            tensor("label", np.array([3, 10], np.int64), "INT64", b),
        ],
        "400",
        "label 10 is outside [0, 10) for model dcgan-cond-fashion",
    ),
    "labels for another batch": (
        CONDITIONAL,
        lambda b: [
            tensor("z", z_of((2, 100)), "FP32", b),
            tensor("label", np.array([3], np.int64), "INT64", b),
        ],
        "400",
        "input 'label' has 1 labels for 2 latents",
    ),
    "INT32 labels": (
        CONDITIONAL,
        lambda b: [
            tensor("z", z_of((1, 100)), "FP32", b),
            tensor("label", np.array([3], np.int32), "INT32", b),
        ],
        "400",
        "input 'label' must be INT64, not INT32",
    ),
}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_get_a_protocol_error(
    client: httpclient.InferenceServerClient, case: str, binary: bool
) -> None:
    name, make_inputs, status, message = BAD_INPUTS[case]
    with pytest.raises(InferenceServerException) as info:
        client.infer(name, make_inputs(binary), headers=auth())
    assert info.value.status() == status, info.value.message()
    assert message in info.value.message()


def test_unknown_output_and_missing_key_get_protocol_errors(
    client: httpclient.InferenceServerClient,
) -> None:
    inputs = [tensor("z", z_of((1, 100)), "FP32", True)]
    with pytest.raises(InferenceServerException) as info:
        client.infer(UNCONDITIONAL, inputs, outputs=[httpclient.InferRequestedOutput("logits")])
    assert info.value.status() == "401"
    assert "API key" in info.value.message()
    outputs = [httpclient.InferRequestedOutput("logits")]
    with pytest.raises(InferenceServerException) as info:
        client.infer(UNCONDITIONAL, inputs, outputs=outputs, headers=auth())
    assert info.value.status() == "400"
    assert "there is no output 'logits'; the output is 'image'" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("broken", headers=auth())
    assert info.value.status() == "503"
    assert "the card says 0000" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        client.infer(UNCONDITIONAL, inputs, model_version="2", headers=auth())
    assert info.value.status() == "404"
    assert "leave /versions/<version> out" in info.value.message()
