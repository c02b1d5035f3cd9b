"""Prometheus metrics, kept in a registry of their own per app (many apps can share a process)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "MetricsMiddleware"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The service's metrics: HTTP requests, queueing, batching, inference and encoding."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ganserve_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "ganserve_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            "ganserve_queue_seconds",
            "Time a request waits for its first session run",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "ganserve_batch_size",
            "Latents per session run",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.inference_time = Histogram(
            "ganserve_inference_seconds",
            "Duration of one session run",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.session_runs = Counter(
            "ganserve_session_runs", "ONNX Runtime session runs", ["model"], registry=r
        )
        self.images = Counter("ganserve_images", "Images generated", ["model"], registry=r)
        self.queue_depth = Gauge(
            "ganserve_queue_depth", "Requests waiting for a session run", ["model"], registry=r
        )
        self.rejected = Counter(
            "ganserve_rejected",
            "Requests refused with 503 because the model's queue was full",
            ["model"],
            registry=r,
        )
        self.encode_time = Histogram(
            "ganserve_encode_seconds",
            "Grid assembly and PNG encoding per response",
            ["format"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "ganserve_model_info", "1 for each served model", ["model", "provider"], registry=r
        )
        self.ready = Gauge("ganserve_ready", "1 once every model is loaded and warm", registry=r)
        # (method, route, status) -> its counter and latency series, looked up once each
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its latency under its method, route template and status."""
        series = self._request_series.get((method, route, status))
        if series is None:
            series = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._request_series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics, static_paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.static_paths = static_paths  # paths that are their own route label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception:
            status = 500
            raise
        finally:
            route = scope.get("route")
            path = scope.get("path", "")
            label = getattr(route, "path", None) or (
                path if path in self.static_paths else "unmatched"
            )
            self.metrics.observe_request(
                scope.get("method", ""), label, status, time.perf_counter() - start
            )
