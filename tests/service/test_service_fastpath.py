"""The image POST fast path answers exactly as the full app would, and takes only what it may.

Every request below is sent to two apps over the same models: one with the fast
path (the default) and one with ``fast_path=False``, where every request takes
the middleware stack and FastAPI's handler. Status, body and headers must agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from service_testlib import metric_value

from service.fastpath import ImageFastPath

JSON = {"Content-Type": "application/json"}

# (path, body bytes, headers): valid requests, then refused ones of every kind
REQUESTS: list[tuple[str, bytes, dict[str, str]]] = [
    ("/generate", b'{"n": 3, "seed": 7}', JSON),
    ("/generate", b'{"n": 2, "seed": 1, "format": "json"}', JSON),
    ("/generate", b'{"model": "dcgan64-rgb", "n": 2, "scale": 2, "seed": 3}', JSON),
    ("/conditional", b'{"labels": ["Sneaker", 3], "n": 2, "seed": 4}', JSON),
    ("/perturb", b'{"dims": [5, 20], "values": [-3, 3], "n": 2, "seed": 5}', JSON),
    ("/generate", b'{"model": "nope"}', JSON),  # 404, raised while planning
    ("/conditional", b'{"n": 200}', JSON),  # 422, raised while planning
    ("/generate", b'{"n": 0}', JSON),  # 422 from validation
    ("/generate", b'{"n": ', JSON),  # malformed JSON
    ("/generate", b'{"n": NaN}', JSON),
    ("/generate", b"n=3", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("/generate", b'{"n": 2, "seed": 6}', {"Content-Type": "application/json; charset=utf-8"}),
    ("/generate", b'{"n": 2, "seed": 6}', {"Content-Type": "text/plain"}),
    ("/generate", b'{"n": 1, "seed": 2}' + b" " * 70000, JSON),  # 413
]


@pytest.fixture(scope="module")
def clients(models_dir: Any) -> Iterator[tuple[TestClient, TestClient]]:
    from service.app import create_app
    from service.config import Settings

    fast = create_app(Settings(models_dir=models_dir))
    full = create_app(Settings(models_dir=models_dir, fast_path=False))
    assert isinstance(fast.fast_path, ImageFastPath) and full.fast_path is None  # type: ignore[attr-defined]
    with TestClient(fast) as a, TestClient(full) as b:
        yield a, b


def comparable(response: Any) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k != "date"}
    return response.status_code, response.content, headers


@pytest.mark.parametrize(("path", "body", "headers"), REQUESTS)
def test_fast_path_answers_as_the_full_app(
    clients: tuple[TestClient, TestClient], path: str, body: bytes, headers: dict[str, str]
) -> None:
    fast, full = clients
    a = fast.post(path, content=body, headers=headers)
    b = full.post(path, content=body, headers=headers)
    assert comparable(a) == comparable(b)
    assert a.status_code < 500


def test_empty_body_draws_the_defaults(clients: tuple[TestClient, TestClient]) -> None:
    for client in clients:  # a random seed each, so only the shape can agree
        r = client.post("/generate", content=b"")
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
        assert r.headers["x-model"] == "dcgan-fashion" and int(r.headers["x-seed"]) >= 0


def test_chunked_bodies_are_answered_too(clients: tuple[TestClient, TestClient]) -> None:
    fast, full = clients

    def chunks() -> Iterator[bytes]:
        yield b'{"n": 2, '
        yield b'"seed": 5}'

    a = fast.post("/generate", content=chunks(), headers=JSON)
    b = full.post("/generate", content=chunks(), headers=JSON)
    assert a.status_code == 200 and comparable(a) == comparable(b)


def count_full_stack(app: FastAPI) -> list[str]:
    """Record the path of every request the fast path passes on to the full app."""
    path = app.fast_path  # type: ignore[attr-defined]
    passed: list[str] = []
    full = path.full

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            passed.append(scope["path"])
        await full(scope, receive, send)

    path.full = spy
    return passed


def test_only_plain_posts_skip_the_stack(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    with TestClient(app) as client:
        passed = count_full_stack(app)
        assert client.post("/generate", json={"n": 1}).status_code == 200
        assert client.post("/perturb", json={"n": 1}).status_code == 200
        assert client.post("/generate", json={"model": "nope"}).status_code == 404
        assert passed == []
        assert client.post("/generate", content=b"{", headers=JSON).status_code == 422
        assert client.get("/generate?n=1").status_code == 200
        assert passed == ["/generate"]  # GET never reaches the fast path at all


def test_fast_path_requests_are_counted_like_the_others(
    clients: tuple[TestClient, TestClient],
) -> None:
    fast, _ = clients
    before = metric_value(
        fast.get("/metrics").text, "ganserve_requests_total", route="/perturb", status="200"
    )
    assert fast.post("/perturb", json={"n": 1}).status_code == 200
    assert fast.post("/perturb", json={"dims": [500]}).status_code == 422
    text = fast.get("/metrics").text
    assert metric_value(text, "ganserve_requests_total", route="/perturb", status="200") == (
        before + 1
    )
    assert metric_value(text, "ganserve_requests_total", route="/perturb", status="422") >= 1
    assert metric_value(text, "ganserve_request_seconds_count", route="/perturb") >= 2


def test_api_key_is_checked_on_the_fast_path(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(api_key="s3cret")
    with TestClient(app) as client:
        passed = count_full_stack(app)
        ok = client.post("/generate", json={"n": 1}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and passed == []
        for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = client.post("/generate", json={"n": 1}, headers=auth)
            assert r.status_code == 401 and "API key" in r.json()["detail"]
        assert len(passed) == 3


def test_unexpected_error_while_drawing_is_a_plain_500(
    make_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    with TestClient(app, raise_server_exceptions=False) as client:
        passed = count_full_stack(app)
        model = app.state.registry.models["dcgan-fashion"]

        def broken(*args: Any) -> Any:
            raise RuntimeError("secret internals at /srv/model.py line 12")

        monkeypatch.setattr(model, "run", broken)
        r = client.post("/generate", json={"model": "dcgan-fashion", "n": 1})
        assert r.status_code == 500
        assert r.json() == {"detail": "internal server error"}
        assert "secret" not in r.text
        assert passed == []
        text = client.get("/metrics").text
        assert metric_value(text, "ganserve_requests_total", route="/generate", status="500") == 1


def test_cors_and_telemetry_turn_the_fast_path_off(make_app: Callable[..., FastAPI]) -> None:
    assert make_app(cors_origins=["https://example.org"]).fast_path is None  # type: ignore[attr-defined]
    assert make_app(opentelemetry=True).fast_path is None  # type: ignore[attr-defined]
    app = make_app(cors_origins=["https://example.org"])
    with TestClient(app) as client:
        r = client.post("/generate", json={"n": 1}, headers={"Origin": "https://example.org"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://example.org"
