"""The Open Inference Protocol, spoken by a client nobody here wrote: ``tritonclient[http]``.

A real uvicorn server serves two shipped models (one unconditional, one conditional)
and one refused model, behind an API key; the client reads metadata, sends latents
made by the latent contract as JSON or binary tensors, and must get back exactly
the images the ONNX session gives for the same latents.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
from fastapi.testclient import TestClient
from service_testlib import metric_value
from test_service_e2e import free_port, start_server, stop, wait_ready
from tritonclient.utils import InferenceServerException

from ganserve.latent import make_latents
from service import graph_rewrite
from service.app import create_app
from service.config import Settings
from service.registry import probe_feeds, session_options

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
    """What the model's ONNX session gives for z (and labels), run here without the service,
    on the graph the service runs (the file's, as service.graph_rewrite rewrites it)."""
    model_bytes = (SHIPPED / name / "model.onnx").read_bytes()
    probe = probe_feeds(z.shape[1], 10 if labels is not None else 0, 2)
    session = ort.InferenceSession(
        graph_rewrite.rewrite(model_bytes, probe).model_bytes,
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


def z_and_labels(
    n: int, labels: np.ndarray, datatype: str = "INT64"
) -> Callable[[bool], list[httpclient.InferInput]]:
    """Inputs of ``n`` zero latents and ``labels`` (as ``datatype``), binary or JSON."""
    return lambda b: [
        tensor("z", z_of((n, 100)), "FP32", b),
        tensor("label", labels, datatype, b),
    ]


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
        z_and_labels(1, np.zeros(1, np.int64)),
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
        z_and_labels(2, np.array([3, 10], np.int64)),
        "400",
        "label 10 is outside [0, 10) for model dcgan-cond-fashion",
    ),
    "labels for another batch": (
        CONDITIONAL,
        z_and_labels(2, np.array([3], np.int64)),
        "400",
        "input 'label' has 1 labels for 2 latents",
    ),
    "INT32 labels": (
        CONDITIONAL,
        z_and_labels(1, np.array([3], np.int32), "INT32"),
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


def test_concurrent_clients_share_session_runs(server: str) -> None:
    """v2 requests go through the model's batcher: 16 at once take fewer runs than requests."""
    z = make_latents(2, 16, 100)
    with httpclient.InferenceServerClient(server, concurrency=16) as c:
        before = c.get_server_metadata()  # a connection is up before the burst
        assert before["name"] == "ganserve"
        pending = [
            c.async_infer(UNCONDITIONAL, [tensor("z", z[i : i + 1], "FP32", True)], headers=auth())
            for i in range(16)
        ]
        images = np.concatenate([p.get_result().as_numpy("image") for p in pending])
    assert np.array_equal(images, onnx_images(UNCONDITIONAL, z))
    text = httpx.get(f"http://{server}/metrics").text
    runs = metric_value(text, "ganserve_session_runs_total", model=UNCONDITIONAL)
    infers = metric_value(
        text, "ganserve_requests_total", route="/v2/models/{name}/infer", status="200"
    )
    assert infers >= 16
    assert runs < infers, f"{runs} session runs for {infers} inference requests"


# -- the protocol's edges, in process -----------------------------------------------------


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = shipped_models(tmp_path_factory.mktemp("v2-app") / "models", UNCONDITIONAL, CONDITIONAL)
    refused_copy(root)
    settings = Settings(models_dir=root, max_infer_body_bytes=200_000)
    with TestClient(create_app(settings)) as c:
        yield c


def infer(client: TestClient, name: str, body: bytes | dict, **headers: str) -> httpx.Response:
    path = f"/v2/models/{name}/infer"
    if isinstance(body, dict):
        return client.post(path, json=body, headers=headers)
    return client.post(path, content=body, headers=headers)


def z_input(z: np.ndarray) -> dict:
    return {"name": "z", "shape": list(z.shape), "datatype": "FP32", "data": z.ravel().tolist()}


def binary_request(inputs: list[tuple[str, np.ndarray, str]], **request) -> tuple[bytes, str]:
    """A body with the binary tensor data extension, and its JSON header length."""
    header = {
        "inputs": [
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": array.nbytes},
            }
            for name, array, datatype in inputs
        ],
        **request,
    }
    head = json.dumps(header).encode()
    return head + b"".join(a.tobytes() for _, a, _ in inputs), str(len(head))


def test_nested_json_data_is_the_same_as_flat(app_client: TestClient) -> None:
    z = make_latents(1, 3, 100)
    flat = infer(app_client, UNCONDITIONAL, {"inputs": [z_input(z)]})
    nested = {"name": "z", "shape": [3, 100], "datatype": "FP32", "data": z.tolist()}
    assert flat.status_code == 200
    assert infer(app_client, UNCONDITIONAL, {"inputs": [nested]}).content == flat.content
    body = flat.json()
    assert "id" not in body
    assert body["outputs"][0]["shape"] == [3, 28, 28, 1]
    data = np.array(body["outputs"][0]["data"], dtype=np.uint8).reshape(3, 28, 28, 1)
    assert np.array_equal(data, onnx_images(UNCONDITIONAL, z))


def test_binary_output_is_raw_uint8_after_the_json_header(app_client: TestClient) -> None:
    z = make_latents(1, 2, 100)
    labels = np.array([4, 1], dtype=np.int64)
    body, length = binary_request(
        [("z", z, "FP32"), ("label", labels, "INT64")],
        outputs=[{"name": "image", "parameters": {"binary_data": True}}],
    )
    r = infer(app_client, CONDITIONAL, body, **{"Inference-Header-Content-Length": length})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    n = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:n])
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 2 * 28 * 28}
    images = np.frombuffer(r.content[n:], dtype=np.uint8).reshape(2, 28, 28, 1)
    assert np.array_equal(images, onnx_images(CONDITIONAL, z, labels))


