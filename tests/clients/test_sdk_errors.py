"""Each error status has its own class, carrying the status, server message and response."""

from __future__ import annotations

import httpx
import pytest
from ganserve_client import (
    APIConnectionError,
    APIError,
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
from ganserve_client.errors import error_class_for_status
from sdk_testlib import Api, error_response

STATUS_CLASSES = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (404, NotFoundError),
    (413, BadRequestError),
    (422, UnprocessableEntityError),
    (429, RateLimitError),
    (500, InternalServerError),
    (502, InternalServerError),
    (503, ServiceUnavailableError),
    (504, InternalServerError),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
def test_each_status_raises_its_class(make_api, status: int, cls: type[APIStatusError]) -> None:
    api: Api = make_api(error_response(status, f"server says {status}"), max_retries=0)
    with pytest.raises(cls) as info:
        api.generate(n=1)
    error = info.value
    assert type(error) is cls
    assert isinstance(error, APIStatusError | APIError | GanserveError)
    assert error.status_code == status
    assert error.message == f"server says {status}"
    assert error.body == {"detail": f"server says {status}"}
    assert isinstance(error.response, httpx.Response)
    assert error.response.status_code == status
    assert error.request is not None and error.request.url.path == "/generate"
    assert str(error) == f"{status} {error.response.reason_phrase}: server says {status}"


@pytest.mark.parametrize(("status", "cls"), [*STATUS_CLASSES, (418, APIStatusError)])
def test_one_function_maps_status_to_class(status: int, cls: type[APIStatusError]) -> None:
    assert error_class_for_status(status) is cls


def test_validation_details_become_one_line(make_api) -> None:
    detail = [
        {"type": "greater_than_equal", "loc": ["body", "n"], "msg": "Input should be >= 1"},
        {"type": "value_error", "loc": ["query", "dims", 1], "msg": "dim 100 outside [0, 100)"},
        {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error"},
    ]
    api: Api = make_api(error_response(422, detail))
    with pytest.raises(UnprocessableEntityError) as info:
        api.generate(n=0)
    assert info.value.message == (
        "n: Input should be >= 1; dims.1: dim 100 outside [0, 100); JSON decode error"
    )
    assert info.value.body == {"detail": detail}
    assert api.sleeps == []


def test_non_json_error_body_is_kept_as_the_message(make_api) -> None:
    api: Api = make_api(httpx.Response(500, text="Internal Server Error\n  (proxy)"))
    with pytest.raises(InternalServerError) as info:
        api.models(max_retries=0)
    assert info.value.message == "Internal Server Error (proxy)"
    assert info.value.body is None


def test_unknown_model_is_not_found(make_api) -> None:
    api: Api = make_api(error_response(404, "unknown model 'x'; available: a, b"))
    with pytest.raises(NotFoundError, match="available: a, b"):
        api.model("x")


def test_connection_refused_is_a_connection_error(make_api) -> None:
    api: Api = make_api(httpx.ConnectError("[Errno 111] Connection refused"), max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        api.generate()
    assert type(info.value) is APIConnectionError
    assert "cannot reach http://ganserve.test/generate" in str(info.value)
    assert "Connection refused" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow")])
def test_timeouts_are_their_own_class(make_api, exc: Exception) -> None:
    api: Api = make_api(exc, max_retries=0)
    with pytest.raises(APITimeoutError, match="in time") as info:
        api.generate()
    assert isinstance(info.value, APIConnectionError)
