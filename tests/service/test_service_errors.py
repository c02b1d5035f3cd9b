"""Bad input: clear 4xx errors in FastAPI's JSON shape, never a 500 or a traceback."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from service_testlib import metric_value

from service.deps import get_image_service


def error_messages(body: dict) -> str:
    """Every message of an error body, joined (detail is a string or a list of errors)."""
    detail = body["detail"]
    return detail if isinstance(detail, str) else " | ".join(e["msg"] for e in detail)


def assert_422(response, field: str | None, fragment: str) -> None:
    """A 422 whose errors include ``fragment``, located at ``field`` when given."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    assert fragment in error_messages(response.json())
    if field is not None:
        assert any(field in [str(p) for p in e["loc"]] for e in detail), detail


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("path", "fields", "field", "fragment"),
    [
        ("/generate", {"n": 0}, "n", "greater than or equal to 1"),
        ("/generate", {"n": -3}, "n", "greater than or equal to 1"),
        ("/generate", {"n": 257}, "n", "at most 256"),
        ("/generate", {"n": "many"}, "n", "valid integer"),
        ("/generate", {"seed": -1}, "seed", "greater than or equal to 0"),
        ("/generate", {"scale": 9}, "scale", "at most 8"),
        ("/generate", {"padding": 17}, "padding", "at most 16"),
        ("/generate", {"format": "gif"}, "format", "'png' or 'json'"),
        ("/generate", {"colour": "red"}, "colour", "Extra inputs are not permitted"),
        ("/conditional", {"n": 200}, None, "at most 1024 per request"),
        ("/conditional", {"labels": ["Spaceship"]}, "labels", "unknown label 'Spaceship'"),
        ("/conditional", {"labels": [10]}, "labels", "outside [0, 10)"),
        ("/conditional", {"model": "dcgan-fashion"}, "model", "is unconditional"),
        ("/perturb", {"n": 100}, None, "1500 images (15 rows x 100 columns)"),
        ("/perturb", {"dims": [100]}, "dims", "dimension 100 is outside [0, 100)"),
        ("/perturb", {"dims": [-1]}, "dims", "greater than or equal to 0"),
        ("/perturb", {"values": [11]}, "values", "beyond the bound"),
        ("/perturb", {"values": [-1e300]}, "values", "beyond the bound"),
        ("/perturb", {"mode": "rotate"}, "mode", "'set', 'add', 'scale', 'noise' or 'label'"),
        ("/perturb", {"label": 3}, "label", "unconditional and takes no labels"),
        ("/perturb", {"mode": "label"}, "mode", "needs a conditional model"),
        ("/perturb", {"labels": [1, 2]}, "labels", "labels sets the rows of mode=label"),
        (
            "/perturb",
            {"model": "cgan-fashion", "mode": "label", "labels": ["Hat"]},
            "labels",
            "unknown label 'Hat'",
        ),
        ("/perturb", {"model": "cgan-fashion", "label": 12}, "label", "outside [0, 10)"),
    ],
)
def test_invalid_fields_get_422(
    client: TestClient, method: str, path: str, fields: dict, field: str | None, fragment: str
) -> None:
    if method == "POST":
        r = client.post(path, json=fields)
    else:
        query = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in fields.items()}
        r = client.get(path, params=query)
    assert_422(r, field, fragment)
    assert field is None or r.json()["detail"][0]["loc"][0] == (
        "body" if method == "POST" else "query"
    )


def test_empty_values_gets_422(client: TestClient) -> None:
    assert_422(client.post("/perturb", json={"values": []}), "values", "at least 1 item")


@pytest.mark.parametrize(
    "raw", [b'{"values": [NaN]}', b'{"values": [Infinity]}', b'{"values": [-Infinity]}']
)
def test_non_finite_values_in_json_get_422(client: TestClient, raw: bytes) -> None:
    r = client.post("/perturb", content=raw, headers={"content-type": "application/json"})
    assert_422(r, "values", "finite number")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_values_in_query_get_422(client: TestClient, value: str) -> None:
    assert_422(client.get("/perturb", params={"values": f"1,{value}"}), "values", "finite number")


def test_too_many_pixels_gets_422(client: TestClient) -> None:
    r = client.post("/generate", json={"model": "dcgan64-rgb", "n": 256, "scale": 8})
    assert_422(r, "scale", "pixels")