def test_compressed_requests_are_read(app_client: TestClient) -> None:
    z = make_latents(1, 2, 100)
    plain = json.dumps({"inputs": [z_input(z)]}).encode()
    expected = infer(app_client, UNCONDITIONAL, plain).content
    gz = infer(app_client, UNCONDITIONAL, gzip.compress(plain), **{"Content-Encoding": "gzip"})
    assert gz.status_code == 200 and gz.content == expected
    zl = infer(app_client, UNCONDITIONAL, zlib.compress(plain), **{"Content-Encoding": "deflate"})
    assert zl.status_code == 200 and zl.content == expected


RAW_ERRORS = {
    "not JSON": (b"{inputs", {}, 400, "not an inference request: Invalid JSON"),
    "no inputs": (b'{"id": "1"}', {}, 400, "not an inference request: inputs: Field required"),
    "no shape": (
        b'{"inputs": [{"name": "z", "datatype": "FP32", "data": [1]}]}',
        {},
        400,
        "inputs.0.shape: Field required",
    ),
    "no data": (
        b'{"inputs": [{"name": "z", "shape": [1, 100], "datatype": "FP32"}]}',
        {},
        400,
        "input 'z' has neither data nor parameters.binary_data_size",
    ),
    "too few values": (
        json.dumps(
            {"inputs": [{"name": "z", "shape": [2, 100], "datatype": "FP32", "data": [0] * 100}]}
        ).encode(),
        {},
        400,
        "input 'z' has 100 values; shape [2, 100] takes 200",
    ),
    "text values": (
        json.dumps(
            {"inputs": [{"name": "z", "shape": [1, 100], "datatype": "FP32", "data": ["0"] * 100}]}
        ).encode(),
        {},
        400,
        "input 'z' is FP32: its data must be numbers",
    ),
    "ragged": (
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "z",
                        "shape": [2, 100],
                        "datatype": "FP32",
                        "data": [[0] * 100, [0] * 99 + [[0]]],
                    }
                ]
            }
        ).encode(),
        {},
        400,
        "input 'z': data is not a rectangular array",
    ),
    "duplicate input": (
        json.dumps(
            {"inputs": [{"name": "z", "shape": [1, 1], "datatype": "FP32", "data": [0]}] * 2}
        ).encode(),
        {},
        400,
        "inputs are named more than once: ['z', 'z']",
    ),
    "header length not a number": (
        b"{}",
        {"Inference-Header-Content-Length": "ten"},
        400,
        "Inference-Header-Content-Length must be an integer, not 'ten'",
    ),
    "header length past the body": (
        b"{}",
        {"Inference-Header-Content-Length": "99"},
        400,
        "Inference-Header-Content-Length is 99, but the request body has 2 bytes",
    ),
    "unknown encoding": (
        b"{}",
        {"Content-Encoding": "br"},
        415,
        "Content-Encoding 'br' is not supported",
    ),
    "corrupt gzip": (
        b"not gzip",
        {"Content-Encoding": "gzip"},
        400,
        "the body is not valid gzip data",
    ),
    "too large": (b"[" + b"0," * 150_000 + b"0]", {}, 413, "larger than 200000 bytes"),
    "classification": (
        json.dumps(
            {"inputs": [], "outputs": [{"name": "image", "parameters": {"classification": 3}}]}
        ).encode(),
        {},
        400,
        "the classification extension is not supported",
    ),
    "binary_data as text": (
        json.dumps({"inputs": [], "parameters": {"binary_data_output": "yes"}}).encode(),
        {},
        400,
        "parameter binary_data_output must be true or false, not 'yes'",
    ),
}


