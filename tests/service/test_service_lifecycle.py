"""Live model changes: added, replaced, broken and removed models while requests keep coming.

The load tests run a real uvicorn server that re-reads its models directory every
0.2 s (GANSERVE_MODEL_POLL_SECONDS) and keep 32 requests in flight, over the image
API and the Open Inference Protocol, while the directory changes under it: no
request may fail, and a replaced model's answers must switch from the old bytes
to the new ones. The models are the shipped ones (dcgan-fashion, and dcgan-mnist
as the new version).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_service_e2e import free_port, start_server, stop, wait_ready

from ganserve.latent import make_latents
from service.app import create_app
from service.batcher import Batcher, BatcherStopped
from service.config import Settings
from service.lifecycle import ModelLifecycle, new_batcher
from service.metrics import Metrics
from service.registry import load_registry

SHIPPED = Path(__file__).resolve().parents[2] / "models"
OLD, NEW = "dcgan-fashion", "dcgan-mnist"  # a model's first version, and its replacement
CONCURRENCY = 32


def install(root: Path, name: str, source: str = OLD) -> Path:
    """A copy of a shipped model under another name, as an operator would put it there."""
    folder = root / name
    folder.mkdir(parents=True)
    shutil.copyfile(SHIPPED / source / "model.onnx", folder / "model.onnx")
    card = json.loads((SHIPPED / source / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps(card | {"name": name}))
    return folder


def replace_files(folder: Path, source: str) -> None:
    """Put another shipped model's files in place, each by an atomic rename."""
    card = json.loads((SHIPPED / source / "card.json").read_text())
    shutil.copyfile(SHIPPED / source / "model.onnx", folder / ".model.onnx.new")
    (folder / ".card.json.new").write_text(json.dumps(card | {"name": folder.name}))
    os.replace(folder / ".model.onnx.new", folder / "model.onnx")
    os.replace(folder / ".card.json.new", folder / "card.json")


def corrupt_model(folder: Path) -> None:
    """A new model.onnx that no longer matches the card's sha256."""
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (folder / ".model.onnx.new").write_bytes(bytes(data))
    os.replace(folder / ".model.onnx.new", folder / "model.onnx")


# -- in process: /admin/reload, refused models, skipped folders --------------------------


def test_admin_reload_adds_replaces_refuses_and_removes(tmp_path: Path) -> None:
    root = tmp_path / "models"
    install(root, "base")
    key = {"Authorization": "Bearer k"}
    with TestClient(create_app(Settings(models_dir=root, api_key="k"))) as client:

        def reload() -> dict:
            r = client.post("/admin/reload", headers=key)
            assert r.status_code == 200, r.text
            return r.json()

        def draw(name: str) -> httpx.Response:
            return client.post("/generate", json={"model": name, "n": 2, "seed": 1}, headers=key)

        assert client.post("/admin/reload").status_code == 401
        assert reload() == {
            "added": [],
            "replaced": [],
            "removed": [],
            "refused": {},
            "models": ["base"],
        }
        old = draw("base").content

        install(root, "extra")
        assert reload()["added"] == ["extra"]
        assert draw("extra").content == old  # the same model under a new name

        replace_files(root / "base", NEW)
        assert reload()["replaced"] == ["base"]
        new = draw("base").content
        assert new != old and draw("base").status_code == 200

        corrupt_model(root / "base")
        report = reload()
        assert "sha256 of model.onnx is" in report["refused"]["base"]
        assert "a new version was refused" in report["refused"]["base"]
        assert draw("base").content == new  # the version loaded before keeps serving
        listed = client.get("/models", headers=key).json()
        assert "base" in [m["name"] for m in listed["models"]]
        assert "sha256" in listed["refused"]["base"]

        shutil.rmtree(root / "extra")
        assert reload()["removed"] == ["extra"]
        r = draw("extra")
        assert r.status_code == 404 and "unknown model 'extra'" in r.json()["detail"]
        assert reload() == {
            "added": [],
            "replaced": [],
            "removed": [],
            "refused": {},
            "models": ["base"],
        }


