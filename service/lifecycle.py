"""Live model changes: the models directory re-read while the service runs, no request dropped.

``ModelLifecycle.reload()`` compares each model folder's files with the ones its
served or refused model was read from (``Registry.sources``, a fingerprint of
card.json and model.onnx):

- a new folder is loaded, checked and warmed up like at startup, then served;
- a changed one is loaded beside the version being served. When it passes, a new
  batcher takes every new request at once and the old batcher finishes the
  requests it already holds (``Batcher.drain``) on the old session. When it fails,
  the old version keeps serving and the reason is listed under ``refused``;
- a removed folder stops being served (requests already queued still finish);
- a new empty or stray folder is logged once as skipped.

Loading runs in a worker thread; the swap itself is one step of the event loop.
Every route looks its model and batcher up and enqueues its latents without
awaiting in between, so a request meets either the old model and batcher or the
new ones, never one of each.

``GANSERVE_MODEL_POLL_SECONDS`` > 0 re-reads the directory on that period;
``POST /admin/reload`` does it once, at once.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from service.batcher import Batcher
from service.config import Settings
from service.metrics import Metrics
from service.registry import (
    Fingerprint,
    LoadedModel,
    Registry,
    choose_defaults,
    fingerprint,
    log_skipped,
    scan_models_dir,
    try_load_model,
)

logger = logging.getLogger("service.lifecycle")

# How long a replaced or removed model's batcher may take to finish what it holds.
DRAIN_SECONDS = 60.0


class ModelsDirUnreadable(Exception):
    """The models directory cannot be listed; the models being served stay as they are."""


def new_batcher(
    model: LoadedModel, settings: Settings, executor: Executor, metrics: Metrics
) -> Batcher:
    """A batcher for one model with the service's batching settings (not started)."""
    return Batcher(
        model,
        max_batch=settings.max_batch,
        max_wait_s=settings.max_wait_ms / 1000,
        max_queue=settings.max_queue,
        executor=executor,
        metrics=metrics,
        max_runs=settings.max_concurrent_runs,
        inline_rows=settings.inline_max_rows,
    )


