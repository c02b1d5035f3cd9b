"""The image endpoints: grids, headers, determinism, layout, GET = POST, JSON cells."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from service_testlib import decode_png, grid_cells

from ganserve.grid import encode_png, make_grid
from ganserve.latent import REPORT_DIMS, REPORT_VALUES, make_latents, perturb_latents
from service import graph_rewrite
from service.registry import probe_feeds

CELL = (28, 28)


def run_model(models_dir: Path, name: str, z: np.ndarray, labels: np.ndarray | None = None):
    """The model's images computed with ONNX Runtime outside the service, on the graph the
    service runs (the file's, as service.graph_rewrite rewrites it)."""
    model_bytes = (models_dir / name / "model.onnx").read_bytes()
    probe = probe_feeds(z.shape[1], 10 if labels is not None else 0, 2)
    session = ort.InferenceSession(
        graph_rewrite.rewrite(model_bytes, probe).model_bytes, providers=["CPUExecutionProvider"]
    )
    feeds = {"z": z}
    if labels is not None:
        feeds["label"] = labels.astype(np.int64)
    return session.run(["image"], feeds)[0]


def grid_size(rows: int, columns: int, cell: tuple[int, int] = CELL, padding: int = 2):
    """(height, width) of a grid make_grid builds."""
    h, w = cell
    return rows * (h + padding) + padding, columns * (w + padding) + padding


def test_generate_returns_png_grid_with_headers(client: TestClient) -> None:
    r = client.post("/generate", json={"n": 16, "seed": 3})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-model"] == "dcgan-fashion"
    assert r.headers["x-seed"] == "3"
    assert (r.headers["x-grid-rows"], r.headers["x-grid-columns"]) == ("4", "4")
    image = decode_png(r.content)
    assert image.shape == (*grid_size(4, 4), 1)


@pytest.mark.parametrize(
    ("n", "columns", "rows_cols"),
    [(1, None, (1, 1)), (5, None, (2, 3)), (10, None, (3, 4)), (10, 10, (1, 10)), (7, 2, (4, 2))],
)
def test_generate_grid_sizes(client: TestClient, n: int, columns: int | None, rows_cols) -> None:
    body = {"n": n, "seed": 1} | ({"columns": columns} if columns else {})
    r = client.post("/generate", json=body)
    assert r.status_code == 200
    rows, cols = rows_cols
    assert cols == min(columns or math.ceil(math.sqrt(n)), n)
    assert (int(r.headers["x-grid-rows"]), int(r.headers["x-grid-columns"])) == rows_cols
    assert decode_png(r.content).shape[:2] == grid_size(rows, cols)


def test_generate_scale_and_padding_change_the_layout(client: TestClient) -> None:
    r = client.get("/generate", params={"n": 4, "seed": 2, "scale": 3, "padding": 5})
    assert r.status_code == 200
    grid = decode_png(r.content)
    assert grid.shape[:2] == grid_size(2, 2, cell=(84, 84), padding=5)
    plain = decode_png(client.get("/generate", params={"n": 4, "seed": 2}).content)
    small = grid_cells(plain, 2, 2, CELL)
    big = grid_cells(grid, 2, 2, (84, 84), padding=5)
    for s, b in zip(small, big, strict=True):
        assert np.array_equal(s.repeat(3, axis=0).repeat(3, axis=1), b)


def test_same_request_same_bytes(client: TestClient) -> None:
    body = {"n": 12, "seed": 42}
    first = client.post("/generate", json=body).content
    assert client.post("/generate", json=body).content == first
    other = client.post("/generate", json={"n": 12, "seed": 43}).content
    assert other != first


def test_first_cells_do_not_depend_on_n(client: TestClient) -> None:
    small = client.post("/generate", json={"n": 8, "seed": 5})
    large = client.post("/generate", json={"n": 16, "seed": 5})
    cells8 = grid_cells(decode_png(small.content), 3, 3, CELL)[:8]
    cells16 = grid_cells(decode_png(large.content), 4, 4, CELL)[:8]
    for a, b in zip(cells8, cells16, strict=True):
        assert np.array_equal(a, b)


def test_grid_equals_the_offline_grid(client: TestClient, models_dir: Path) -> None:
    """The service's bytes are make_grid + encode_png of the model run on make_latents."""
    r = client.post("/generate", json={"n": 9, "seed": 11})
    images = run_model(models_dir, "dcgan-fashion", make_latents(11, 9, 100))
    assert r.content == encode_png(make_grid(images, 3))


def test_random_seed_is_reported_and_reproduces(client: TestClient) -> None:
    first = client.get("/generate", params={"n": 4})
    seed = int(first.headers["x-seed"])
    again = client.get("/generate", params={"n": 4, "seed": seed})
    assert again.content == first.content


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", {"n": 6, "seed": 9, "columns": 2, "scale": 2, "padding": 1}),
        ("/conditional", {"labels": ["Sneaker", 0], "n": 3, "seed": 4}),
        ("/perturb", {"seed": 1, "n": 3, "dims": [1, 2], "values": [-1.5, 2], "mode": "add"}),
        ("/perturb", {"seed": 1, "n": 2, "mode": "label", "labels": [3, "Bag"]}),
    ],
)
def test_get_equals_post(client: TestClient, path: str, body: dict) -> None:
    if body.get("mode") == "label" or path == "/conditional":
        body = body | {"model": "cgan-fashion"}
    post = client.post(path, json=body)
    query = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in body.items()}
    get = client.get(path, params=query)
    assert post.status_code == get.status_code == 200
    assert post.content == get.content
    for header in ("x-model", "x-seed", "x-grid-rows", "x-grid-columns"):
        assert post.headers[header] == get.headers[header]