def test_a_refused_model_answers_503_with_the_reason_until_fixed(tmp_path: Path) -> None:
    root = tmp_path / "models"
    install(root, "base")
    corrupt_model(install(root, "broken"))
    with TestClient(create_app(Settings(models_dir=root))) as client:
        for r in (
            client.get("/generate", params={"model": "broken"}),
            client.post("/perturb", json={"model": "broken"}),
            client.get("/models/broken"),
        ):
            assert r.status_code == 503
            assert r.json()["detail"].startswith("model 'broken' is not being served: sha256")
        assert "broken" in client.get("/models").json()["refused"]
        assert client.get("/models/nothing").status_code == 404  # never there: still 404
        replace_files(root / "broken", OLD)
        assert client.post("/admin/reload").json()["added"] == ["broken"]
        assert client.get("/generate", params={"model": "broken"}).status_code == 200
        assert client.get("/models").json()["refused"] == {}


def test_empty_stray_and_hidden_folders_are_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "models"
    install(root, "base")
    (root / "empty").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "README.txt").write_text("not a model")
    (root / "README.md").write_text("a plain file: ignored")
    with caplog.at_level(logging.INFO, logger="service"):
        with TestClient(create_app(Settings(models_dir=root))) as client:
            (root / ".staging").mkdir()
            for _ in range(3):
                assert client.post("/admin/reload").json()["models"] == ["base"]
            assert client.get("/readyz").json()["refused"] == {}
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped ")]
    assert sorted(skipped) == [
        f"skipped {root / '.staging'}: a hidden folder",
        f"skipped {root / 'empty'}: neither card.json nor model.onnx in it",
        f"skipped {root / 'notes'}: neither card.json nor model.onnx in it",
    ]


def test_an_unreadable_models_dir_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "models"
    install(root, "base")
    with TestClient(create_app(Settings(models_dir=root))) as client:
        root.rename(tmp_path / "elsewhere")
        r = client.post("/admin/reload")
        assert r.status_code == 503
        assert "cannot read the models directory" in r.json()["detail"]
        assert client.get("/generate", params={"model": "base"}).status_code == 200
        assert client.get("/readyz").json()["models"] == ["base"]


def test_drain_finishes_what_the_batcher_holds_then_stops(tmp_path: Path) -> None:
    root = tmp_path / "models"
    install(root, "base")
    model = load_registry(Settings(models_dir=root, warmup=False)).models["base"]
    z = make_latents(4, 10, model.latent_dim)

    async def scenario() -> None:
        batcher = Batcher(
            model, max_batch=4, max_wait_s=0.05, max_queue=100, executor=None, metrics=Metrics()
        )
        batcher.start()
        jobs = [asyncio.create_task(batcher.generate(z[i : i + 1])) for i in range(10)]
        await asyncio.sleep(0)  # every request is queued (the first run may have started)
        assert batcher.queued > 0
        await batcher.drain(30)
        images = np.concatenate(await asyncio.gather(*jobs))
        assert np.array_equal(images, model.run(z))
        with pytest.raises(BatcherStopped):
            await batcher.generate(z[:1])

    asyncio.run(scenario())


def test_a_swap_lets_the_queued_requests_finish_on_the_old_session(tmp_path: Path) -> None:
    """Requests queued in the old batcher when the new version takes over get the old images;
    the next request gets the new ones."""
    root = tmp_path / "models"
    install(root, "m")
    # A batch waits up to 10 s for more requests: the first 8 are surely queued at the swap.
    settings = Settings(models_dir=root, max_wait_ms=10_000, max_batch=64, warmup=False)
    registry = load_registry(settings)
    old = registry.models["m"]
    z = make_latents(9, 64, old.latent_dim)

    async def scenario() -> None:
        metrics = Metrics()
        executor = ThreadPoolExecutor(2)
        batchers = {"m": new_batcher(old, settings, executor, metrics)}
        batchers["m"].start()
        state = SimpleNamespace(
            settings=settings, registry=registry, batchers=batchers, metrics=metrics, ready=True
        )
        lifecycle = ModelLifecycle(state, executor)
        queued = [asyncio.create_task(batchers["m"].generate(z[i : i + 1])) for i in range(8)]
        await asyncio.sleep(0)
        assert batchers["m"].queued == 8
        await asyncio.to_thread(replace_files, root / "m", NEW)
        assert (await lifecycle.reload()).replaced == ["m"]
        new = registry.models["m"]
        assert new is not old and batchers["m"].model is new
        after = await batchers["m"].generate(z)  # a full batch: runs at once
        before = np.concatenate(await asyncio.gather(*queued))
        assert np.array_equal(before, old.run(z[:8]))
        assert np.array_equal(after, new.run(z))
        assert not np.array_equal(after[:8], before)
        await lifecycle.close()
        await batchers["m"].stop()
        executor.shutdown()

    asyncio.run(scenario())


