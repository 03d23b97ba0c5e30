"""Per-call options, response metadata and request logs, the status vocabulary, and the base URL
from the environment; each through the sync and the async client against FakeKlaviyo."""

from __future__ import annotations

import json
import logging
import pickle
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    BulkJob,
    CatalogJobs,
    ConfigurationError,
    InvalidRequestError,
    JobStatus,
    MemoryRateLimiter,
    Page,
    Rate,
    RateLimitError,
    ServerError,
    TransportError,
)
from klaviyo_catalog.testing import FakeKlaviyo, Fault

from tests.support import documents as docs
from tests.support.hardening_support import Loop
from tests.support.spec_facts import SLASH, rates

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
Client = CatalogJobs | AsyncCatalogJobs


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    return make_fake()


def make(mode: str, fake: FakeKlaviyo, **options: Any) -> Client:
    settings: dict[str, Any] = {
        "base_url": fake.base_url,
        "retry_backoff": 0.01,
        "rate_limiter": MemoryRateLimiter(),
        **options,
    }
    cls = CatalogJobs if mode == "sync" else AsyncCatalogJobs
    return cls(fake.api_key, **settings)


@pytest.fixture(autouse=True)
def loop() -> Iterator[None]:
    """One event loop per test, so an async client's pool outlives a single call."""
    global LOOP
    with Loop() as LOOP:
        yield


LOOP: Loop | None = None


def run(client: Client, call: Callable[[Any], Any]) -> Any:
    """call(client) on either client; an async result is awaited on the test's loop."""
    assert LOOP is not None
    return LOOP.settle(call(client))


def close(client: Client) -> None:
    if isinstance(client, CatalogJobs):
        client.close()
    else:
        assert LOOP is not None
        LOOP.run(client.aclose())


def get(job_id: str, **kwargs: Any) -> Callable[[Any], Any]:
    return lambda kc: kc.get_item_update_job(job_id, **kwargs)


# --- with_options ------------------------------------------------------------------------------


def test_with_options_shares_the_pool_and_the_limiter_and_keeps_the_original(
    mode: str, fake: FakeKlaviyo
) -> None:
    base = make(mode, fake, timeout=7.0, max_retries=3, deadline=30.0)
    derived = base.with_options(timeout=60, max_retries=0, deadline=None)
    assert type(derived) is type(base)
    assert derived.rate_limiter is base.rate_limiter
    assert derived.account == base.account
    assert (derived.max_retries, derived.deadline) == (0, None)
    assert derived.timeout == httpx.Timeout(60)
    assert (base.max_retries, base.deadline) == (3, 30.0)
    assert base.timeout == httpx.Timeout(7.0)
    same = base.with_options()  # nothing given: nothing changes
    assert (same.timeout, same.max_retries, same.deadline) == (base.timeout, 3, 30.0)
    assert (same.account, same.rate_limiter) == (base.account, base.rate_limiter)
    job_id = fake.add_job("item-update")
    close(derived)  # does not close the shared pool
    assert run(derived, get(job_id)).id == job_id
    assert run(base, get(job_id)).id == job_id
    close(base)  # closes the pool, the derived client's too: it is the same one
    with pytest.raises(ConfigurationError, match="closed"):
        run(derived, get(job_id))


