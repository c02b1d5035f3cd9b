"""What each SDK method sends and what it makes of the answer (Client and AsyncClient alike)."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from ganserve_client import (
    APIResponseError,
    Client,
    GanserveError,
    GridImage,
    ImageSet,
    ModelInfo,
    ModelList,
)
from sdk_testlib import Api, make_png, png_response

MODELS_BODY = {
    "models": [
        {
            "name": "dcgan-fashion",
            "conditional": False,
            "latent_dim": 100,
            "num_classes": 10,
            "class_names": ["T-shirt/top", "Trouser"],
            "image_shape": [28, 28, 1],
            "provider": "CPUExecutionProvider",
            "card": {"name": "dcgan-fashion", "architecture": "dcgan", "sha256": "ab12"},
        },
        {
            "name": "cgan-fashion",
            "conditional": True,
            "latent_dim": 100,
            "num_classes": 10,
            "image_shape": [28, 28, 1],
            "provider": "CUDAExecutionProvider",
        },
    ],
    "default_model": "dcgan-fashion",
    "default_conditional_model": "cgan-fashion",
    "max_n": 256,
}


def test_generate_posts_only_the_given_fields_and_reads_the_headers(make_api) -> None:
    png = make_png(8, 6, value=200)
    api: Api = make_api(png_response(png, model="dcgan-fashion", seed=3, rows=2, cols=4))
    grid = api.generate(n=8, seed=3, columns=4)

    request = api.script.last
    assert request.method == "POST"
    assert request.url == "http://ganserve.test/generate"
    assert request.headers["accept"] == "image/png"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("ganserve-client/")
    assert "authorization" not in request.headers
    assert api.script.body() == {"n": 8, "seed": 3, "columns": 4}

    assert isinstance(grid, GridImage)
    assert grid.png == png
    assert (grid.model, grid.seed, grid.rows, grid.columns) == ("dcgan-fashion", 3, 2, 4)
    assert grid.size == (8, 6)


def test_generate_sends_every_field(make_api) -> None:
    api: Api = make_api()
    api.generate(model="m", n=2, seed=0, columns=1, scale=3, padding=0)
    assert api.script.body() == {
        "model": "m",
        "n": 2,
        "seed": 0,
        "columns": 1,
        "scale": 3,
        "padding": 0,
    }


def test_generate_without_arguments_leaves_defaults_to_the_service(make_api) -> None:
    api: Api = make_api()
    api.generate()
    assert api.script.body() == {}


def test_json_format_returns_single_images(make_api) -> None:
    cells = [make_png(2, 2, value=v) for v in (10, 20, 30)]
    body = {
        "model": "dcgan-fashion",
        "seed": 5,
        "rows": 1,
        "columns": 3,
        "images": [
            {
                "row": 0,
                "column": i,
                "seed": 5,
                "index": i,
                "png_base64": base64.b64encode(png).decode(),
            }
            for i, png in enumerate(cells)
        ],
        "latent_dim": 100,
    }
    api: Api = make_api(httpx.Response(200, json=body))
    result = api.generate(n=3, seed=5, format="json")

    assert api.script.body() == {"n": 3, "seed": 5, "format": "json"}
    assert api.script.last.headers["accept"] == "application/json"
    assert isinstance(result, ImageSet)
    assert (result.model, result.seed, result.rows, result.columns) == ("dcgan-fashion", 5, 1, 3)
    assert len(result) == 3
    assert [image.png for image in result] == cells
    assert result.at(0, 2).png == cells[2]
    assert result[1].extra == {"index": 1}
    assert result[0].size == (2, 2)
    with pytest.raises(IndexError):
        result.at(1, 0)


def test_conditional_sends_labels_as_a_list(make_api) -> None:
    api: Api = make_api()
    api.conditional(["Sneaker", 8], n=4, seed=1)
    assert api.script.last.url.path == "/conditional"
    assert api.script.body() == {"labels": ["Sneaker", 8], "n": 4, "seed": 1}

    api.conditional("Bag")
    assert api.script.body() == {"labels": ["Bag"]}
    api.conditional(3, columns=2, scale=2, padding=1, model="cgan-fashion")
    assert api.script.body() == {
        "model": "cgan-fashion",
        "labels": [3],
        "columns": 2,
        "scale": 2,
        "padding": 1,
    }
    api.conditional()
    assert api.script.body() == {}


def test_perturb_sends_dims_values_mode_and_label(make_api) -> None:
    api: Api = make_api()
    api.perturb(seed=7, n=4, dims=(5, 20), values=[-3, 0, 3.5], mode="add", label="Bag")
    assert api.script.last.url.path == "/perturb"
    assert api.script.body() == {
        "seed": 7,
        "n": 4,
        "dims": [5, 20],
        "values": [-3, 0, 3.5],
        "mode": "add",
        "label": "Bag",
    }
    api.perturb(mode="label", labels=["Sneaker", 0], n=2)
    assert api.script.body() == {"mode": "label", "labels": ["Sneaker", 0], "n": 2}
    # An empty dims list is sent as such: whole-vector modes read it as "all dimensions".
    api.perturb(mode="scale", dims=[], values=[0.5, 1, 2], scale=2, padding=0)
    assert api.script.body() == {
        "dims": [],
        "values": [0.5, 1, 2],
        "mode": "scale",
        "scale": 2,
        "padding": 0,
    }


def test_models_lists_cards(make_api) -> None:
    api: Api = make_api(httpx.Response(200, json=MODELS_BODY))
    listing = api.models()
    assert api.script.last.method == "GET"
    assert api.script.last.url.path == "/models"
    assert isinstance(listing, ModelList)
    assert listing.names() == ["dcgan-fashion", "cgan-fashion"]
    assert listing.default_model == "dcgan-fashion"
    assert listing.default_conditional_model == "cgan-fashion"
    assert listing.raw["max_n"] == 256
    dcgan, cgan = listing
    assert not dcgan.conditional and cgan.conditional
    assert dcgan.latent_dim == 100 and dcgan.num_classes == 10
    assert dcgan.provider == "CPUExecutionProvider"
    assert dcgan.image_shape == [28, 28, 1]
    assert dcgan.card["architecture"] == "dcgan"
    assert dcgan.class_names == ["T-shirt/top", "Trouser"]
    assert listing.get("cgan-fashion")["provider"] == "CUDAExecutionProvider"
    with pytest.raises(KeyError):
        listing.get("nope")


def test_model_quotes_the_name(make_api) -> None:
    card = MODELS_BODY["models"][1]
    api: Api = make_api(httpx.Response(200, json=card))
    info = api.model("cgan fashion/x")
    assert api.script.last.method == "GET"
    assert api.script.last.url.raw_path == b"/models/cgan%20fashion%2Fx"
    assert isinstance(info, ModelInfo)
    assert info.data == card and info.name == "cgan-fashion" and info.conditional
    with pytest.raises(GanserveError, match="empty"):
        api.model("")


def test_health_and_ready(make_api) -> None:
    api: Api = make_api(
        httpx.Response(200, json={"status": "ok"}),
        httpx.Response(200, json={"status": "ready"}),
        httpx.Response(503, json={"detail": "warming up"}, headers={"Retry-After": "1"}),
    )
    assert api.health() == {"status": "ok"}
    assert api.script.last.url.path == "/healthz"
    assert api.ready() is True
    assert api.script.last.url.path == "/readyz"
    # Not ready is an answer, not an error, and is not retried.
    assert api.ready() is False
    assert len(api.script.requests) == 3
    assert api.sleeps == []


def test_wait_ready_polls_until_ready(make_api) -> None:
    api: Api = make_api(
        httpx.ConnectError("refused"),
        httpx.Response(503, json={"detail": "loading"}),
        httpx.Response(200, json={"status": "ready"}),
    )
    api.wait_ready(timeout=10, interval=0.01)
    assert [r.url.path for r in api.script.requests] == ["/readyz"] * 3
    assert api.sleeps == [0.01, 0.01]


def test_wait_ready_gives_up(make_api) -> None:
    api: Api = make_api(httpx.Response(503, json={"detail": "loading"}))
    with pytest.raises(GanserveError, match="not ready after 0 s"):
        api.wait_ready(timeout=0, interval=0.01)


def test_api_key_is_sent_as_bearer_token(make_api) -> None:
    api: Api = make_api(api_key="s3cret")
    api.generate(n=1)
    assert api.script.last.headers["authorization"] == "Bearer s3cret"


def test_configuration_falls_back_to_the_environment(
    make_api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANSERVE_URL", "http://from-env.test:9000/prefix/")
    monkeypatch.setenv("GANSERVE_API_KEY", "env-key")
    api: Api = make_api(base_url=None)
    api.generate(n=1)
    assert api.script.last.url == "http://from-env.test:9000/prefix/generate"
    assert api.script.last.headers["authorization"] == "Bearer env-key"

    explicit: Api = make_api(base_url="http://explicit.test", api_key="arg-key")
    explicit.generate()
    assert explicit.script.last.url == "http://explicit.test/generate"
    assert explicit.script.last.headers["authorization"] == "Bearer arg-key"


def test_defaults_without_environment() -> None:
    with Client() as client:
        assert client.base_url == "http://127.0.0.1:8000"
        assert client.api_key is None
        assert client.max_retries == 2


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://x", ""])
def test_bad_base_url_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANSERVE_URL", url or "nope")
    with pytest.raises(GanserveError, match="http:// or https://"):
        Client(url or None)


def test_unreadable_success_responses_raise_api_response_error(make_api) -> None:
    api: Api = make_api(
        httpx.Response(200, text="<html>proxy</html>", headers={"content-type": "text/html"}),
        httpx.Response(200, content=make_png(), headers={"content-type": "image/png"}),
        httpx.Response(200, json={"images": "nope"}),
        httpx.Response(200, text="not json"),
    )
    with pytest.raises(APIResponseError, match="expected image/png, got text/html"):
        api.generate()
    with pytest.raises(APIResponseError, match="X-Model"):
        api.generate()
    with pytest.raises(APIResponseError, match="unexpected JSON image response"):
        api.generate(format="json")
    with pytest.raises(APIResponseError, match="expected JSON"):
        api.models()


def test_unknown_format_is_refused(make_api) -> None:
    api: Api = make_api()
    with pytest.raises(GanserveError, match="format"):
        api.generate(format="gif")
    assert api.script.requests == []


def test_grid_save_writes_the_exact_bytes(tmp_path: Path) -> None:
    png = make_png(5, 4, value=77)
    grid = GridImage(png=png, model="m", seed=1, rows=1, columns=1)
    path = grid.save(tmp_path / "grid.png")
    assert path.read_bytes() == png
    assert grid._repr_png_() == png
    assert "seed=1" in repr(grid)


def test_to_pil_decodes_the_png() -> None:
    grid = GridImage(png=make_png(5, 4, value=77), model="m", seed=1, rows=1, columns=1)
    image = grid.to_pil()
    assert image.size == (5, 4)
    assert image.getpixel((2, 2)) == 77


def test_user_supplied_http_client_is_left_open() -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda r: png_response()))
    with Client("http://x.test", http_client=http) as client:
        assert client.generate().seed == 3
    assert not http.is_closed
    http.close()


def test_http_client_and_transport_are_exclusive() -> None:
    http = httpx.Client()
    with pytest.raises(GanserveError, match="not both"):
        Client(http_client=http, transport=httpx.MockTransport(lambda r: png_response()))
    http.close()
