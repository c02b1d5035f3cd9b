"""One description per endpoint serves both clients: the same keywords, the same checks."""

from __future__ import annotations

import httpx
import pytest
from ganserve_client import InternalServerError
from sdk_testlib import Api


def test_generate_takes_n_first(make_api) -> None:
    api: Api = make_api()
    api.generate(8, seed=1)
    assert api.script.body() == {"n": 8, "seed": 1}


@pytest.mark.parametrize(
    ("method", "args", "keyword"),
    [
        ("generate", (), "labels"),
        ("conditional", (["Bag"],), "dims"),
        ("perturb", (), "columns"),
        ("perturb", (), "colour"),
    ],
)
def test_a_keyword_the_endpoint_does_not_take_is_refused_before_sending(
    make_api, method: str, args: tuple, keyword: str
) -> None:
    api: Api = make_api()
    with pytest.raises(TypeError, match=f"takes no {keyword}"):
        getattr(api, method)(*args, **{keyword: 1})
    assert api.script.requests == []


def test_ready_is_false_only_when_the_service_says_unavailable(make_api) -> None:
    api: Api = make_api(httpx.Response(500, json={"detail": "broken"}))
    with pytest.raises(InternalServerError, match="broken"):
        api.ready()