def test_a_client_tells_its_configuration(mode: str, fake: FakeKlaviyo) -> None:
    defaults = make(mode, fake, rate_limiter=None)
    assert (defaults.timeout, defaults.max_retries, defaults.deadline) == (
        httpx.Timeout(30.0),
        4,
        120.0,
    )
    limiter = MemoryRateLimiter()
    kc = make(
        mode,
        fake,
        account="shop-1",
        timeout=httpx.Timeout(5.0, connect=1.0),
        max_retries=0,
        deadline=None,
        rate_limiter=limiter,
        rate_limits={"get_item_update_job": [Rate(2, 60.0)]},
    )
    assert (kc.account, kc.rate_limiter) == ("shop-1", limiter)
    assert kc.max_connections > 20  # its own pool, sized from the spec's limits
    assert (kc.timeout, kc.max_retries, kc.deadline) == (httpx.Timeout(5.0, connect=1.0), 0, None)
    assert list(kc.rate_limits_for("get_item_update_job")) == [Rate(2, 60.0)]
    # Any other operation keeps the generated spec's limits.
    assert list(kc.rate_limits_for("list_item_create_jobs")) == rates("list_item_create_jobs")
    for unknown in ("get_item_update_jobs", "", None, ["get_item_update_job"]):
        with pytest.raises(InvalidRequestError, match="operation must be one of"):
            kc.rate_limits_for(unknown)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        kc.max_retries = 9  # type: ignore[misc]  # read-only: with_options() makes a changed copy
    close(defaults)
    close(kc)


def test_an_app_clients_timeout_is_the_default(mode: str, fake: FakeKlaviyo) -> None:
    app_client = (httpx.Client if mode == "sync" else httpx.AsyncClient)(timeout=9.0)
    kc = make(mode, fake, http_client=app_client)
    assert kc.timeout == httpx.Timeout(9.0)
    assert kc.max_connections == 20  # httpx's default keep-alive count
    assert kc.with_options(timeout=2).timeout == httpx.Timeout(2)
    close(kc)
    if isinstance(app_client, httpx.Client):
        app_client.close()
    else:
        assert LOOP is not None
        LOOP.run(app_client.aclose())


