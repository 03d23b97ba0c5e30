"""One coherent public API: the timeout an app's own httpx client brings, the exported limiter and
retry policy, `raw` (the JSON) and `model` (the generated model) on every object, one error-object
type, and the deprecated names that still work. Only the wire matters: httpx.MockTransport.
"""

from __future__ import annotations

import json
from typing import Any

import httpcore
import httpx
import klaviyo_catalog
import pytest
from klaviyo_catalog import CatalogJobs, MemoryRateLimiter, Rate, RetryPolicy

from tests.support import documents as docs
from tests.support.hardening_support import SECRET_KEY, Mode, call

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


def test_an_app_supplied_client_keeps_its_own_timeout(mode: Mode) -> None:
    own = httpx.Timeout(3.5, connect=1.25)
    (sent,) = timeouts_sent(mode, own)
    assert sent == {"connect": 1.25, "read": 3.5, "write": 3.5, "pool": 3.5}


def test_a_timeout_passed_to_the_facade_wins_over_the_app_clients(mode: Mode) -> None:
    (sent,) = timeouts_sent(mode, httpx.Timeout(3.5), timeout=7)
    assert sent == {"connect": 7.0, "read": 7.0, "write": 7.0, "pool": 7.0}


def test_without_an_app_client_an_attempt_has_thirty_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []

    def handle_request(self: httpcore.ConnectionPool, request: httpcore.Request) -> Any:
        seen.append(request.extensions["timeout"])
        return httpcore.Response(200, content=json.dumps(DOCUMENT).encode())

    # The facade's own client sends through httpcore's pool: answer there, off the network.
    monkeypatch.setattr(httpcore.ConnectionPool, "handle_request", handle_request)
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


def answering(document: dict[str, Any], status: int = 200) -> httpx.Client:
    """An app client whose every request gets `document`."""
    return httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(status, json=document))
    )


def client(http: httpx.Client) -> CatalogJobs:
    return CatalogJobs(
        SECRET_KEY,
        base_url="https://a.klaviyo.com",
        rate_limiter=MemoryRateLimiter(),
        max_retries=0,
        http_client=http,
    )


def test_raw_is_the_json_and_model_the_generated_model_on_every_object() -> None:
    failing: dict[str, Any] = {
        "detail": "Price must be positive.",
        "source": {"pointer": "/data/attributes/items/data/0", "parameter": "price"},
        "meta": {"external_id": "SKU-1"},
    }
    job_document = docs.job("J", linkage=["I1"], errors=[failing])
    document = docs.single(job_document, [docs.item("I1")])
    with client(answering(document)) as kc:
        job = kc.get_item_update_job("J", include=["items"])
    item = job.items[0] if job.items else None
    assert isinstance(item, klaviyo_catalog.Item)
    (error,) = job.errors
    for obj, json_object in (
        (job, job_document),
        (item, document["included"][0]),
        (error, failing),
    ):
        assert isinstance(obj.raw, dict) and obj.raw == json_object
        assert type(obj.model).__module__.startswith("klaviyo_catalog_api.models")
    assert job.model.attributes.total_count == 10 and item.model.id == "I1"
    assert error.model.detail == "Price must be positive."
    # source.parameter is no longer dropped from a job's errors.
    assert (error.source_pointer, error.source_parameter) == (failing["source"]["pointer"], "price")


def test_a_job_error_and_an_error_response_share_one_error_object_type() -> None:
    body = docs.error(400, "Invalid cursor.", parameter="page[cursor]")
    with (
        client(answering(body, status=400)) as kc,
        pytest.raises(klaviyo_catalog.APIError) as caught,
    ):
        kc.list_item_create_jobs(cursor="nope")
    (detail,) = caught.value.errors
    assert type(detail) is klaviyo_catalog.APIErrorDetail
    assert detail.source_parameter == "page[cursor]" and detail.raw == body["errors"][0]
    assert detail.model.status == 400


def test_the_old_names_still_work_and_warn() -> None:
    with pytest.warns(DeprecationWarning, match="JobError is deprecated; use APIErrorDetail"):
        from klaviyo_catalog import JobError
    assert JobError is klaviyo_catalog.APIErrorDetail
    with client(answering(docs.single(docs.job("J")))) as kc:
        job = kc.get_item_update_job("J")
    # `raw` was the generated model: reading the model's attributes through it still works.
    with pytest.warns(DeprecationWarning, match="use BulkJob.model"):
        attributes = job.raw.attributes
    assert attributes.total_count == job.total_count
    assert job.raw["attributes"]["total_count"] == job.total_count  # and it is the dict
    with pytest.raises(AttributeError):
        _ = job.raw.no_such_thing
