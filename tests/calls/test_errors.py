"""Errors keep their context: the httpx error behind a TransportError, the response behind an
APIError or InvalidResponseError, the parser's exception behind a schema mismatch; and they
pickle. Only the wire matters here, so httpx.MockTransport plays the server.
"""

from __future__ import annotations

import errno
import json
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from klaviyo_catalog import (
    APIError,
    InvalidResponseError,
    MemoryRateLimiter,
    NotFoundError,
    RateLimitError,
    TransportError,
)

from tests.support import documents as docs
from tests.support.hardening_support import SECRET_KEY, Mode, call, closed_port
from tests.support.spec_facts import SLASH

Handler = Callable[[httpx.Request], httpx.Response]


def mocked(mode: Mode, handler: Handler, name: str, *args: Any, **kwargs: Any) -> Any:
    """`name(*args)` on a client whose app-supplied httpx client answers with `handler`."""
    client_options = {
        "api_key": SECRET_KEY,
        "base_url": "https://a.klaviyo.com",
        "max_retries": 0,
        "rate_limiter": MemoryRateLimiter(),
    }

    def http(mode: Mode) -> httpx.Client | httpx.AsyncClient:
        transport = httpx.MockTransport(handler)
        if mode == "sync":
            return httpx.Client(transport=transport)
        return httpx.AsyncClient(transport=transport)

    return call(mode, client_options, name, *args, http=http, **kwargs)


def error_body(status: int, detail: str) -> bytes:
    return json.dumps(docs.error(status, detail)).encode()


def test_a_transport_error_keeps_the_httpx_error_and_its_dns_detail(mode: Mode) -> None:
    def unresolvable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    with pytest.raises(TransportError, match="ConnectError") as caught:
        mocked(mode, unresolvable, "get_item_update_job", "J")
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.ConnectError)
    assert "Name or service not known" in str(cause)
    # The request httpx keeps on its error was sent, and no longer shows the key.
    assert cause.request.url.path.endswith("/J" + SLASH)  # the generated path style
    assert cause.request.headers["authorization"] == "[redacted]"


def test_a_refused_connection_keeps_the_operating_systems_reason(mode: Mode) -> None:
    dead = {
        "api_key": SECRET_KEY,
        "base_url": f"http://127.0.0.1:{closed_port()}",
        "max_retries": 0,
        "rate_limiter": MemoryRateLimiter(),
    }
    with pytest.raises(TransportError) as caught:
        call(mode, dead, "get_item_update_job", "J")
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.ConnectError)
    # The OSError itself is down the chain httpx keeps (anyio's async connect wraps it).
    assert errno.ECONNREFUSED in [getattr(e, "errno", None) for e in chain(cause)]
    # Sent through the client's own pool, the error knows its request too, the key redacted.
    assert cause.request.url.path.endswith("/J" + SLASH)
    assert cause.request.headers["authorization"] == "[redacted]"


def chain(error: BaseException) -> list[BaseException]:
    """The error, and every exception chained to it (causes, contexts, exception groups)."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        pending += [current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            pending += list(current.exceptions)
    return found


def test_an_api_error_carries_the_response_and_its_headers(mode: Mode) -> None:
    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404,
            content=error_body(404, "No job with that id."),
            headers={"Content-Type": "application/vnd.api+json", "X-Klaviyo-Req-Id": "req-77"},
        )

    with pytest.raises(NotFoundError) as caught:
        mocked(mode, not_found, "get_item_update_job", "J")
    error = caught.value
    assert error.response is not None
    assert error.response.status_code == error.status_code == 404
    assert error.headers["x-klaviyo-req-id"] == error.request_id == "req-77"
    assert error.response.json()["errors"][0]["detail"] == "No job with that id."
    assert error.response.request.headers["authorization"] == "[redacted]"
    assert error.response.request.headers["revision"]  # the rest of the request is intact


def test_a_rate_limit_error_shows_the_servers_headers(mode: Mode) -> None:
    def throttled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, content=error_body(429, "Throttled."), headers={"Retry-After": "7"}
        )

    with pytest.raises(RateLimitError) as caught:
        mocked(mode, throttled, "list_item_create_jobs")
    assert caught.value.retry_after == 7.0
    assert caught.value.headers["retry-after"] == "7"


def test_a_body_that_is_not_json_keeps_the_response_the_excerpt_and_the_decoders_error(
    mode: Mode,
) -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=b"<html>maintenance</html>", headers={"Content-Type": "text/html"}
        )

    with pytest.raises(InvalidResponseError, match="not JSON") as caught:
        mocked(mode, html, "get_item_update_job", "J")
    error = caught.value
    assert error.excerpt == "<html>maintenance</html>"
    assert error.response is not None and error.response.headers["content-type"] == "text/html"
    assert isinstance(error.__cause__, ValueError)  # json's (or orjson's) decode error


def test_a_schema_mismatch_keeps_the_readers_complaint_as_its_cause(mode: Mode) -> None:
    def wrong_shape(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": 1})

    with pytest.raises(InvalidResponseError, match="does not match the schema") as caught:
        mocked(mode, wrong_shape, "get_item_update_job", "J")
    assert caught.value.__cause__ is not None
    assert "data should be an object" in str(caught.value.__cause__)
    assert caught.value.status_code == 200 and caught.value.response is not None


def test_the_generated_models_and_a_views_attribute_keep_their_parse_error(mode: Mode) -> None:
    item = docs.item("I1")
    item["attributes"]["created"] = "last tuesday"
    item["links"] = 5  # an object to the generated model; never read by the facade
    document = docs.single(docs.job("J", linkage=["I1"]), [item])
    document["data"]["links"] = 5

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=document)

    job = mocked(mode, answer, "get_item_update_job", "J", include=["items"])
    with pytest.raises(InvalidResponseError, match="created") as caught:
        _ = job.items[0].created
    assert isinstance(caught.value.__cause__, ValueError)
    assert "last tuesday" in str(caught.value.__cause__)
    builds: list[Callable[[], object]] = [lambda: job.model, lambda: job.items[0].model]
    for build in builds:
        with pytest.raises(InvalidResponseError, match="does not match") as caught:
            build()
        # The generated code's own exception, whatever it is, stays reachable.
        assert isinstance(
            caught.value.__cause__, KeyError | ValueError | TypeError | AttributeError
        )


def test_errors_pickle_with_their_fields_and_response() -> None:
    request = httpx.Request("GET", "https://a.klaviyo.com/api/x")
    response = httpx.Response(
        429, content=error_body(429, "Throttled."), headers={"A": "b"}, request=request
    )
    original = RateLimitError(
        "throttled", status_code=429, request_id="r1", response=response, retry_after=2.5
    )
    original.cursor = "c2"
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is RateLimitError and str(copy) == "throttled"
    assert (copy.status_code, copy.request_id, copy.retry_after, copy.cursor) == (
        429,
        "r1",
        2.5,
        "c2",
    )
    assert copy.headers["a"] == "b" and copy.response is not None
    assert copy.response.json()["errors"][0]["status"] == 429
    bare = pickle.loads(pickle.dumps(APIError("x", status_code=409)))
    assert bare.response is None and len(bare.headers) == 0