def test_with_options_max_retries_applies_to_that_client_only(mode: str, fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    base = make(mode, fake)
    fake.inject(Fault.status(503))
    with pytest.raises(ServerError):
        run(base.with_options(max_retries=0), get(job_id))
    assert [r.status for r in fake.request_log] == [503]
    fake.inject(Fault.status(503))
    assert run(base, get(job_id)).id == job_id  # the original still retries
    assert [r.status for r in fake.request_log] == [503, 503, 200]
    close(base)


def test_with_options_timeout_gives_one_call_longer_or_shorter(
    mode: str, fake: FakeKlaviyo
) -> None:
    job_id = fake.add_job("item-update")
    base = make(mode, fake, timeout=0.1, max_retries=0)
    fake.inject(Fault.delay(0.4))
    assert run(base.with_options(timeout=5), get(job_id)).id == job_id
    fake.inject(Fault.delay(0.4))
    with pytest.raises(TransportError, match="timed out"):
        run(base, get(job_id))
    close(base)


def test_with_options_deadline_bounds_one_call(mode: str, fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    base = make(mode, fake)
    fake.inject(Fault.rate_limited(30))
    started = time.monotonic()
    with pytest.raises(RateLimitError):
        run(base.with_options(deadline=0.5), get(job_id))
    assert time.monotonic() - started < 10  # gave up at once instead of waiting 30 s
    close(base)


@pytest.mark.parametrize(
    "options",
    [{"timeout": 0}, {"timeout": "1"}, {"max_retries": -1}, {"max_retries": 1.5}, {"deadline": 0}],
)
def test_with_options_refuses_values_out_of_range(
    mode: str, fake: FakeKlaviyo, options: dict[str, Any]
) -> None:
    base = make(mode, fake)
    with pytest.raises(ConfigurationError):
        base.with_options(**options)
    close(base)


# --- response metadata and request logs --------------------------------------------------------


def test_a_job_carries_the_response_it_came_from(mode: str, fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    client = make(mode, fake)
    job: BulkJob = run(client, get(job_id))
    info = job.response_info
    assert info is not None
    [record] = fake.request_log
    assert record.request_id is not None and UUID.match(record.request_id)
    assert info.request_id == record.request_id
    assert info.status_code == 200 and info.attempts == 1
    assert info.headers["x-klaviyo-req-id"] == record.request_id
    assert int(info.headers["ratelimit-limit"].split(",")[0]) > 0  # "75, 75;w=1, 750;w=60"
    assert info.headers["content-type"].startswith("application/")
    assert 0 <= info.elapsed < 5
    assert job.response_info == info and "response_info" not in repr(job)
    close(client)


def test_attempts_count_the_retries(mode: str, fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    fake.inject(Fault.status(503), times=2)
    client = make(mode, fake)
    info = run(client, get(job_id)).response_info
    assert info.attempts == 3 and info.request_id == fake.request_log[-1].request_id
    close(client)


def test_a_page_and_its_jobs_carry_the_page_response(mode: str, fake: FakeKlaviyo) -> None:
    fake.add_jobs("item-create", 3, status="processing")
    client = make(mode, fake)
    page: Page[BulkJob] = run(client, lambda kc: kc.list_item_create_jobs(status="processing"))
    assert page.response_info is not None
    assert page.response_info.request_id == fake.request_log[-1].request_id
    assert [job.response_info for job in page] == [page.response_info] * 3
    close(client)


def test_a_waited_job_carries_the_last_poll(mode: str, fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update", polls_to_complete=3)
    client = make(mode, fake)
    job = run(client, get(job_id))
    done = run(client, lambda kc: kc.wait_for_job(job, poll_interval=0.01))
    assert done.is_done and done.response_info.request_id == fake.request_log[-1].request_id
    assert done.response_info.request_id != job.response_info.request_id
    close(client)


def test_response_headers_leave_out_cookies_and_the_credential(
    mode: str, fake: FakeKlaviyo
) -> None:
    body = json.dumps(docs.single(docs.job("J1", shape=docs.NEW))).encode()
    headers = (
        ("Set-Cookie", "session=abc"),
        ("X-Echo", f"you sent {fake.api_key}"),
        ("X-Klaviyo-Req-Id", "req-1"),
    )
    fake.inject(Fault.body(200, body, headers=headers))
    client = make(mode, fake)
    info = run(client, get("J1")).response_info
    assert info.request_id == "req-1"
    assert "set-cookie" not in info.headers and "x-echo" not in info.headers
    assert fake.api_key not in repr(info) + repr(dict(info.headers))
    with pytest.raises(TypeError):
        info.headers["x"] = "y"
    close(client)


def test_the_clients_own_pool_keeps_a_cookie_the_server_sets_and_sends_it_back(
    mode: str, fake: FakeKlaviyo
) -> None:
    # httpx's cookie handling, which the own pool skips for responses that set none.
    job_id = fake.add_job("item-update")
    body = json.dumps(docs.single(docs.job(job_id, shape=docs.NEW))).encode()
    fake.inject(Fault.body(200, body, headers=(("Set-Cookie", "lb=node-7; Path=/"),)))
    client = make(mode, fake)
    run(client, get(job_id))
    run(client, get(job_id))
    run(client, get(job_id))
    cookies = [r.headers.get("cookie") for r in fake.request_log]
    assert cookies == [None, "lb=node-7", "lb=node-7"]
    close(client)


def test_a_closed_client_refuses_calls_and_opens_no_connection(
    mode: str, fake: FakeKlaviyo
) -> None:
    job_id = fake.add_job("item-update")
    client = make(mode, fake)
    run(client, get(job_id))
    close(client)
    with pytest.raises(ConfigurationError, match="the client is closed"):
        run(client, get(job_id))
    assert len(fake.request_log) == 1


def test_each_request_is_logged_at_debug_and_retries_carry_the_request_id(
    mode: str, fake: FakeKlaviyo, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = fake.add_job("item-update")
    failing = json.dumps(docs.error(503, "busy")).encode()
    fake.inject(Fault.body(503, failing, headers=(("X-Klaviyo-Req-Id", "req-503"),)))
    client = make(mode, fake)
    with caplog.at_level(logging.DEBUG, logger="klaviyo_catalog"):
        run(client, get(job_id))
    close(client)
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    path = f"/api/catalog-item-bulk-update-jobs/{job_id}{SLASH}"  # the generated path style
    ok_id = fake.request_log[-1].request_id
    assert re.fullmatch(
        rf"GET {path} -> 503 \(request id req-503, attempt 1, \d+\.\d{{3}}s\)", debug[0]
    )
    assert re.fullmatch(
        rf"GET {path} -> 200 \(request id {ok_id}, attempt 2, \d+\.\d{{3}}s\)", debug[1]
    )
    [retry] = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "request id req-503" in retry
    assert all(fake.api_key not in r.getMessage() for r in caplog.records)


def test_a_transport_failure_is_logged_with_its_type(
    mode: str, fake: FakeKlaviyo, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = fake.add_job("item-update")
    fake.inject(Fault.reset(mid_body=False))
    client = make(mode, fake)
    with caplog.at_level(logging.DEBUG, logger="klaviyo_catalog"):
        run(client, get(job_id))
    close(client)
    first = caplog.records[0].getMessage()
    assert first.startswith(f"GET /api/catalog-item-bulk-update-jobs/{job_id}{SLASH} -> ")
    assert "Error (request id none, attempt 1," in first


# --- the status filter -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["processin", "PROCESSING", "done", "queued "])
def test_an_unknown_status_is_refused_listing_the_known_ones(
    mode: str, fake: FakeKlaviyo, status: str
) -> None:
    client = make(mode, fake)
    with pytest.raises(InvalidRequestError) as caught:
        run(client, lambda kc: kc.list_item_create_jobs(status=status))
    close(client)
    assert repr(status) in str(caught.value)
    assert "known statuses: cancelled, complete, processing, queued" in str(caught.value)
    assert fake.request_log == []


@pytest.mark.parametrize("status", ["processing", JobStatus.COMPLETE, "cancelled", "queued"])
def test_every_known_status_filters(mode: str, fake: FakeKlaviyo, status: str) -> None:
    fake.add_jobs("variant-update", 2, status=str(status))
    fake.add_jobs("variant-update", 1, status="processing" if status != "processing" else "queued")
    client = make(mode, fake)
    page = run(client, lambda kc: kc.list_variant_update_jobs(status=status))
    close(client)
    assert [job.status for job in page] == [status, status]
    assert fake.request_log[0].query["filter"] == f'equals(status,"{status}")'


# --- KLAVIYO_BASE_URL --------------------------------------------------------------------------


def test_the_library_reads_klaviyo_base_url(
    mode: str, fake: FakeKlaviyo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLAVIYO_BASE_URL", fake.base_url + "/")
    job_id = fake.add_job("item-update")
    cls = CatalogJobs if mode == "sync" else AsyncCatalogJobs
    client = cls(fake.api_key, rate_limiter=MemoryRateLimiter())
    assert client.base_url == fake.base_url
    assert run(client, get(job_id)).id == job_id
    close(client)


def test_an_explicit_base_url_wins_over_the_environment(
    fake: FakeKlaviyo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLAVIYO_BASE_URL", "http://127.0.0.1:9")
    assert CatalogJobs("pk", base_url=fake.base_url).base_url == fake.base_url


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_klaviyo_base_url_means_klaviyo(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("KLAVIYO_BASE_URL", value)
    assert CatalogJobs("pk").base_url == "https://a.klaviyo.com"


def test_an_insecure_klaviyo_base_url_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KLAVIYO_BASE_URL", "http://a.klaviyo.com")
    with pytest.raises(ConfigurationError, match=r"^\$KLAVIYO_BASE_URL: .*https://"):
        AsyncCatalogJobs("pk")


def test_response_info_pickles_with_its_job(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    client = make("sync", fake)
    job = run(client, get(job_id))
    close(client)
    again = pickle.loads(pickle.dumps(job))
    assert again == job and again.response_info == job.response_info
    assert dict(again.response_info.headers) == dict(job.response_info.headers)
