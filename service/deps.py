"""Dependencies as ``Annotated`` aliases (tests replace them via ``app.dependency_overrides``).

They are ``async def`` because none of them blocks: FastAPI runs a plain ``def``
dependency in its thread pool, which would cost every request a thread hop each.
"""

from __future__ import annotations

import secrets
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from service.config import Settings
from service.imaging import ImageService
from service.lifecycle import ModelLifecycle
from service.metrics import Metrics
from service.registry import Registry

bearer = HTTPBearer(
    auto_error=False,
    description="Only when the service has an API key (GANSERVE_API_KEY): "
    "`Authorization: Bearer <key>`.",
)

T = TypeVar("T")


def _loaded(value: T | None) -> T:
    """``value`` once the models are loaded; 503 while it is still ``None``."""
    if value is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the models are still loading")
    return value


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    """The app's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_registry(request: Request) -> Registry:
    """The loaded models; 503 while they are still loading."""
    registry: Registry | None = request.app.state.registry
    return _loaded(registry)


async def get_image_service(request: Request) -> ImageService:
    """What the image routes use: registry, batchers, limits and metrics together."""
    service: ImageService | None = request.app.state.images
    return _loaded(service)


async def get_lifecycle(request: Request) -> ModelLifecycle:
    """What reloads the models directory; 503 while the models are still loading."""
    lifecycle: ModelLifecycle | None = request.app.state.lifecycle
    return _loaded(lifecycle)


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
ImageServiceDep = Annotated[ImageService, Depends(get_image_service)]
LifecycleDep = Annotated[ModelLifecycle, Depends(get_lifecycle)]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, as ``bearer`` reads it."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


def api_key_accepted(settings: Settings, token: str | None) -> bool:
    """Whether a request with this bearer token may pass: yes when no key is configured."""
    if settings.api_key is None:
        return True
    expected = settings.api_key.get_secret_value().encode()
    return secrets.compare_digest((token or "").encode(), expected)


async def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Refuse the request with 401 unless it carries the configured API key (if any)."""
    if not api_key_accepted(settings, credentials.credentials if credentials else None):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid API key is required: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
