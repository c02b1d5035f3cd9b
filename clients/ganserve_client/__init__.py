"""Python SDK for the ganserve image generation service.

from ganserve_client import Client

with Client("http://127.0.0.1:8000") as client:
    grid = client.generate(n=16, seed=3)
    grid.save("grid.png")

The error classes (``errors.__all__``) are exported here too.
"""

from . import errors
from ._client import AsyncClient, Client
from ._constants import VERSION as __version__
from .errors import *  # noqa: F403
from .types import GridImage, ImageSet, ModelInfo, ModelList, SingleImage

__all__ = [
    "AsyncClient",
    "Client",
    "GridImage",
    "ImageSet",
    "ModelInfo",
    "ModelList",
    "SingleImage",
    "__version__",
]
__all__ += errors.__all__