def test_query_lists_may_repeat_or_use_commas(client: TestClient) -> None:
    repeated = client.get("/perturb?seed=2&n=2&dims=3&dims=7&values=1&values=-1")
    commas = client.get("/perturb?seed=2&n=2&dims=3,7&values=1,-1")
    assert repeated.status_code == 200
    assert repeated.content == commas.content
    assert repeated.headers["x-grid-rows"] == "4"


def test_post_without_body_uses_defaults(client: TestClient) -> None:
    r = client.post("/generate")
    assert r.status_code == 200
    assert (r.headers["x-grid-rows"], r.headers["x-grid-columns"]) == ("4", "4")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", b'{"n": 3, "seed": 5}'),
        ("/conditional", b'{"labels": ["Sneaker", 0], "n": 2, "seed": 5}'),
        ("/perturb", b'{"seed": 5, "n": 2, "dims": [5], "values": [-1, 1], "mode": "add"}'),
    ],
)
def test_post_answers_alike_for_every_json_content_type(
    client: TestClient, path: str, body: bytes
) -> None:
    # "application/json" takes the image routes' own handler, the others FastAPI's
    types = ("application/json", "application/json; charset=utf-8", "application/x+json")
    answers = [client.post(path, content=body, headers={"content-type": t}) for t in types]
    assert [r.status_code for r in answers] == [200, 200, 200]
    for r in answers[1:]:
        assert r.content == answers[0].content
        assert r.headers == answers[0].headers


def test_default_perturb_is_the_reports_15_by_8_grid(client: TestClient, models_dir: Path) -> None:
    r = client.get("/perturb", params={"seed": 0})
    assert r.status_code == 200
    assert (r.headers["x-grid-rows"], r.headers["x-grid-columns"]) == ("15", "8")
    grid = decode_png(r.content)
    assert grid.shape[:2] == grid_size(15, 8)
    z = perturb_latents(make_latents(0, 8, 100), REPORT_VALUES, dims=REPORT_DIMS, mode="set")
    offline = make_grid(run_model(models_dir, "dcgan-fashion", z), 8)
    assert r.content == encode_png(offline)


