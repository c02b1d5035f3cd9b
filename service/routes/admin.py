"""Operations on the running service: re-reading the models directory (behind the API key)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, HTTPException, status

from service.deps import LifecycleDep, RegistryDep, require_api_key
from service.lifecycle import ModelsDirUnreadable
from service.schemas import ErrorResponse, ReloadResponse

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_api_key)])


@router.post(
    "/reload",
    responses={
        401: {"model": ErrorResponse, "description": "An API key is configured and was not sent."},
        503: {
            "model": ErrorResponse,
            "description": "The models are still loading, or the models directory is unreadable.",
        },
    },
)
async def reload_models(lifecycle: LifecycleDep, registry: RegistryDep) -> ReloadResponse:
    """Re-read the models directory now: serve new and changed models, stop removed ones."""
    try:
        report = await lifecycle.reload()
    except ModelsDirUnreadable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    return ReloadResponse(**asdict(report), models=sorted(registry.models))
