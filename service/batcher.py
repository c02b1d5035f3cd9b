"""A dynamic batcher per model: concurrent requests share ONNX Runtime session runs.

Requests queue their latents; one worker task per model takes up to ``max_batch``
latents at a time (waiting at most ``max_wait`` after the oldest request arrived
for more to come), runs the session in a worker thread so the event loop stays
free, and hands each request its rows. A request larger than ``max_batch`` is
split over several runs; a run can hold parts of several requests. When
``max_queue`` requests are already waiting, a new one is refused with QueueFull.

A run is started while earlier ones are still going only when a full batch is
waiting (at most ``max_runs`` at once): under load, the next batch's inference
overlaps the last one's (and the encoding), and a partial batch still waits for
the running one, so light load merges requests exactly as before.

A run of at most ``inline_rows`` latents runs on the event loop itself: for a small
generator, the thread hand-off and its wake-ups back cost about as much CPU as
the run, though nothing else on the loop moves meanwhile.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import Unavailable
from service.metrics import Metrics
from service.registry import LoadedModel

logger = logging.getLogger("service.batcher")


class QueueFull(Unavailable):
    """The model's queue is full; the client should retry after ``retry_after`` seconds."""

    def __init__(self, model: str, retry_after: int = 1) -> None:
        message = f"model {model} is busy: its request queue is full; retry shortly"
        super().__init__(message, retry_after)


class BatcherStopped(Unavailable):
    """The service is shutting down and runs no more requests."""


@dataclass(eq=False)
class _Job:
    z: np.ndarray
    labels: np.ndarray | None
    future: asyncio.Future[np.ndarray]
    enqueued: float
    out: np.ndarray | None = None
    taken: int = 0  # rows handed to session runs so far
    done: int = 0  # rows whose images came back

    @property
    def rows(self) -> int:
        return int(self.z.shape[0])


