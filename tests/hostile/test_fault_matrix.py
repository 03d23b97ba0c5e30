"""The fault matrix: every way FakeKlaviyo (or the network) can misbehave, against both clients.

Each row states the error class, whether it was retried, and how many requests reached the
server (`fake.request_log`), so that a retry loop that silently grows or shrinks is caught.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from klaviyo_catalog import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BulkJob,
    InvalidResponseError,
    Item,
    JobStatus,
    MemoryRateLimiter,
    NotFoundError,
    Page,
    PermissionDeniedError,
    RateLimitError,
    ResourceRef,
    ServerError,
    TransportError,
)
from klaviyo_catalog.testing import FakeKlaviyo, Fault, VirtualClock

from tests.support import documents as docs
from tests.support.hardening_support import (
    AsyncRefusingTransport,
    Mode,
    RefusingTransport,
    call,
    closed_port,
    json_body,
    options,
)

MAX_RETRIES = 2  # so a persistent fault means exactly 3 requests
RETRIED_5XX = [500, 502, 503, 504, 520]
UPDATE = "catalog-item-bulk-update-job"
CREATE = "catalog-item-bulk-create-job"


def opts(fake: FakeKlaviyo, **overrides: Any) -> dict[str, Any]:
    return options(fake.base_url, fake.api_key, **{"max_retries": MAX_RETRIES, **overrides})


def statuses(fake: FakeKlaviyo) -> list[int | None]:
    return [r.status for r in fake.request_log]


# --- 5xx ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", RETRIED_5XX)
def test_a_5xx_is_retried_then_succeeds(mode: Mode, fake_klaviyo: FakeKlaviyo, status: int) -> None:
    job_id = fake_klaviyo.add_job("item-update")
    fake_klaviyo.inject(Fault.status(status), times=2)
    job = call(mode, opts(fake_klaviyo), "get_item_update_job", job_id)
    assert isinstance(job, BulkJob) and job.id == job_id
    assert statuses(fake_klaviyo) == [status, status, 200]


@pytest.mark.parametrize("status", RETRIED_5XX)
def test_a_persistent_5xx_is_a_server_error_after_max_retries_plus_one(
    mode: Mode, fake_klaviyo: FakeKlaviyo, status: int
) -> None:
    fake_klaviyo.inject(Fault.status(status), times=50)
    with pytest.raises(ServerError) as caught:
        call(mode, opts(fake_klaviyo), "list_item_create_jobs")
    assert caught.value.status_code == status
    assert caught.value.errors[0].detail == f"The server answered {status} (an injected fault)."
    assert statuses(fake_klaviyo) == [status] * (MAX_RETRIES + 1)


def test_a_501_is_a_server_error_at_once(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    # Not Implemented will not change on a retry; only transient 5xx are retried.
    fake_klaviyo.inject(Fault.status(501), times=50)
    with pytest.raises(ServerError) as caught:
        call(mode, opts(fake_klaviyo), "list_item_create_jobs")
    assert caught.value.status_code == 501
    assert statuses(fake_klaviyo) == [501]


# --- HTML instead of JSON -----------------------------------------------------------------------


def test_an_html_502_is_retried_then_succeeds(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    job_id = fake_klaviyo.add_job("item-update")
    fake_klaviyo.inject(Fault.html(502))
    assert call(mode, opts(fake_klaviyo), "get_item_update_job", job_id).id == job_id
    assert statuses(fake_klaviyo) == [502, 200]


def test_a_persistent_html_502_keeps_status_and_excerpt(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    fake_klaviyo.inject(Fault.html(502), times=50)
    with pytest.raises(ServerError) as caught:
        call(mode, opts(fake_klaviyo), "get_item_update_job", "JOB1")
    error = caught.value
    assert error.status_code == 502 and error.errors == []
    assert (
        error.excerpt.startswith("<!DOCTYPE html>") and "Checking your connection" in error.excerpt
    )
    assert "Checking your connection" in str(error)  # the only clue there is, in the message
    assert len(fake_klaviyo.request_log) == MAX_RETRIES + 1


def test_an_html_200_is_an_invalid_response_and_not_retried(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    fake_klaviyo.inject(Fault.html(200), times=50)
    with pytest.raises(InvalidResponseError, match="not JSON") as caught:
        call(mode, opts(fake_klaviyo), "get_item_update_job", "JOB1")
    assert caught.value.status_code == 200
    assert caught.value.excerpt.startswith("<!DOCTYPE html>")
    assert statuses(fake_klaviyo) == [200]


# --- bodies that are not the documented document ------------------------------------------------


def single(**attributes: Any) -> Fault:
    return json_body(docs.single(docs.job(**attributes)))


def with_included(included: Any) -> Fault:
    return json_body(docs.single(docs.job(linkage=["A"]), included))


UNREADABLE: dict[str, tuple[Fault, str]] = {
    "truncated": (Fault.truncated(), "not JSON"),
    "empty": (Fault.empty(), "not JSON"),
    "empty 204": (Fault.empty(204), "not JSON"),
    "top-level list": (Fault.body(200, b"[]"), "the document should be an object"),
    "top-level string": (Fault.body(200, b'"data"'), "the document should be an object"),
    "no data": (json_body({"links": {}}), "data should be an object"),
    "data a list": (json_body({"data": [docs.job()]}), "data should be an object, got list"),
    "attributes missing": (json_body({"data": {"type": UPDATE, "id": "J"}}), "attributes"),
    "total_count a string": (single(total_count="ten"), "total_count should be an integer"),
    "total_count a float": (single(total_count=10.0), "total_count should be an integer"),
    "failed_count a bool": (single(failed_count=True), "failed_count should be an integer"),
    "status a number": (single(status=5), "status should be a string"),
    "status missing": (single(status=None), "status is missing"),
    "created_at garbage": (single(created_at="yesterday"), "not an ISO 8601"),
    "created_at a number": (single(created_at=1714557600), "created_at should be a string"),
    "expires_at out of range": (single(expires_at="2024-02-30T00:00:00"), "expires_at"),
    "errors an object": (single(errors={"detail": "x"}), "errors should be a list"),
    "error without detail": (single(errors=[{"code": "x"}]), r"errors\[0\].detail is missing"),
    "wrong job type": (json_body(docs.single(docs.job(kind=CREATE))), "expected"),
}


@pytest.mark.parametrize("case", UNREADABLE)
def test_unreadable_bodies_are_invalid_responses_and_not_retried(
    mode: Mode, fake_klaviyo: FakeKlaviyo, case: str
) -> None:
    fault, problem = UNREADABLE[case]
    fake_klaviyo.inject(fault, times=50)
    with pytest.raises(InvalidResponseError, match=problem) as caught:
        call(mode, opts(fake_klaviyo), "get_item_update_job", "JOB1")
    error = caught.value
    assert error.status_code == fault.http_status
    assert error.excerpt == " ".join(fault.payload[:200].decode().split()) + (
        "…" if len(fault.payload) > 200 else ""
    )
    assert len(fake_klaviyo.request_log) == 1


INCLUDED: dict[str, Any] = {
    "item id a number": [{"type": "catalog-item", "id": 5}],
    "item without id": [{"type": "catalog-item"}],
    "item type a list": [{"type": ["catalog-item"], "id": "A"}],
    "item a string": ["A"],
    "included an object": {"A": {"type": "catalog-item", "id": "A"}},
    "attributes a list": [{"type": "catalog-item", "id": "A", "attributes": ["title"]}],
}


@pytest.mark.parametrize("case", INCLUDED)
def test_malformed_included_items_are_invalid_responses(
    mode: Mode, fake_klaviyo: FakeKlaviyo, case: str
) -> None:
    fake_klaviyo.inject(with_included(INCLUDED[case]), times=50)
    with pytest.raises(InvalidResponseError, match="included") as caught:
        call(mode, opts(fake_klaviyo), "get_item_update_job", "JOB1", include=["items"])
    assert caught.value.status_code == 200
    assert len(fake_klaviyo.request_log) == 1


LIST_UNREADABLE: dict[str, tuple[Any, str]] = {
    "data an object": ({"data": docs.job("1", CREATE)}, "data should be a list"),
    "a job not an object": ({"data": ["1"]}, r"data\[0\] should be an object"),
}  # an unusable links.next keeps the page: tests/calls/test_next_links.py


@pytest.mark.parametrize("case", LIST_UNREADABLE)
def test_malformed_pages_are_invalid_responses(
    mode: Mode, fake_klaviyo: FakeKlaviyo, case: str
) -> None:
    document, problem = LIST_UNREADABLE[case]
    fake_klaviyo.inject(json_body(document), times=50)
    with pytest.raises(InvalidResponseError, match=problem) as caught:
        call(mode, opts(fake_klaviyo), "iter_item_create_jobs")
    assert caught.value.status_code == 200 and caught.value.cursor is None
    assert len(fake_klaviyo.request_log) == 1


# --- the network ----------------------------------------------------------------------------------


def refusing(refusals: int, made: list[Any]) -> Callable[[Mode], httpx.Client | httpx.AsyncClient]:
    def factory(mode: Mode) -> httpx.Client | httpx.AsyncClient:
        if mode == "sync":
            sync = RefusingTransport(refusals)
            made.append(sync)
            return httpx.Client(transport=sync)
        asynchronous = AsyncRefusingTransport(refusals)
        made.append(asynchronous)
        return httpx.AsyncClient(transport=asynchronous)

    return factory


def test_a_refused_connection_is_retried_then_succeeds(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    job_id = fake_klaviyo.add_job("item-update")
    made: list[Any] = []
    job = call(mode, opts(fake_klaviyo), "get_item_update_job", job_id, http=refusing(1, made))
    assert job.id == job_id
    assert made[0].attempts == 2
    assert statuses(fake_klaviyo) == [200]  # the refused attempt never reached it


def test_a_persistently_refused_connection_is_a_transport_error(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    made: list[Any] = []
    with pytest.raises(TransportError, match="ConnectError"):
        call(mode, opts(fake_klaviyo), "get_item_update_job", "J", http=refusing(100, made))
    assert made[0].attempts == MAX_RETRIES + 1
    assert fake_klaviyo.request_log == []


def test_a_closed_port_as_base_url_is_a_transport_error(mode: Mode) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(TransportError, match="failed"):
        call(mode, options(base_url, "pk_x", max_retries=1), "list_item_create_jobs")


@pytest.mark.parametrize("mid_body", [True, False], ids=["mid-body", "before-response"])
def test_a_reset_is_retried_then_succeeds(
    mode: Mode, fake_klaviyo: FakeKlaviyo, mid_body: bool
) -> None:
    job_id = fake_klaviyo.add_job("item-update")
    fake_klaviyo.inject(Fault.reset(mid_body=mid_body))
    assert call(mode, opts(fake_klaviyo), "get_item_update_job", job_id).id == job_id
    log = fake_klaviyo.request_log
    assert [r.fault for r in log] == ["reset", None] and log[1].status == 200


@pytest.mark.parametrize("mid_body", [True, False], ids=["mid-body", "before-response"])
def test_a_persistent_reset_is_a_transport_error(
    mode: Mode, fake_klaviyo: FakeKlaviyo, mid_body: bool
) -> None:
    fake_klaviyo.inject(Fault.reset(mid_body=mid_body), times=50)
    with pytest.raises(TransportError):
        call(mode, opts(fake_klaviyo), "get_item_update_job", "J")
    assert [r.fault for r in fake_klaviyo.request_log] == ["reset"] * (MAX_RETRIES + 1)


# The read timeout. A stalled request gets no answer: the fake hangs up after STALL seconds,
# which only a client that ignored its timeout would wait for.
TIMEOUT, STALL = 0.3, 10.0  # a loaded machine answers a good request well within TIMEOUT


def test_a_read_timeout_is_retried_then_succeeds(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    job_id = fake_klaviyo.add_job("item-update")
    fake_klaviyo.inject(Fault.stall(STALL))
    started = time.monotonic()
    job = call(mode, opts(fake_klaviyo, timeout=TIMEOUT), "get_item_update_job", job_id)
    assert job.id == job_id and time.monotonic() - started < STALL / 2  # it did not wait it out
    # The fake logs a stalled request when it arrives, so the log is complete now.
    assert sorted(str(r.fault) for r in fake_klaviyo.request_log) == ["None", "stall"]


def test_a_persistent_read_timeout_is_a_transport_error(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    fake_klaviyo.inject(Fault.stall(STALL), times=50)
    with pytest.raises(TransportError, match="timed out"):
        call(mode, opts(fake_klaviyo, timeout=TIMEOUT), "get_item_update_job", "J")
    # Logged on arrival: a fourth attempt would have been logged before the call gave up.
    assert [r.fault for r in fake_klaviyo.request_log] == ["stall"] * (MAX_RETRIES + 1)


# --- 429 ----------------------------------------------------------------------------------------


def http_date(seconds_ahead: float) -> str:
    return email.utils.formatdate(time.time() + seconds_ahead, usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "at_least", "below"),
    [("0", 0.0, 0.9), ("1", 1.0, 2.0), ("date", 0.0, 2.0), (None, 1.0, 2.0)],
    ids=["0", "1", "http-date", "missing"],
)
def test_a_429_waits_then_succeeds(
    mode: Mode,
    fake_klaviyo: FakeKlaviyo,
    retry_after: str | None,
    at_least: float,
    below: float,
) -> None:
    # The wire is real, the wait virtual: the client sleeps on the virtual clock, so how long
    # it waited is measured exactly, in no real time.
    clock = VirtualClock()
    job_id = fake_klaviyo.add_job("item-update")
    # An HTTP-date has whole seconds: one second ahead is 0..1 s from now.
    header = http_date(1) if retry_after == "date" else retry_after
    fake_klaviyo.inject(Fault.rate_limited(header))
    client_options = opts(fake_klaviyo, rate_limiter=MemoryRateLimiter(clock=clock))
    started = clock()
    job = call(mode, client_options, "get_item_update_job", job_id, clock=clock)
    assert job.id == job_id and at_least <= clock() - started < below
    assert statuses(fake_klaviyo) == [429, 200]


def test_a_persistent_429_is_a_rate_limit_error(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    fake_klaviyo.inject(Fault.rate_limited("0"), times=50)
    with pytest.raises(RateLimitError) as caught:
        call(mode, opts(fake_klaviyo), "list_item_create_jobs")
    assert caught.value.retry_after == 0.0 and caught.value.status_code == 429
    assert caught.value.errors[0].code == "throttled"
    assert statuses(fake_klaviyo) == [429] * (MAX_RETRIES + 1)


# --- 4xx: typed at once, with Klaviyo's details ---------------------------------------------------


def test_401_is_an_authentication_error_with_details(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    wrong = options(fake_klaviyo.base_url, "pk_wrong_key", max_retries=MAX_RETRIES)
    with pytest.raises(AuthenticationError) as caught:
        call(mode, wrong, "get_item_update_job", "J")
    detail = caught.value.errors[0]
    assert detail.code == "authentication_failed" and detail.source_pointer == "/data"
    assert detail.detail == "The credentials are not a valid private API key."
    assert caught.value.status_code == 401 and detail.detail in str(caught.value)
    assert statuses(fake_klaviyo) == [401]


def test_403_is_permission_denied_with_details(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    fake_klaviyo.inject(Fault.status(403), times=50)
    with pytest.raises(PermissionDeniedError) as caught:
        call(mode, opts(fake_klaviyo), "get_item_update_job", "J")
    detail = caught.value.errors[0]
    assert (detail.code, detail.source_pointer) == ("forbidden", "/data")
    assert "(at /data)" in str(caught.value)
    assert statuses(fake_klaviyo) == [403]


def test_an_html_403_from_a_cdn_is_permission_denied_at_once(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    fake_klaviyo.inject(Fault.html(403), times=50)
    with pytest.raises(PermissionDeniedError, match="Checking your connection") as caught:
        call(mode, opts(fake_klaviyo), "get_item_update_job", "J")
    assert caught.value.errors == [] and caught.value.excerpt.startswith("<!DOCTYPE html>")
    assert statuses(fake_klaviyo) == [403]


def test_404_is_not_found_with_details(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    with pytest.raises(NotFoundError) as caught:
        call(mode, opts(fake_klaviyo), "get_variant_update_job", "NO-SUCH-JOB")
    detail = caught.value.errors[0]
    assert detail.detail is not None and "'NO-SUCH-JOB'" in detail.detail
    assert detail.source_pointer == "/data" and caught.value.status_code == 404
    assert statuses(fake_klaviyo) == [404]


def test_400_is_a_bad_request_naming_the_parameter(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    with pytest.raises(BadRequestError) as caught:
        call(mode, opts(fake_klaviyo), "list_item_create_jobs", cursor="not-a-cursor-of-its")
    detail = caught.value.errors[0]
    assert detail.source_parameter == "page[cursor]" and detail.detail is not None
    assert f"{detail.detail} (at page[cursor])" in str(caught.value)
    assert caught.value.cursor == "not-a-cursor-of-its"
    assert statuses(fake_klaviyo) == [400]


def test_a_request_id_is_kept_and_other_4xx_are_api_errors(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    document = docs.error(422, "Unprocessable.", pointer="/data/attributes/x")
    fake_klaviyo.inject(json_body(document, 422, **{"X-Klaviyo-Req-Id": "req-42"}), times=50)
    with pytest.raises(APIError) as caught:
        call(mode, opts(fake_klaviyo), "get_item_update_job", "J")
    error = caught.value
    assert type(error) is APIError and error.status_code == 422 and error.request_id == "req-42"
    assert error.errors[0].source_pointer == "/data/attributes/x"
    assert statuses(fake_klaviyo) == [422]


# --- forward compatibility ------------------------------------------------------------------------


def test_unknown_members_statuses_relationships_and_null_links_parse(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    resource = docs.job(
        "JOB7", status="paused_for_review", linkage=["A", "GONE"], brand_new_attribute={"x": [1]}
    )
    resource["links"] = {"self": None, "brand_new_link": None}
    resource["relationships"]["items"]["links"] = {"self": None, "related": None}
    resource["relationships"]["brand_new_relationship"] = {
        "data": [{"type": "catalog-widget", "id": "W1"}],
        "links": {"self": None},
    }
    resource["brand_new_member"] = True
    item = docs.item("A") | {"relationships": {"brand_new": {"data": None}}}
    item["attributes"]["brand_new_attribute"] = "x"
    widget = {"type": "catalog-widget", "id": "W1", "attributes": {"size": 3}}
    document = docs.single(resource, [item, widget]) | {"meta": {"x": 1}, "jsonapi": {}}
    fake_klaviyo.inject(json_body(document))
    job = call(mode, opts(fake_klaviyo), "get_item_update_job", "JOB7", include=["items"])
    assert job.status == "paused_for_review" and not isinstance(job.status, JobStatus)
    assert not job.is_done and job.progress == 0.5
    assert job.items is not None and len(job.items) == 2
    first, gone = job.items
    assert isinstance(first, Item) and first.title == "Shirt"
    assert first.attributes["price"] == 42.0  # served whether or not the revision types it
    assert gone == ResourceRef("catalog-item", "GONE")
    assert first.model.id == "A"  # the generated model copes with the unknown members too
    assert job.model.attributes.additional_properties["brand_new_attribute"] == {"x": [1]}


def test_a_page_with_unknown_members_and_null_links_parses(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    jobs = [docs.job(f"J{i}", CREATE, status=s) for i, s in enumerate(["queued", "archived"])]
    jobs[1]["attributes"]["brand_new"] = [None]
    links = {name: None for name in ("self", "first", "last", "prev", "next")}
    document = {"data": jobs, "links": links | {"brand_new": None}, "meta": {"count": 2}}
    fake_klaviyo.inject(json_body(document))
    page = call(mode, opts(fake_klaviyo), "list_item_create_jobs")
    assert isinstance(page, Page) and not page.has_next
    assert [(j.id, j.status) for j in page] == [("J0", JobStatus.QUEUED), ("J1", "archived")]
    fake_klaviyo.inject(json_body({"data": jobs, "links": None}))
    assert [j.id for j in call(mode, opts(fake_klaviyo), "iter_item_create_jobs")] == ["J0", "J1"]


def test_a_null_links_object_loses_only_the_generated_model(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    # The spec makes links optional, not nullable: the facade's fields still parse, and the
    # generated model (`model`) reports the mismatch as the documented error.
    resource = docs.job("JOB8") | {"links": None}
    fake_klaviyo.inject(json_body(docs.single(resource)))
    job = call(mode, opts(fake_klaviyo), "get_item_update_job", "JOB8")
    assert job.id == "JOB8" and job.total_count == 10
    with pytest.raises(InvalidResponseError):
        _ = job.model