@pytest.mark.parametrize("path", ["/generate", "/conditional", "/perturb"])
def test_unknown_model_gets_404_naming_the_served_ones(client: TestClient, path: str) -> None:
    r = client.post(path, json={"model": "stylegan9"})
    assert r.status_code == 404
    message = r.json()["detail"]
    assert "stylegan9" in message
    for name in ("cgan-fashion", "dcgan-fashion", "dcgan64-rgb"):
        assert name in message
    assert client.get("/models/stylegan9").status_code == 404


@pytest.mark.parametrize("raw", [b"{", b'{"n": 3,}', b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_json_gets_422(client: TestClient, raw: bytes) -> None:
    r = client.post("/generate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], list)


@pytest.mark.parametrize(
    "raw", [b"{", b'{"n": 0}', b'{"n": "many", "seed": -1}', b'{"nn": 1}', b"[1]", b"\xff"]
)
def test_errors_are_alike_for_every_json_content_type(client: TestClient, raw: bytes) -> None:
    # "application/json" takes the image routes' own handler, the other FastAPI's
    plain, charset = (
        client.post("/generate", content=raw, headers={"content-type": content_type})
        for content_type in ("application/json", "application/json; charset=utf-8")
    )
    assert plain.status_code == charset.status_code  # 400 for the byte that is not UTF-8
    assert 400 <= plain.status_code < 500
    assert plain.json() == charset.json()


def test_body_that_is_not_json_gets_422(client: TestClient) -> None:
    r = client.post("/generate", content=b"n=3", headers={"content-type": "text/plain"})
    assert r.status_code == 422


def test_oversized_body_gets_413(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(max_body_bytes=1000)) as client:
        big = b'{"seed": 1' + b" " * 2000 + b"}"
        r = client.post("/generate", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert "larger than 1000 bytes" in r.json()["detail"]

        def chunks():  # no Content-Length: the limit applies while the body streams in
            yield b'{"seed": 1'
            yield b" " * 2000
            yield b"}"

        r = client.post("/generate", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        ok = client.post("/generate", json={"seed": 1, "n": 1})
        assert ok.status_code == 200


def test_api_key_is_required_and_nothing_is_generated(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(api_key="s3cret")) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            for path in ("/generate", "/conditional", "/perturb"):
                r = client.post(path, json={"n": 2, "seed": 1}, headers=headers)
                assert r.status_code == 401, (path, headers)
                assert r.headers["www-authenticate"] == "Bearer"
                assert "API key" in r.json()["detail"]
            assert client.get("/models", headers=headers).status_code == 401
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "ganserve_images_total", model="dcgan-fashion") == 0
        good = {"Authorization": "Bearer s3cret"}
        for key in ("Bearer s3cret", "bearer s3cret", "Bearer  s3cret "):  # as HTTPBearer reads
            r = client.post("/generate", json={"n": 2}, headers={"Authorization": key})
            assert r.status_code == 200, key
        assert client.get("/models", headers=good).status_code == 200
        # probes and metrics stay open
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "ganserve_images_total", model="dcgan-fashion") == 6


def test_full_queue_gets_503_with_retry_after(make_app: Callable[..., FastAPI]) -> None:
    """With one request waiting (a long max_wait holds it), the next one is refused."""
    import threading

    app = make_app(max_queue=1, max_wait_ms=1500, max_batch=64)
    with TestClient(app) as client:
        first: dict = {}

        def waiting_request() -> None:
            first["r"] = client.post("/generate", json={"n": 1, "seed": 1})

        thread = threading.Thread(target=waiting_request)
        thread.start()
        batcher = app.state.batchers["dcgan-fashion"]
        for _ in range(200):  # until the first request is queued
            if batcher.queued:
                break
            threading.Event().wait(0.01)
        assert batcher.queued == 1
        r = client.post("/generate", json={"n": 1, "seed": 2})
        thread.join()
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert "queue is full" in r.json()["detail"]
        assert first["r"].status_code == 200
        assert (
            metric_value(
                client.get("/metrics").text, "ganserve_rejected_total", model="dcgan-fashion"
            )
            == 1
        )


def test_unexpected_errors_get_500_without_traceback(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()

    def broken() -> None:
        raise RuntimeError("secret internals at /srv/model.py line 12")

    app.dependency_overrides[get_image_service] = broken
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/generate", json={"n": 1})
        assert r.status_code == 500
        assert r.json() == {"detail": "internal server error"}
        assert "secret" not in r.text and "Traceback" not in r.text
        metrics = client.get("/metrics").text
        assert (
            metric_value(metrics, "ganserve_requests_total", route="/generate", status="500") == 1
        )


def test_unknown_path_gets_404(client: TestClient) -> None:
    r = client.get("/nothing-here")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}
