"""End to end: the SDK and the CLI against the real service (uvicorn on a loopback port),
serving tiny exported models, with an API key configured.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from ganserve_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    GridImage,
    ImageSet,
    NotFoundError,
    UnprocessableEntityError,
)
from PIL import Image
from tiny_models import build_tiny_models

from ganserve.grid import make_grid

REPO = Path(__file__).resolve().parents[2]
README = REPO / "clients" / "README.md"
API_KEY = "e2e-secret"
GANSERVE = Path(sys.executable).parent / "ganserve"


@dataclass(frozen=True)
class Server:
    url: str
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}

    def client(self, **kwargs: object) -> Client:
        return Client(self.url, api_key=API_KEY, **kwargs)  # type: ignore[arg-type]

    def raw_post(self, path: str, body: dict[str, object]) -> httpx.Response:
        response = httpx.post(self.url + path, json=body, headers=self.headers, timeout=60)
        assert response.status_code == 200, response.text
        return response


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """uvicorn serving dcgan-fashion (default), cgan-fashion and dcgan64-rgb."""
    models_dir = build_tiny_models(tmp_path_factory.mktemp("models"))
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    port = free_port()
    env = {
        **os.environ,
        "GANSERVE_MODELS_DIR": str(models_dir),
        "GANSERVE_DEFAULT_MODEL": "dcgan-fashion",
        "GANSERVE_API_KEY": API_KEY,
        "GANSERVE_INTRA_OP_THREADS": "1",
    }
    argv = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as log_file:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log_file, stderr=log_file)
    url = f"http://127.0.0.1:{port}"
    try:
        with Client(url, max_retries=0) as probe:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if probe.ready(timeout=2):
                        break
                except Exception:  # noqa: BLE001 - not listening yet
                    pass
                time.sleep(0.2)
            else:
                pytest.fail(f"the service did not get ready:\n{log.read_text()[-3000:]}")
        yield Server(url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pixels(png: bytes) -> np.ndarray:
    """uint8 [H, W, C] pixels of a PNG."""
    array = np.asarray(Image.open(io.BytesIO(png)))
    return array[:, :, None] if array.ndim == 2 else array


# -- Client ------------------------------------------------------------------


def test_saved_png_is_byte_identical_to_a_raw_http_call(server: Server, tmp_path: Path) -> None:
    raw = server.raw_post("/generate", {"n": 16, "seed": 3})
    raw_get = httpx.get(
        server.url + "/generate", params={"n": 16, "seed": 3}, headers=server.headers
    )
    with server.client() as client:
        grid = client.generate(n=16, seed=3)
    saved = grid.save(tmp_path / "grid.png")

    assert saved.read_bytes() == raw.content == raw_get.content
    assert (grid.model, grid.seed, grid.rows, grid.columns) == ("dcgan-fashion", 3, 4, 4)
    assert raw.headers["X-Seed"] == "3" and raw.headers["X-Grid-Rows"] == "4"
    # 4 x 4 cells of 28 px with 2 px padding between and around them.
    assert grid.size == (4 * 28 + 5 * 2, 4 * 28 + 5 * 2)
    assert grid.to_pil().size == grid.size


def test_same_seed_same_bytes_and_a_fresh_seed_is_reported(server: Server) -> None:
    with server.client() as client:
        first = client.generate(n=8, seed=11)
        again = client.generate(n=8, seed=11)
        other = client.generate(n=8, seed=12)
        unseeded = client.generate(n=8)
        replay = client.generate(n=8, seed=unseeded.seed)
    assert first.png == again.png
    assert other.png != first.png
    assert replay.png == unseeded.png


def test_json_format_gives_the_grid_cells(server: Server) -> None:
    with server.client() as client:
        grid = client.generate(n=6, seed=5, columns=3, scale=2, padding=1)
        cells = client.generate(n=6, seed=5, columns=3, scale=2, padding=1, format="json")
    assert isinstance(cells, ImageSet)
    assert (cells.model, cells.seed, cells.rows, cells.columns) == ("dcgan-fashion", 5, 2, 3)
    assert [(c.row, c.column) for c in cells] == [(r, c) for r in range(2) for c in range(3)]
    stack = np.stack([pixels(c.png) for c in cells])
    assert stack.shape == (6, 56, 56, 1)  # each cell scaled like the grid's
    assert np.array_equal(make_grid(stack, 3, padding=1), pixels(grid.png))


def test_conditional_rows_per_label(server: Server) -> None:
    with server.client() as client:
        grid = client.conditional(["Sneaker", "Bag"], n=8, seed=2)
        by_index = client.conditional([7, 8], n=8, seed=2)
        single = client.conditional(["Bag"], n=2, seed=2, format="json")
    assert (grid.model, grid.rows, grid.columns) == ("cgan-fashion", 2, 8)
    assert grid.png == by_index.png  # class names and indices name the same rows
    assert [c.extra["class_name"] for c in single] == ["Bag", "Bag"]


def test_perturb_default_is_the_reports_grid(server: Server) -> None:
    raw = server.raw_post("/perturb", {"seed": 0, "dims": [5, 20], "values": [-3, 3]})
    with server.client() as client:
        default = client.perturb(seed=0)
        chosen = client.perturb(seed=0, dims=[5, 20], values=[-3, 3])
        whole = client.perturb(seed=0, mode="scale", values=[0.5, 1, 2])
    assert (default.rows, default.columns) == (15, 8)
    assert chosen.png == raw.content and (chosen.rows, chosen.columns) == (4, 8)
    assert (whole.rows, whole.columns) == (3, 8)


def test_models_health_and_ready(server: Server) -> None:
    with server.client() as client:
        listing = client.models()
        cgan = client.model("cgan-fashion")
        assert client.health()["status"] == "ok"
        assert client.ready() is True
    assert {"dcgan-fashion", "cgan-fashion", "dcgan64-rgb"} <= set(listing.names())
    assert listing.default_model == "dcgan-fashion"
    assert listing.default_conditional_model == "cgan-fashion"
    assert cgan.conditional and "Sneaker" in cgan.class_names
    assert cgan.latent_dim == 100 and cgan.image_shape == [28, 28, 1]
    assert cgan.provider and cgan.provider.endswith("ExecutionProvider")
    assert cgan.card["name"] == "cgan-fashion"
    assert not listing.get("dcgan-fashion").conditional


def test_rgb_model_decodes_to_rgb(server: Server) -> None:
    with server.client() as client:
        grid = client.generate(model="dcgan64-rgb", n=2, seed=1, padding=0)
    image = grid.to_pil()
    assert image.mode == "RGB" and image.size == (128, 64)


def test_service_errors_raise_their_classes(server: Server) -> None:
    with server.client() as client:
        with pytest.raises(NotFoundError, match="dcgan-fashion"):
            client.generate(model="no-such-model")
        with pytest.raises(NotFoundError):
            client.model("no-such-model")
        with pytest.raises(UnprocessableEntityError, match="n:"):
            client.generate(n=0)
        with pytest.raises(UnprocessableEntityError, match="unconditional"):
            client.conditional(["Sneaker"], model="dcgan-fashion")
        with pytest.raises(UnprocessableEntityError, match="500"):
            client.perturb(dims=[500])
    with Client(server.url) as anonymous:
        with pytest.raises(AuthenticationError) as info:
            anonymous.generate(n=1)
        assert info.value.status_code == 401
        assert anonymous.ready() is True  # health and readiness stay open


# -- AsyncClient -------------------------------------------------------------


def test_async_client_matches_the_sync_client(server: Server) -> None:
    with server.client() as client:
        expected = client.generate(n=16, seed=3).png
        expected_conditional = client.conditional(["Sneaker", "Bag"], n=4, seed=1).png

    async def main() -> tuple[list[GridImage], GridImage, ImageSet, bool]:
        async with AsyncClient(server.url, api_key=API_KEY) as aclient:
            grids = await asyncio.gather(*[aclient.generate(n=16, seed=3) for _ in range(8)])
            conditional = await aclient.conditional(["Sneaker", "Bag"], n=4, seed=1)
            cells = await aclient.perturb(seed=0, n=2, format="json")
            return list(grids), conditional, cells, await aclient.ready()

    grids, conditional, cells, ready = asyncio.run(main())
    assert all(g.png == expected for g in grids)
    assert conditional.png == expected_conditional
    assert (cells.rows, cells.columns, len(cells)) == (15, 2, 30)
    assert ready is True


def test_async_client_errors(server: Server) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, api_key=API_KEY) as aclient:
            with pytest.raises(NotFoundError):
                await aclient.model("no-such-model")
        async with AsyncClient(server.url) as anonymous:
            with pytest.raises(AuthenticationError):
                await anonymous.models()

    asyncio.run(main())


# -- CLI ---------------------------------------------------------------------


def ganserve(
    server: Server, *args: str, api_key: str | None = API_KEY, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ganserve`` script, configured through the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    env["GANSERVE_URL"] = server.url
    if api_key is not None:
        env["GANSERVE_API_KEY"] = api_key
    return subprocess.run(
        [str(GANSERVE), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_cli_generate_conditional_perturb(server: Server, tmp_path: Path) -> None:
    done = ganserve(server, "generate", "--n", "64", "--seed", "3", "-o", "grid.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "grid.png").read_bytes() == server.raw_post(
        "/generate", {"n": 64, "seed": 3}
    ).content
    assert "seed 3, 8 x 8 grid" in done.stdout

    args = ["conditional", "--labels", "Sneaker,Bag", "--n", "8", "--seed", "4", "-o", "c.png"]
    done = ganserve(server, *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    raw = server.raw_post("/conditional", {"labels": ["Sneaker", "Bag"], "n": 8, "seed": 4})
    assert (tmp_path / "c.png").read_bytes() == raw.content

    args = [
        "perturb",
        "--dims",
        "5,20,40,60,80",
        "--values",
        "-3,0,3",
        "--seed",
        "0",
        "-o",
        "p.png",
    ]
    done = ganserve(server, *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "15 x 8 grid" in done.stdout
    raw = server.raw_post("/perturb", {"seed": 0})
    assert (tmp_path / "p.png").read_bytes() == raw.content  # the defaults are the same grid


def test_cli_models(server: Server, tmp_path: Path) -> None:
    done = ganserve(server, "models", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()[1:4]]
    assert names == ["cgan-fashion", "dcgan-fashion", "dcgan64-rgb"]
    assert "* default model: dcgan-fashion" in done.stdout


@pytest.mark.parametrize(
    ("args", "api_key", "message"),
    [
        (["generate", "--n", "0", "-o", "x.png"], API_KEY, "422 Unprocessable Entity: n: "),
        (["generate", "--model", "nope", "-o", "x.png"], API_KEY, "404 Not Found: unknown model"),
        (["perturb", "--dims", "100", "-o", "x.png"], API_KEY, "422 Unprocessable Entity: dims"),
        (["conditional", "--labels", "Spaceship", "-o", "x.png"], API_KEY, "422"),
        (["generate", "-o", "x.png"], None, "401 Unauthorized"),
        (["generate", "-o", "x.png"], "wrong-key", "401 Unauthorized"),
    ],
)
def test_cli_service_errors_are_one_line(
    server: Server, tmp_path: Path, args: list[str], api_key: str | None, message: str
) -> None:
    done = ganserve(server, *args, api_key=api_key, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"ganserve: error: {message}"), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "x.png").exists()


# -- README ------------------------------------------------------------------


def sdk_env(server: Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    return {**env, "GANSERVE_URL": server.url, "GANSERVE_API_KEY": API_KEY}


def test_readme_python_examples_run(server: Server, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 5
    for block in blocks:
        done = subprocess.run(
            [sys.executable, "-c", block],
            capture_output=True,
            text=True,
            env=sdk_env(server),
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 0, f"{block}\n{done.stderr}"
    assert {"grid.png", "conditional.png", "perturb.png", "grid-3.png", "cell-1-1.png"} <= {
        p.name for p in tmp_path.iterdir()
    }


def test_readme_cli_examples_run(server: Server, tmp_path: Path) -> None:
    text = README.read_text().split("## Command line", 1)[1]
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    commands = [c for c in commands if c and "http://host" not in c]
    assert len(commands) >= 8
    env = sdk_env(server)
    env["PATH"] = f"{GANSERVE.parent}{os.pathsep}{env.get('PATH', '')}"
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    assert (tmp_path / "grid.png").read_bytes().startswith(b"\x89PNG")
