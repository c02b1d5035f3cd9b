"""Python SDK for the ganserve image generation service.

from ganserve_client import Client

with Client("http://127.0.0.1:8000") as client:
    grid = client.generate(n=16, seed=3)
    grid.save("grid.png")
"""

from ._client import AsyncClient, Client
from ._constants import VERSION as __version__
from .errors import (
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    GanserveError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from .types import GridImage, ImageSet, ModelInfo, ModelList, SingleImage

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "GanserveError",
    "GridImage",
    "ImageSet",
    "InternalServerError",
    "ModelInfo",
    "ModelList",
    "NotFoundError",
    "RateLimitError",
    "ServiceUnavailableError",
    "SingleImage",
    "UnprocessableEntityError",
    "__version__",
]