class Batcher:
    """Merges one model's concurrent requests into session runs of at most ``max_batch``."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        executor: Executor | None,
        metrics: Metrics,
        max_runs: int = 1,
        inline_rows: int = 0,
    ) -> None:
        self.model = model
        self.inline_rows = inline_rows
        self.max_runs = max(1, max_runs)
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.executor = executor
        self.metrics = metrics
        # this model's series, looked up once (labels() takes a lock and a dict lookup)
        name = model.name
        self._queue_depth = metrics.queue_depth.labels(name)
        self._rejected = metrics.rejected.labels(name)
        self._queue_time = metrics.queue_time.labels(name)
        self._session_runs = metrics.session_runs.labels(name)
        self._inference_time = metrics.inference_time.labels(name)
        self._batch_size = metrics.batch_size.labels(name)
        self._images = metrics.images.labels(name)
        self.runs = 0  # session runs so far
        self._jobs: collections.deque[_Job] = collections.deque()
        self._pending_rows = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._draining = False  # no more requests will come: run what is queued at once

    def start(self) -> None:
        """Start the worker task on the running event loop."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._work(), name=f"batcher-{self.model.name}")

    async def stop(self, reason: str = "the service is shutting down") -> None:
        """Stop the worker and fail every request still waiting (BatcherStopped(reason))."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        while self._jobs:
            job = self._jobs.popleft()
            if not job.future.done():
                job.future.set_exception(BatcherStopped(reason))
        self._pending_rows = 0
        self._queue_depth.set(0)

    async def drain(self, timeout: float) -> None:
        """Finish the requests already queued or running, then stop (a replaced model's end).

        The batcher keeps working meanwhile, without waiting for more requests (new
        ones go to whatever batcher serves the model now). Requests still unfinished
        after ``timeout`` seconds fail with BatcherStopped, as at shutdown.
        """
        self._draining = True
        if self._wakeup is not None:
            self._wakeup.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # Jobs whose callers gave up are done already: they hold nothing back.
            pending: list[asyncio.Future[Any]] = [
                j.future for j in self._jobs if not j.future.done()
            ]
            pending.extend(self._running)
            left = deadline - loop.time()
            if not pending:
                break
            if left <= 0:
                logger.error(
                    "model %s: %d requests still unfinished after %gs of draining",
                    self.model.name,
                    len(pending),
                    timeout,
                )
                break
            await asyncio.wait(pending, timeout=left)
        await self.stop(f"model {self.model.name} was replaced or removed; retry")

    @property
    def queued(self) -> int:
        """Requests waiting (or partly run)."""
        return len(self._jobs)

    async def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """uint8 [n, H, W, C] images for latents z [n, latent_dim] (and labels [n])."""
        if self._stopped or self._wakeup is None:
            raise BatcherStopped("the batcher is not running")
        if len(self._jobs) >= self.max_queue:
            self._rejected.inc()
            raise QueueFull(self.model.name)
        if len(z) == 0:
            return np.zeros((0, *self.model.image_shape), dtype=np.uint8)
        loop = asyncio.get_running_loop()
        job = _Job(z=z, labels=labels, future=loop.create_future(), enqueued=loop.time())
        self._jobs.append(job)
        self._pending_rows += job.rows
        self._queue_depth.set(len(self._jobs))
        self._wakeup.set()
        return await job.future

    async def _wait_for_batch(self) -> None:
        """Return once a full batch is waiting or the oldest request waited max_wait."""
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while not self._jobs:
            self._wakeup.clear()
            await self._wakeup.wait()
        deadline = self._jobs[0].enqueued + self.max_wait_s
        while self._pending_rows < self.max_batch and not self._draining:
            timeout = deadline - loop.time()
            if timeout <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                return

    def _take(self) -> list[tuple[_Job, int, int]]:
        """Up to max_batch waiting rows, oldest first, as (job, start, stop) parts."""
        parts: list[tuple[_Job, int, int]] = []
        room = self.max_batch
        now = asyncio.get_running_loop().time()
        while self._jobs and room > 0:
            job = self._jobs[0]
            if job.future.done():  # cancelled by its caller: drop what it still had queued
                self._jobs.popleft()
                self._pending_rows -= job.rows - job.taken
                continue
            if job.taken == 0:
                self._queue_time.observe(now - job.enqueued)
            start = job.taken
            stop = min(job.rows, start + room)
            parts.append((job, start, stop))
            job.taken = stop
            room -= stop - start
            self._pending_rows -= stop - start
            if job.taken == job.rows:
                self._jobs.popleft()
        self._queue_depth.set(len(self._jobs))
        return parts

    async def _work(self) -> None:
        """The worker loop: wait, take a batch, start its run, repeat; never dies."""
        assert self._wakeup is not None
        while True:
            await self._wait_for_batch()
            parts = self._take()
            if not parts:
                continue
            task = asyncio.create_task(self._run_parts(parts))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            # The next run starts beside this one only with a full batch, and within max_runs.
            while self._running and (
                len(self._running) >= self.max_runs or self._pending_rows < self.max_batch
            ):
                self._wakeup.clear()
                woken = asyncio.ensure_future(self._wakeup.wait())
                await asyncio.wait({woken, *self._running}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()

    async def _run_parts(self, parts: list[tuple[_Job, int, int]]) -> None:
        """Run one batch; a failure (or shutdown) fails the requests it held."""
        try:
            await self._run(parts)
        except asyncio.CancelledError:
            for job, _, _ in parts:
                self._fail(job, BatcherStopped("the service is shutting down"))
            raise
        except Exception as exc:
            logger.exception("session run of model %s failed", self.model.name)
            for job, _, _ in parts:
                self._fail(job, exc)

    async def _run(self, parts: list[tuple[_Job, int, int]]) -> None:
        """One session run over the parts (in a worker thread unless it is at most
        ``inline_rows`` latents); each request gets its rows."""
        z = np.concatenate([job.z[a:b] for job, a, b in parts])
        labels = None
        if self.model.conditional:
            labels = np.concatenate([job.labels[a:b] for job, a, b in parts])  # type: ignore[index]
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        if len(z) <= self.inline_rows:
            images = self.model.run(z, labels)
        else:
            images = await loop.run_in_executor(self.executor, self.model.run, z, labels)
        self.runs += 1
        self._session_runs.inc()
        self._inference_time.observe(time.perf_counter() - start)
        self._batch_size.observe(len(z))
        self._images.inc(len(z))
        offset = 0
        for job, a, b in parts:
            chunk = images[offset : offset + (b - a)]
            offset += b - a
            if job.future.done():
                continue
            if a == 0 and b == job.rows:
                job.future.set_result(chunk)
                continue
            if job.out is None:
                job.out = np.empty((job.rows, *chunk.shape[1:]), dtype=chunk.dtype)
            job.out[a:b] = chunk
            job.done += b - a
            if job.done == job.rows:
                job.future.set_result(job.out)

    def _fail(self, job: _Job, exc: Exception) -> None:
        """Fail a request and drop any of its rows still queued."""
        if not job.future.done():
            job.future.set_exception(exc)
        if job in self._jobs:
            self._jobs.remove(job)
            self._pending_rows -= job.rows - job.taken
