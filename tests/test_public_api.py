"""One coherent public API: the timeout an app's own httpx client brings, the exported limiter and
retry policy, `raw` (the JSON) and `model` (the generated model) on every object, one error-object
type, and the deprecated names that still work. Only the wire matters: httpx.MockTransport.
"""

from __future__ import annotations

from typing import Any

import httpx
import klaviyo_catalog
import pytest
from klaviyo_catalog import CatalogJobs, MemoryRateLimiter, Rate, RetryPolicy

from tests import documents as docs
from tests.hardening_support import MODES, SECRET_KEY, Mode, call

DOCUMENT = docs.single(docs.job("J"))


def timeouts_sent(mode: Mode, app_timeout: httpx.Timeout, **options: Any) -> list[Any]:
    """The timeout each request carried, for a client built with `options` and an app-supplied
    httpx client whose own timeout is `app_timeout`."""
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json=DOCUMENT)

    def http(mode: Mode) -> httpx.Client | httpx.AsyncClient:
        transport = httpx.MockTransport(handler)
        if mode == "sync":
            return httpx.Client(transport=transport, timeout=app_timeout)
        return httpx.AsyncClient(transport=transport, timeout=app_timeout)

    client_options = {
        "api_key": SECRET_KEY,
        "base_url": "https://a.klaviyo.com",
        "rate_limiter": MemoryRateLimiter(),
        **options,
    }
    call(mode, client_options, "get_item_update_job", "J", http=http)
    return seen


@pytest.mark.parametrize("mode", MODES)
def test_an_app_supplied_client_keeps_its_own_timeout(mode: Mode) -> None:
    own = httpx.Timeout(3.5, connect=1.25)
    (sent,) = timeouts_sent(mode, own)
    assert sent == {"connect": 1.25, "read": 3.5, "write": 3.5, "pool": 3.5}


@pytest.mark.parametrize("mode", MODES)
def test_a_timeout_passed_to_the_facade_wins_over_the_app_clients(mode: Mode) -> None:
    (sent,) = timeouts_sent(mode, httpx.Timeout(3.5), timeout=7)
    assert sent == {"connect": 7.0, "read": 7.0, "write": 7.0, "pool": 7.0}


def test_without_an_app_client_an_attempt_has_thirty_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json=DOCUMENT)

    # The facade's own client sends through httpx's transport: answer there, off the network.
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle_request)
    with CatalogJobs(SECRET_KEY, rate_limiter=MemoryRateLimiter()) as kc:
        kc.get_item_update_job("J")
    assert seen == [{"connect": 30.0, "read": 30.0, "write": 30.0, "pool": 30.0}]


def test_the_limiter_and_retry_policy_are_public_and_usable() -> None:
    assert {"MemoryRateLimiter", "RetryPolicy"} <= set(klaviyo_catalog.__all__)
    limiter = MemoryRateLimiter()
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json=DOCUMENT)

    options: dict[str, Any] = {
        "api_key": SECRET_KEY,
        "base_url": "https://a.klaviyo.com",
        "rate_limiter": limiter,
        "rate_limits": [Rate(1, 60.0)],
        "http_client": httpx.Client(transport=httpx.MockTransport(handler)),
    }
    with CatalogJobs(**options) as kc:
        kc.get_item_update_job("J")
    # The budget lives in the limiter the app passed.
    assert len(calls) == 1 and len(limiter) == 1
    policy = RetryPolicy(max_retries=2, backoff_base=0.5)
    assert 0 <= policy.backoff(1) <= 0.5 and policy.should_retry_status(503)
    assert not policy.should_retry_status(404)