@pytest.mark.parametrize(
    ("mode", "values"), [("scale", [0.5, 1, 2]), ("add", [-3, 3]), ("noise", [0.5, 1])]
)
def test_whole_vector_modes(client: TestClient, models_dir: Path, mode: str, values) -> None:
    """No dims with add/scale/noise: one row per value, every dimension changed."""
    for body in (
        {"seed": 7, "mode": mode, "values": values},
        {"seed": 7, "mode": mode, "values": values, "dims": []},
    ):
        r = client.post("/perturb", json=body)
        assert r.status_code == 200
        assert (r.headers["x-grid-rows"], r.headers["x-grid-columns"]) == (str(len(values)), "8")
        z = perturb_latents(make_latents(7, 8, 100), values, dims=None, mode=mode, seed=7)
        assert r.content == encode_png(make_grid(run_model(models_dir, "dcgan-fashion", z), 8))


def test_scale_one_row_equals_plain_samples(client: TestClient) -> None:
    """Scaling the whole vector by 1 leaves the base samples: row 2 of 3 is /generate's row."""
    r = client.post("/perturb", json={"seed": 8, "n": 4, "mode": "scale", "values": [0.5, 1, 2]})
    middle = grid_cells(decode_png(r.content), 3, 4, CELL)[4:8]
    plain = grid_cells(
        decode_png(client.post("/generate", json={"n": 4, "seed": 8, "columns": 4}).content),
        1,
        4,
        CELL,
    )
    for a, b in zip(middle, plain, strict=True):
        assert np.array_equal(a, b)


def test_conditional_rows_are_labels_columns_share_latents(
    client: TestClient, models_dir: Path
) -> None:
    r = client.post(
        "/conditional", json={"model": "cgan-fashion", "labels": ["Sneaker", 2], "n": 5, "seed": 6}
    )
    assert r.status_code == 200
    assert r.headers["x-model"] == "cgan-fashion"
    assert (r.headers["x-grid-rows"], r.headers["x-grid-columns"]) == ("2", "5")
    cells = grid_cells(decode_png(r.content), 2, 5, CELL)
    z = make_latents(6, 5, 100)
    for row, label in enumerate([7, 2]):
        expected = run_model(models_dir, "cgan-fashion", z, np.full(5, label))
        for j in range(5):
            assert np.array_equal(cells[row * 5 + j], expected[j])


def test_conditional_defaults_to_every_class_of_the_conditional_model(client: TestClient) -> None:
    r = client.get("/conditional", params={"n": 2, "seed": 1})
    assert r.status_code == 200
    assert r.headers["x-model"] == "cgan-fashion"
    assert (r.headers["x-grid-rows"], r.headers["x-grid-columns"]) == ("10", "2")


def test_conditional_labels_by_index_or_name_agree(client: TestClient) -> None:
    by_name = client.get("/conditional", params={"labels": "sneaker,T-shirt/top", "seed": 3})
    by_index = client.get("/conditional", params={"labels": "7,0", "seed": 3})
    assert by_name.status_code == 200
    assert by_name.content == by_index.content


def test_perturb_on_conditional_model_uses_the_given_label(
    client: TestClient, models_dir: Path
) -> None:
    r = client.post(
        "/perturb",
        json={
            "model": "cgan-fashion",
            "seed": 2,
            "n": 3,
            "dims": [4],
            "values": [1],
            "label": "Bag",
        },
    )
    assert r.status_code == 200
    z = perturb_latents(make_latents(2, 3, 100), [1], dims=[4], mode="set")
    expected = run_model(models_dir, "cgan-fashion", z, np.full(3, 8))
    assert r.content == encode_png(make_grid(expected, 3))


def test_perturb_on_conditional_model_defaults_to_class_0(
    client: TestClient, models_dir: Path
) -> None:
    r = client.get("/perturb", params={"model": "cgan-fashion", "seed": 4, "n": 2, "mode": "add"})
    assert r.status_code == 200
    assert r.headers["x-grid-rows"] == "3"
    z = perturb_latents(make_latents(4, 2, 100), REPORT_VALUES, dims=None, mode="add")
    expected = run_model(models_dir, "cgan-fashion", z, np.zeros(6))
    assert r.content == encode_png(make_grid(expected, 2))


