"""Liveness, readiness and Prometheus metrics (open: no API key)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response

from service.deps import MetricsDep
from service.metrics import CONTENT_TYPE_LATEST
from service.schemas import ErrorResponse, Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def read_health() -> Health:
    """Answer while the process is alive."""
    return Health()


@router.get("/readyz", responses={503: {"model": ErrorResponse, "description": "Not ready."}})
async def read_readiness(request: Request) -> Readiness:
    """Answer 200 once every model is loaded and warmed up, 503 before (and when none loaded)."""
    state = request.app.state
    if not state.ready:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, state.not_ready_reason)
    registry = state.registry
    return Readiness(models=sorted(registry.models), refused=registry.refused)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def read_metrics(metrics: MetricsDep) -> Response:
    """Export the Prometheus metrics."""
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
