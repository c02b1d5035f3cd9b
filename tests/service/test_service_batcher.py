"""The dynamic batcher on a real model: merging, splitting, bounded queue, shutdown."""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ganserve.latent import make_latents
from service.batcher import Batcher, BatcherStopped, QueueFull
from service.config import Settings
from service.metrics import Metrics
from service.registry import LoadedModel, Registry, load_registry


@pytest.fixture(scope="module")
def registry(models_dir: Path) -> Registry:
    return load_registry(Settings(models_dir=models_dir, max_batch=8))


def make_batcher(model: LoadedModel, **kw) -> Batcher:
    options = {"max_batch": 64, "max_wait_s": 0.05, "max_queue": 100} | kw
    return Batcher(model, executor=None, metrics=Metrics(), **options)


async def with_batcher(batcher: Batcher, coro_fn):
    batcher.start()
    try:
        return await coro_fn()
    finally:
        await batcher.stop()


def batch_sizes(batcher: Batcher) -> tuple[float, float]:
    """(sum, count) of the batch-size histogram."""
    h = batcher.metrics.batch_size.labels(batcher.model.name)
    samples = {s.name: s.value for m in h.collect() for s in m.samples}
    return samples["ganserve_batch_size_sum"], samples["ganserve_batch_size_count"]


def test_concurrent_requests_share_one_session_run(registry: Registry) -> None:
    model = registry.models["dcgan-fashion"]
    batcher = make_batcher(model)
    latents = [make_latents(seed, 3, model.latent_dim) for seed in range(10)]

    async def go():
        return await asyncio.gather(*(batcher.generate(z) for z in latents))

    results = asyncio.run(with_batcher(batcher, go))
    assert batcher.runs == 1
    assert batch_sizes(batcher) == (30, 1)
    for z, images in zip(latents, results, strict=True):
        assert np.array_equal(images, model.run(z))


def test_large_request_is_split_into_runs_of_max_batch(registry: Registry) -> None:
    model = registry.models["dcgan-fashion"]
    batcher = make_batcher(model, max_batch=4)
    z = make_latents(5, 10, model.latent_dim)
    images = asyncio.run(with_batcher(batcher, lambda: batcher.generate(z)))
    assert batcher.runs == 3
    assert batch_sizes(batcher) == (10, 3)
    assert np.array_equal(images, model.run(z))


def test_requests_share_runs_across_boundaries(registry: Registry) -> None:
    """Two requests of 3 with max_batch 4: runs of 4 and 2; each gets its own rows back."""
    model = registry.models["cgan-fashion"]
    batcher = make_batcher(model, max_batch=4)
    za, zb = make_latents(1, 3, 100), make_latents(2, 3, 100)
    la, lb = np.array([0, 1, 2]), np.array([7, 8, 9])

    async def go():
        return await asyncio.gather(batcher.generate(za, la), batcher.generate(zb, lb))

    a, b = asyncio.run(with_batcher(batcher, go))
    assert batcher.runs == 2
    assert np.array_equal(a, model.run(za, la))
    assert np.array_equal(b, model.run(zb, lb))


def test_full_queue_refuses_new_requests(registry: Registry) -> None:
    model = registry.models["dcgan-fashion"]
    batcher = make_batcher(model, max_queue=2, max_wait_s=0.3)
    z = make_latents(0, 1, model.latent_dim)

    async def go():
        waiting = [asyncio.create_task(batcher.generate(z)) for _ in range(2)]
        await asyncio.sleep(0)  # both queued, held by max_wait
        assert batcher.queued == 2
        with pytest.raises(QueueFull):
            await batcher.generate(z)
        return await asyncio.gather(*waiting)

    results = asyncio.run(with_batcher(batcher, go))
    assert len(results) == 2 and batcher.runs == 1


def test_stop_fails_waiting_requests(registry: Registry) -> None:
    model = registry.models["dcgan-fashion"]
    batcher = make_batcher(model, max_wait_s=10)

    async def go():
        batcher.start()
        task = asyncio.create_task(batcher.generate(make_latents(0, 2, model.latent_dim)))
        await asyncio.sleep(0.01)
        await batcher.stop()
        with pytest.raises(BatcherStopped):
            await task
        with pytest.raises(BatcherStopped):
            await batcher.generate(make_latents(0, 1, model.latent_dim))

    asyncio.run(go())
    assert batcher.runs == 0


