"""Fixtures for the SDK tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sdk_testlib import Api, Reply, Script


@pytest.fixture(params=["sync", "async"])
def make_api(request: pytest.FixtureRequest) -> Iterator[Callable[..., Api]]:
    """``make_api(*replies, **client_kwargs)`` for each of Client and AsyncClient."""
    made: list[Api] = []

    def make(*replies: Reply, **kwargs: Any) -> Api:
        api = Api(request.param, Script(*replies), **kwargs)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture(autouse=True)
def _no_ganserve_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from a clean environment; those about env variables set them."""
    monkeypatch.delenv("GANSERVE_URL", raising=False)
    monkeypatch.delenv("GANSERVE_API_KEY", raising=False)