@dataclass
class ReloadReport:
    """What one reload changed."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # refused in this reload, and why

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.removed or self.refused)


def _scan(root: Path) -> tuple[dict[str, tuple[Path, Fingerprint]], dict[str, str]]:
    """The model folders with their fingerprints, and the skipped folders (blocking)."""
    try:
        folders, skipped = scan_models_dir(root)
    except OSError as exc:
        raise ModelsDirUnreadable(f"cannot read the models directory {root} ({exc})") from None
    return {name: (path, fingerprint(path)) for name, path in folders.items()}, skipped


class ModelLifecycle:
    """Re-reads the models directory into the running app's registry and batchers."""

    def __init__(self, state: Any, executor: Executor) -> None:
        self.state = state  # the app's state: registry, batchers, readiness
        self.settings: Settings = state.settings
        self.registry: Registry = state.registry
        self.batchers: dict[str, Batcher] = state.batchers
        self.metrics: Metrics = state.metrics
        self.executor = executor
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._retiring: dict[Batcher, asyncio.Task[None]] = {}
        self._closed = False
        self._unreadable = False  # the last scan failed (logged once per failure)

    def start(self) -> None:
        """Start polling the models directory when GANSERVE_MODEL_POLL_SECONDS is set."""
        if self.settings.model_poll_seconds > 0:
            self._poller = asyncio.create_task(self._poll(), name="ganserve-model-poll")

    async def close(self) -> None:
        """Stop polling; stop the batchers of replaced models still finishing their requests."""
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        retiring = list(self._retiring.items())
        for _, task in retiring:
            task.cancel()
        await asyncio.gather(*(task for _, task in retiring), return_exceptions=True)
        for batcher, _ in retiring:
            await batcher.stop()

    async def _poll(self) -> None:
        """Reload every poll period; an error is logged and the next period tries again."""
        while True:
            await asyncio.sleep(self.settings.model_poll_seconds)
            try:
                await self.reload()
            except ModelsDirUnreadable:
                pass  # logged by reload
            except Exception:
                logger.exception("re-reading the models directory failed")

    async def reload(self) -> ReloadReport:
        """Bring the served models in line with the models directory (one reload at a time)."""
        async with self._lock:
            return await self._reload()

    async def _reload(self) -> ReloadReport:
        root = Path(self.settings.models_dir)
        try:
            found, skipped = await anyio.to_thread.run_sync(_scan, root)
        except ModelsDirUnreadable as exc:
            if not self._unreadable:
                logger.error("%s; the models being served stay as they are", exc)
            self._unreadable = True
            raise
        self._unreadable = False
        for name, reason in skipped.items():
            if self.registry.skipped.get(name) != reason:
                log_skipped(root, name, reason)
        self.registry.skipped = skipped

        # Load what is new or changed, off the event loop.
        results: dict[str, tuple[LoadedModel | str, Fingerprint]] = {}
        for name, (path, before) in found.items():
            if self.registry.sources.get(name) == before:
                continue
            result = await anyio.to_thread.run_sync(try_load_model, path, self.settings)
            after = await anyio.to_thread.run_sync(fingerprint, path)
            if after != before:  # still being written: read it again at the next reload
                logger.info("model %s changed while it was read; it is read again next time", name)
                continue
            results[name] = (result, before)
        removed = [name for name in self.registry.sources if name not in found]
        if self._closed:
            return ReloadReport()

        # Apply every change in one step of the event loop (no await from here on).
        report = ReloadReport()
        for name, (result, source) in results.items():
            self.registry.sources[name] = source
            if isinstance(result, str):
                self._refuse(name, result, report)
            else:
                self._serve(result, report)
        for name in removed:
            self._remove(name, report)
        if report.changed:
            choose_defaults(self.registry, self.settings)
            self._update_readiness(root)
            logger.info(
                "models reloaded: %d served (added %s, replaced %s, removed %s, refused %s)",
                len(self.registry.models),
                ", ".join(report.added) or "none",
                ", ".join(report.replaced) or "none",
                ", ".join(report.removed) or "none",
                ", ".join(report.refused) or "none",
            )
        return report

    def _serve(self, model: LoadedModel, report: ReloadReport) -> None:
        """Serve a new or new version of a model: its new batcher takes every new request."""
        name = model.name
        batcher = new_batcher(model, self.settings, self.executor, self.metrics)
        batcher.start()
        old = self.batchers.get(name)
        self.batchers[name] = batcher
        self.registry.models[name] = model
        self.registry.refused.pop(name, None)
        if old is None:
            report.added.append(name)
        else:
            report.replaced.append(name)
            self._retire(old)
            if old.model.provider != model.provider:
                self._drop_info(name, old.model.provider)
        self.metrics.model_info.labels(name, model.provider).set(1)

    def _refuse(self, name: str, reason: str, report: ReloadReport) -> None:
        """Record a refused model; a version already being served keeps serving."""
        if name in self.registry.models:
            reason = f"a new version was refused ({reason}); the version loaded before is served"
            logger.error("model %s: the version loaded before keeps serving", name)
        self.registry.refused[name] = reason
        report.refused[name] = reason

    def _remove(self, name: str, report: ReloadReport) -> None:
        """Stop serving a model whose folder is gone."""
        self.registry.sources.pop(name, None)
        self.registry.refused.pop(name, None)
        self.registry.models.pop(name, None)
        old = self.batchers.pop(name, None)
        if old is not None:
            self._retire(old)
            self._drop_info(name, old.model.provider)
        report.removed.append(name)
        logger.info("model %s was removed from %s", name, self.settings.models_dir)

    def _retire(self, batcher: Batcher) -> None:
        """Let a replaced or removed model's batcher finish its requests, then stop it."""
        name = batcher.model.name
        task = asyncio.create_task(batcher.drain(DRAIN_SECONDS), name=f"drain-{name}")
        self._retiring[batcher] = task
        task.add_done_callback(lambda _: self._retiring.pop(batcher, None))

    def _drop_info(self, name: str, provider: str) -> None:
        """Remove a model's ganserve_model_info series."""
        try:
            self.metrics.model_info.remove(name, provider)
        except KeyError:
            pass

    def _update_readiness(self, root: Path) -> None:
        """Ready while at least one model is served (and the service is not shutting down)."""
        if self._closed:
            return
        ready = bool(self.registry.models)
        self.state.ready = ready
        if not ready:
            self.state.not_ready_reason = f"no model could be loaded from {root}"
        self.metrics.ready.set(1 if ready else 0)