# -- a real server under load ------------------------------------------------------------


@dataclass
class Answer:
    target: tuple[str, str]  # (face, model): face "png" (/generate) or "v2" (infer)
    start: float
    end: float
    status: int
    body: bytes


V2_BODY = {
    "inputs": [
        {
            "name": "z",
            "shape": [1, 100],
            "datatype": "FP32",
            "data": make_latents(0, 1, 100)[0].tolist(),
        }
    ]
}


async def send(client: httpx.AsyncClient, face: str, model: str) -> httpx.Response:
    if face == "png":
        return await client.post("/generate", json={"model": model, "n": 1, "seed": 0})
    return await client.post(f"/v2/models/{model}/infer", json=V2_BODY)


async def under_load(
    url: str,
    targets: list[tuple[str, str]],
    change: Callable[[], None],
    done: Callable[[httpx.AsyncClient], Awaitable[bool]],
) -> tuple[list[Answer], float]:
    """Keep CONCURRENCY requests in flight over the targets; make the change once they run;
    go on until ``done`` holds, then half a second more. The answers, and when the change was.
    """
    answers: list[Answer] = []
    stopping = asyncio.Event()
    limits = httpx.Limits(max_connections=CONCURRENCY + 1)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker(i: int) -> None:
            target = targets[i % len(targets)]
            while not stopping.is_set():
                start = time.monotonic()
                r = await send(client, *target)
                answers.append(Answer(target, start, time.monotonic(), r.status_code, r.content))

        workers = [asyncio.create_task(worker(i)) for i in range(CONCURRENCY)]
        await asyncio.sleep(0.5)
        await asyncio.to_thread(change)
        changed = time.monotonic()
        deadline = changed + 30
        while not await done(client):
            assert time.monotonic() < deadline, "the change was not seen within 30 s"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stopping.set()
        await asyncio.gather(*workers)
    return answers, changed


def of(answers: list[Answer], target: tuple[str, str]) -> list[Answer]:
    return sorted((a for a in answers if a.target == target), key=lambda a: a.start)