@pytest.mark.parametrize("case", list(RAW_ERRORS))
def test_malformed_requests_get_protocol_errors(app_client: TestClient, case: str) -> None:
    body, headers, status, message = RAW_ERRORS[case]
    r = infer(app_client, UNCONDITIONAL, body, **headers)
    assert r.status_code == status, r.text
    assert list(r.json()) == ["error"]
    assert message in r.json()["error"]


@pytest.mark.parametrize(
    ("declared", "extra", "message"),
    [
        (800, b"", "input 'z' declares 800 bytes of binary data, but only 400 follow the JSON"),
        (400, b"\0" * 8, "8 bytes follow the binary data the inputs declare (400 bytes)"),
        (396, b"", "input 'z' has 396 bytes of binary data; FP32 [1, 100] takes 400"),
    ],
)
def test_binary_data_of_the_wrong_size_is_refused(
    app_client: TestClient, declared: int, extra: bytes, message: str
) -> None:
    z = make_latents(0, 1, 100)
    body, length = binary_request([("z", z, "FP32")])
    body = body.replace(b'"binary_data_size": 400', f'"binary_data_size": {declared}'.encode())
    length = str(int(length) + len(str(declared)) - 3)
    if declared < 400:
        body = body[: len(body) - (400 - declared)]
    r = infer(
        app_client, UNCONDITIONAL, body + extra, **{"Inference-Header-Content-Length": length}
    )
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_the_image_routes_keep_their_own_body_limit(app_client: TestClient) -> None:
    big = {"n": 1, "padding": 1, "filler": "x" * 70_000}
    r = app_client.post("/generate", json=big)
    assert r.status_code == 413
    assert "larger than 65536 bytes" in r.json()["detail"]


def test_other_paths_and_methods_get_protocol_404s(app_client: TestClient) -> None:
    for method, path in [
        ("GET", "/v2/models/dcgan-fashion/infer"),
        ("GET", "/v2/models/dcgan-fashion/stats"),
        ("POST", "/v2/repository/index"),
    ]:
        r = app_client.request(method, path)
        assert r.status_code == 404
        assert r.json() == {"error": f"no endpoint {method} {path}"}


def test_metrics_count_v2_requests_and_their_batches(app_client: TestClient) -> None:
    def value(name: str, **labels: str) -> float:
        return metric_value(app_client.get("/metrics").text, name, **labels)

    route = "/v2/models/{name}/infer"
    before = value("ganserve_requests_total", route=route, status="200")
    images = value("ganserve_images_total", model=UNCONDITIONAL)
    z = make_latents(0, 5, 100)
    assert infer(app_client, UNCONDITIONAL, {"inputs": [z_input(z)]}).status_code == 200
    assert infer(app_client, "no-such-model", {"inputs": []}).status_code == 404
    assert value("ganserve_requests_total", route=route, status="200") == before + 1
    assert value("ganserve_requests_total", route=route, status="404") >= 1
    assert value("ganserve_images_total", model=UNCONDITIONAL) == images + 5
    assert value("ganserve_encode_seconds_count", format="tensor-json") >= 1


def test_not_ready_and_still_loading_answer_503_in_the_protocol_shape(
    tmp_path: Path,
) -> None:
    client = TestClient(create_app(Settings(models_dir=shipped_models(tmp_path, UNCONDITIONAL))))
    r = client.get("/v2/health/ready")  # lifespan not entered: nothing loaded yet
    assert r.status_code == 503 and "loading" in r.json()["error"]
    r = client.get(f"/v2/models/{UNCONDITIONAL}")
    assert r.status_code == 503 and r.json() == {"error": "the models are still loading"}
    assert client.get("/v2/health/live").status_code == 200
    with TestClient(create_app(Settings(models_dir=tmp_path / "empty-dir"))) as empty:
        r = empty.get("/v2/health/ready")
        assert r.status_code == 503 and "no model could be loaded" in r.json()["error"]