def test_perturb_label_mode_rows_are_classes(client: TestClient, models_dir: Path) -> None:
    r = client.post("/perturb", json={"model": "cgan-fashion", "seed": 2, "n": 4, "mode": "label"})
    assert r.status_code == 200
    assert (r.headers["x-grid-rows"], r.headers["x-grid-columns"]) == ("10", "4")
    same = client.post("/conditional", json={"model": "cgan-fashion", "seed": 2, "n": 4})
    assert r.content == same.content


def test_rgb_model_grid(client: TestClient) -> None:
    r = client.get("/generate", params={"model": "dcgan64-rgb", "n": 2, "seed": 0})
    assert r.status_code == 200
    assert decode_png(r.content).shape == (*grid_size(1, 2, cell=(64, 64)), 3)


def test_json_format_gives_cells_with_position_and_seed(client: TestClient) -> None:
    grid = client.post("/generate", json={"n": 5, "seed": 13})
    r = client.post("/generate", json={"n": 5, "seed": 13, "format": "json"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert (body["model"], body["seed"], body["rows"], body["columns"]) == (
        "dcgan-fashion",
        13,
        2,
        3,
    )
    assert r.headers["x-seed"] == "13"
    cells = grid_cells(decode_png(grid.content), 2, 3, CELL)
    assert [(c["row"], c["column"], c["index"]) for c in body["images"]] == [
        (0, 0, 0),
        (0, 1, 1),
        (0, 2, 2),
        (1, 0, 3),
        (1, 1, 4),
    ]
    for cell, item in zip(cells, body["images"], strict=False):
        assert item["seed"] == 13
        assert np.array_equal(decode_png(base64.b64decode(item["png_base64"])), cell)


def test_json_format_names_labels_and_perturbations(client: TestClient) -> None:
    r = client.post(
        "/perturb",
        json={
            "model": "cgan-fashion",
            "seed": 1,
            "n": 2,
            "dims": [3],
            "values": [-1, 1],
            "label": 7,
            "format": "json",
            "scale": 2,
        },
    )
    assert r.status_code == 200
    images = r.json()["images"]
    assert [(i["row"], i["column"], i["dim"], i["value"]) for i in images] == [
        (0, 0, 3, -1.0),
        (0, 1, 3, -1.0),
        (1, 0, 3, 1.0),
        (1, 1, 3, 1.0),
    ]
    assert {(i["label"], i["class_name"]) for i in images} == {(7, "Sneaker")}
    assert decode_png(base64.b64decode(images[0]["png_base64"])).shape == (56, 56, 1)


def test_perturb_reproduces_the_offline_experiments(client: TestClient, tmp_path: Path) -> None:
    """training.experiments on the same checkpoint draws the grids /perturb serves
    (PyTorch there, ONNX Runtime here: pixels agree to 1 level)."""
    from tiny_models import build_tiny_checkpoints

    from training.checkpoint import load_generator
    from training.experiments import run_experiments

    generator, _ = load_generator(build_tiny_checkpoints(tmp_path)["dcgan-fashion"])
    written = run_experiments(generator, tmp_path / "experiments", seed=5, n=8, scale=2)
    requests = {
        "dims": {},
        "scale": {"mode": "scale", "values": [0.5, 1, 2]},
        "shift": {"mode": "add", "values": [-3, 0, 3]},
        "noise": {"mode": "noise", "values": [0, 0.5, 1, 2]},
    }
    for name, body in requests.items():
        r = client.post("/perturb", json={"seed": 5, "scale": 2} | body)
        assert r.status_code == 200
        served = decode_png(r.content).astype(int)
        offline = decode_png(written[name].read_bytes()).astype(int)
        assert served.shape == offline.shape, name
        assert np.abs(served - offline).max() <= 1, name