def assert_switch(answers: list[Answer], old: bytes, new: bytes, changed: float) -> None:
    """Every answer is the old or the new one; old before the change, new from the first
    new one on (for requests sent after it came back)."""
    assert answers
    assert {a.body for a in answers} <= {old, new}
    first_new = min(a.end for a in answers if a.body == new)
    assert all(a.body == old for a in answers if a.end < changed)
    assert all(a.body == new for a in answers if a.start > first_new)
    assert any(a.body == old for a in answers) and answers[-1].body == new


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server re-reading its models directory every 0.2 s: its URL and the directory."""
    root = tmp_path_factory.mktemp("lifecycle") / "models"
    for name in ("steady", "swap", "keep", "gone"):
        install(root, name)
    port = free_port()
    proc = start_server(
        ["-m", "service", "--port", str(port), "--models-dir", str(root)],
        # Each batch waits up to 50 ms for more requests, so a swap finds requests queued.
        {
            "GANSERVE_LOG_LEVEL": "warning",
            "GANSERVE_MODEL_POLL_SECONDS": "0.2",
            "GANSERVE_MAX_WAIT_MS": "50",
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
        yield url, root
    finally:
        stop(proc)


def baseline(url: str, target: tuple[str, str]) -> bytes:
    async def one() -> bytes:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            r = await send(client, *target)
            assert r.status_code == 200, r.text
            return r.content

    return asyncio.run(one())


async def readiness(client: httpx.AsyncClient) -> dict:
    return (await client.get("/readyz")).json()


def both_apis(*models: str) -> list[tuple[str, str]]:
    """Each model through the PNG route and through the v2 protocol."""
    return [(api, model) for model in models for api in ("png", "v2")]


def baselines(url: str, targets: list[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
    return {t: baseline(url, t) for t in targets}


def assert_all_ok(answers: list[Answer]) -> None:
    assert [a.status for a in answers if a.status != 200] == []


@pytest.mark.slow
def test_a_replaced_model_switches_to_the_new_bytes_with_no_failed_request(
    polled: tuple[str, Path],
) -> None:
    url, root = polled
    targets = both_apis("swap")
    old = baselines(url, targets)

    async def new_version_served(client: httpx.AsyncClient) -> bool:
        r = await client.get("/models/swap")
        return r.status_code == 200 and r.json()["card"]["dataset"] == "mnist"

    answers, changed = asyncio.run(
        under_load(url, targets, lambda: replace_files(root / "swap", NEW), new_version_served)
    )
    assert_all_ok(answers)
    new = baselines(url, targets)
    for target in targets:
        assert new[target] != old[target]
        assert_switch(of(answers, target), old[target], new[target], changed)
    print(f"{len(answers)} requests at concurrency {CONCURRENCY}, 0 failed")


@pytest.mark.slow
def test_a_new_model_starts_serving_with_no_failed_request(polled: tuple[str, Path]) -> None:
    url, root = polled
    targets = both_apis("steady")

    def add() -> None:
        install(root, ".fresh-staging", NEW)  # staged in a hidden folder, then renamed
        card = json.loads((root / ".fresh-staging" / "card.json").read_text())
        (root / ".fresh-staging" / "card.json").write_text(json.dumps(card | {"name": "fresh"}))
        (root / ".fresh-staging").rename(root / "fresh")

    async def served(client: httpx.AsyncClient) -> bool:
        return "fresh" in (await readiness(client))["models"]

    answers, _ = asyncio.run(under_load(url, targets, add, served))
    assert_all_ok(answers)
    assert httpx.get(f"{url}/models/fresh").json()["card"]["dataset"] == "mnist"
    assert baseline(url, ("png", "fresh")) != baseline(url, ("png", "steady"))
    assert baseline(url, ("v2", "fresh")) != baseline(url, ("v2", "steady"))


@pytest.mark.slow
def test_a_broken_new_version_is_refused_and_the_old_one_keeps_serving(
    polled: tuple[str, Path],
) -> None:
    url, root = polled
    targets = both_apis("keep")
    old = baselines(url, targets)

    async def refused(client: httpx.AsyncClient) -> bool:
        return "keep" in (await readiness(client))["refused"]

    answers, _ = asyncio.run(
        under_load(url, targets, lambda: corrupt_model(root / "keep"), refused)
    )
    assert_all_ok(answers)
    for target in targets:
        assert {a.body for a in of(answers, target)} == {old[target]}
    ready = httpx.get(f"{url}/readyz").json()
    assert "keep" in ready["models"]
    assert "a new version was refused (sha256 of model.onnx is" in ready["refused"]["keep"]


@pytest.mark.slow
def test_a_removed_model_stops_serving_and_the_others_never_fail(
    polled: tuple[str, Path],
) -> None:
    url, root = polled
    targets = both_apis("steady", "gone")

    async def removed(client: httpx.AsyncClient) -> bool:
        return "gone" not in (await readiness(client))["models"]

    answers, changed = asyncio.run(
        under_load(url, targets, lambda: shutil.rmtree(root / "gone"), removed)
    )
    steady = [a for a in answers if a.target[1] == "steady"]
    assert_all_ok(steady)
    for target in targets[2:]:
        gone = of(answers, target)
        assert {a.status for a in gone} == {200, 404}
        first_404 = min(a.end for a in gone if a.status == 404)
        assert all(a.status == 200 for a in gone if a.end < changed)
        assert all(a.status == 404 for a in gone if a.start > first_404)
    r = httpx.post(f"{url}/generate", json={"model": "gone"})
    assert r.status_code == 404 and "unknown model 'gone'" in r.json()["detail"]