def test_cancelled_request_is_not_run(registry: Registry) -> None:
    model = registry.models["dcgan-fashion"]
    batcher = make_batcher(model, max_wait_s=0.1)
    z = make_latents(0, 2, model.latent_dim)

    async def go():
        gone = asyncio.create_task(batcher.generate(make_latents(1, 5, model.latent_dim)))
        kept = asyncio.create_task(batcher.generate(z))
        await asyncio.sleep(0)
        gone.cancel()
        return await kept

    images = asyncio.run(with_batcher(batcher, go))
    assert np.array_equal(images, model.run(z))
    assert batch_sizes(batcher) == (2, 1)


def spied(model: LoadedModel, spy: ConcurrencySpy) -> LoadedModel:
    """A copy of the model whose run goes through the spy."""
    copied = copy.copy(model)
    copied.run = spy  # type: ignore[method-assign]
    return copied


class ConcurrencySpy:
    """The real model's run, slowed a little, counting how many runs overlap."""

    def __init__(self, model: LoadedModel) -> None:
        self.run = model.run
        self.active = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(0.2)
            return self.run(z, labels)
        finally:
            with self.lock:
                self.active -= 1


@pytest.mark.parametrize("max_runs", [1, 2])
def test_full_batches_run_side_by_side_up_to_max_runs(registry: Registry, max_runs: int) -> None:
    model = registry.models["dcgan-fashion"]
    spy = ConcurrencySpy(model)
    batcher = make_batcher(spied(model, spy), max_batch=4, max_runs=max_runs)
    z = make_latents(9, 12, model.latent_dim)
    images = asyncio.run(with_batcher(batcher, lambda: batcher.generate(z)))
    assert batcher.runs == 3
    assert spy.most == max_runs
    assert np.array_equal(images, model.run(z))


def test_partial_batches_still_merge_with_several_runs_allowed(registry: Registry) -> None:
    model = registry.models["dcgan-fashion"]
    batcher = make_batcher(model, max_runs=2)
    latents = [make_latents(seed, 3, model.latent_dim) for seed in range(5)]

    async def go():
        return await asyncio.gather(*(batcher.generate(z) for z in latents))

    results = asyncio.run(with_batcher(batcher, go))
    assert batcher.runs == 1 and batch_sizes(batcher) == (15, 1)
    for z, images in zip(latents, results, strict=True):
        assert np.array_equal(images, model.run(z))


def test_stop_fails_requests_whose_run_is_under_way(registry: Registry) -> None:
    model = registry.models["dcgan-fashion"]
    batcher = make_batcher(spied(model, ConcurrencySpy(model)), max_wait_s=0)

    async def go():
        batcher.start()
        task = asyncio.create_task(batcher.generate(make_latents(0, 2, model.latent_dim)))
        await asyncio.sleep(0.05)  # the run has started
        await batcher.stop()
        with pytest.raises(BatcherStopped):
            await task

    asyncio.run(go())


def test_small_runs_run_on_the_event_loop_when_asked(registry: Registry) -> None:
    """inline_rows=4: a run of 3 latents runs on the loop's thread, a run of 5 in a worker;
    both give the model's images."""
    model = copy.copy(registry.models["dcgan-fashion"])
    threads: list[int] = []
    run = model.run

    def recording_run(z, labels=None):
        threads.append(threading.get_ident())
        return run(z, labels)

    model.run = recording_run  # type: ignore[method-assign]
    batcher = make_batcher(model, inline_rows=4, max_wait_s=0.0)
    small, large = make_latents(1, 3, 100), make_latents(2, 5, 100)

    async def go():
        loop_thread = threading.get_ident()
        out = [await batcher.generate(small), await batcher.generate(large)]
        return loop_thread, out

    loop_thread, (a, b) = asyncio.run(with_batcher(batcher, go))
    assert threads[0] == loop_thread and threads[1] != loop_thread
    assert np.array_equal(a, run(small)) and np.array_equal(b, run(large))
