"""The facade against canned Klaviyo documents over an httpx.MockTransport, sync and async."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import urllib.parse
from typing import Any

import pytest
from klaviyo_catalog import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BulkJob,
    CatalogJobs,
    ConfigurationError,
    InvalidRequestError,
    InvalidResponseError,
    Item,
    JobStatus,
    KlaviyoDeprecationWarning,
    NotFoundError,
    PermissionDeniedError,
    Rate,
    RateLimitError,
    ResourceRef,
    RevisionStatus,
    ServerError,
    TransportError,
    WaitTimeoutError,
    revision_lifecycle,
)
from klaviyo_catalog.testing import FakeKlaviyo, VirtualClock
from klaviyo_catalog_api.catalog_spec import OPERATIONS
from klaviyo_catalog_api.models import CatalogItem

from tests.support import documents as docs
from tests.support.facade_harness import API_KEY, Api
from tests.support.hardening_support import Mode, closed_port
from tests.support.spec_facts import (
    MEDIA_TYPE,
    REVISION,
    SLASH,
    path_prefix,
    rates,
    spec,
)
from tests.support.wire_recorder import Recorder, Reply

ITEM = "catalog-item"


@pytest.fixture
def server() -> Recorder:
    return Recorder()


@pytest.fixture
def api(mode: Mode, server: Recorder) -> Api:
    return Api(mode, server.base_url, http=server.client)


def query(server: Recorder, index: int = -1) -> dict[str, str]:
    return dict(
        urllib.parse.parse_qsl(urllib.parse.urlsplit(server.requests[index].raw_path).query)
    )


def reply(server: Recorder, *documents: Any, status: int = 200) -> None:
    server.replies.extend(Reply.json(d, status) for d in documents)


# --- include handling ---------------------------------------------------------------------------


def test_included_items_follow_linkage_order_without_duplicates(api: Api, server: Recorder) -> None:
    included = [docs.item("B"), docs.item("A"), docs.item("B", title="dup"), docs.item("Z")]
    reply(server, docs.single(docs.job(linkage=["A", "B", "MISSING"]), included))
    job = api.get_item_update_job("JOB1", include=["items"])
    assert job.items is not None
    assert [i.id for i in job.items] == ["A", "B", "MISSING"]
    first, second, missing = job.items
    assert isinstance(first, Item) and isinstance(second, Item)
    assert second.title == "Shirt"  # the first "B" wins
    assert isinstance(second.model, CatalogItem) and second.model.id == "B"
    assert missing == ResourceRef("catalog-item", "MISSING")
    assert query(server)["include"] == "items"


def test_without_include_the_named_ids_are_refs_and_requested_but_empty_is_empty(
    api: Api, server: Recorder
) -> None:
    reply(server, docs.single(docs.job(linkage=["A"]), [docs.item("A")]))
    job = api.get_item_update_job("JOB1")
    # Not included, so not resolved: the id the job names, whatever the document includes.
    assert job.items == [ResourceRef("catalog-item", "A")] and job.include == ()
    reply(server, docs.single(docs.job(), []))
    assert api.get_item_update_job("JOB1").items is None  # the document names none
    reply(server, docs.single(docs.job(linkage=[]), []))
    assert api.get_item_update_job("JOB1", include=["items"]).items == []


def test_variants_and_categories_resolve_too(api: Api, server: Recorder) -> None:
    variant = {"type": "catalog-variant", "id": "V1", "attributes": {"sku": "S-1", "price": 3.5}}
    reply(
        server,
        docs.single(docs.job(kind="catalog-variant-bulk-update-job", linkage=["V1"]), [variant]),
    )
    job = api.get_variant_update_job("JOB1", include=["variants"])
    assert job.kind == "variant-update" and job.type == "catalog-variant-bulk-update-job"
    assert job.variants is not None
    assert [v.id for v in job.variants] == ["V1"]
    category = {"type": "catalog-category", "id": "C1", "attributes": {"name": "Shoes"}}
    reply(
        server,
        docs.single(
            docs.job(kind="catalog-category-bulk-update-job", linkage=["C1", "C2"]), [category]
        ),
    )
    job = api.get_category_update_job("JOB1", include=["categories"])
    assert job.categories is not None and job.categories[1] == ResourceRef("catalog-category", "C2")


# --- request building -----------------------------------------------------------------------------


def test_sparse_fieldsets_go_on_the_wire_comma_joined(api: Api, server: Recorder) -> None:
    reply(server, docs.single(docs.job(linkage=[]), []))
    # Some revisions' item fieldset has no `price` (2022-10-17 among them).
    item_fields = [f for f in ("title", "price") if f in spec("get_item_update_job").fields[ITEM]]
    api.get_item_update_job(
        "JOB1",
        include=["items"],
        fields={"catalog-item": item_fields, "catalog-item-bulk-update-job": ["errors"]},
    )
    sent = query(server)
    job_fields = sent.pop("fields[catalog-item-bulk-update-job]").split(",")
    assert sent == {"include": "items", "fields[catalog-item]": ",".join(item_fields)}
    # What a BulkJob is made of is always asked for, so that it can be built; `errors` first,
    # as asked, and only once.
    assert job_fields[0] == "errors" and len(job_fields) == len(set(job_fields))
    needed = {"status", "created_at", "total_count", "completed_count", "failed_count"}
    assert needed <= set(job_fields)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": {"catalog-variant": ["sku"]}}, "no sparse fieldset for type 'catalog-variant'"),
        ({"fields": {"catalog-item": ["colour"]}}, "no field 'colour'"),
        ({"fields": {"catalog-item": []}}, "non-empty list"),
        ({"include": ["variants"]}, "cannot include 'variants'"),
    ],
)
def test_bad_fields_or_include_fail_before_any_request(
    api: Api, server: Recorder, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        api.get_item_update_job("JOB1", **kwargs)
    assert isinstance(caught.value, InvalidRequestError)
    assert server.requests == []


@pytest.mark.parametrize("job_id", ["", "   ", ".", ".."])
def test_empty_or_path_like_job_ids_are_refused(api: Api, server: Recorder, job_id: str) -> None:
    with pytest.raises(InvalidRequestError):
        api.get_item_update_job(job_id)
    assert server.requests == []


@pytest.mark.parametrize("job_id", ["a/b", "a?b=c&d", "a#frag", "a+b", "../x"])
def test_job_id_stays_one_path_segment(api: Api, server: Recorder, job_id: str) -> None:
    reply(server, docs.single(docs.job(job_id)))
    assert api.get_item_update_job(job_id).id == job_id
    raw = server.requests[0].raw_path
    prefix = path_prefix("get_item_update_job")
    segment = raw[len(prefix) :].partition("/")[0]
    assert raw == f"{prefix}{segment}{SLASH}" and urllib.parse.unquote(segment) == job_id


def test_status_filter_and_cursor_round_trip(api: Api, server: Recorder) -> None:
    cursor = "b2Zmc2V0PTEwMA+/==&x=1"
    next_cursor = "bmV4dA+/=="
    next_url = "https://a.klaviyo.com/api/catalog-item-bulk-create-jobs/?" + urllib.parse.urlencode(
        {"page[cursor]": next_cursor}
    )
    kind = "catalog-item-bulk-create-job"
    reply(server, docs.collection([docs.job("J1", kind)], next_url))
    page = api.list_item_create_jobs(status="processing", cursor=cursor)
    assert query(server) == {"filter": 'equals(status,"processing")', "page[cursor]": cursor}
    assert page.next_cursor == next_cursor and page.has_next
    assert [j.id for j in page] == ["J1"] and len(page) == 1


@pytest.mark.parametrize("status", ['processing")', "a,b", ""])
def test_a_status_that_would_change_the_filter_is_refused(
    api: Api, server: Recorder, status: str
) -> None:
    with pytest.raises(InvalidRequestError):
        api.list_variant_update_jobs(status=status)
    assert server.requests == []


def test_headers_carry_key_revision_accept_and_user_agent(api: Api, server: Recorder) -> None:
    reply(server, docs.single(docs.job()))
    api.get_item_update_job("JOB1")
    headers = server.requests[0].headers
    assert headers["authorization"] == f"Klaviyo-API-Key {API_KEY}"
    assert headers["revision"] == REVISION  # the generated revision, by default
    assert headers["accept"] == MEDIA_TYPE
    assert headers["user-agent"].startswith("klaviyo-catalog-jobs/")


def test_revision_can_be_chosen(api: Api, server: Recorder) -> None:
    reply(server, docs.single(docs.job()))
    with pytest.warns(KlaviyoDeprecationWarning, match="2023-06-15 was retired"):
        api.with_options(revision="2023-06-15").get_item_update_job("JOB1")
    assert server.requests[0].headers["revision"] == "2023-06-15"


def warned_if_not_stable(revision: str) -> contextlib.AbstractContextManager[object]:
    """What building a client for `revision` must do: warn, unless it is stable today."""
    if revision_lifecycle(revision).status is RevisionStatus.STABLE:
        return contextlib.nullcontext()
    return pytest.warns(KlaviyoDeprecationWarning, match=re.escape(revision))


# --- what comes back --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [docs.OLD, docs.NEW])
def test_both_response_shapes_give_the_same_job(api: Api, server: Recorder, shape: str) -> None:
    content_type = "application/json" if shape == docs.OLD else "application/vnd.api+json"
    document = docs.single(docs.job("JOB9", shape=shape, status="complete", completed_count=9))
    server.replies.append(Reply(200, json.dumps(document).encode(), {"Content-Type": content_type}))
    job = api.get_item_update_job("JOB9")
    assert (job.id, job.status, job.is_done) == ("JOB9", JobStatus.COMPLETE, True)
    assert (job.total_count, job.completed_count, job.failed_count) == (10, 9, 1)
    assert job.progress == 1.0
    assert job.created_at == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    assert job.completed_at is None


def test_unknown_status_is_kept_as_a_string(api: Api, server: Recorder) -> None:
    reply(server, docs.single(docs.job(status="paused_for_review")))
    job = api.get_item_update_job("JOB1")
    assert job.status == "paused_for_review" and not isinstance(job.status, JobStatus)
    assert not job.is_done


def test_naive_datetimes_are_read_as_utc(api: Api, server: Recorder) -> None:
    reply(
        server,
        docs.single(docs.job(created_at="2022-11-08T00:00:00", expires_at="2022-11-09T01:02:03")),
    )
    job = api.get_item_update_job("JOB1")
    assert job.created_at == dt.datetime(2022, 11, 8, tzinfo=dt.UTC)
    assert job.expires_at is not None and job.expires_at.tzinfo is not None


def test_real_world_job_errors_and_unknown_members_parse(api: Api, server: Recorder) -> None:
    errors = [
        {
            "detail": "Invalid price",
            "meta": {"external_id": "SKU-1"},
            "source": {"pointer": "/data/0"},
        }
    ]
    resource = docs.job(errors=errors, brand_new_attribute=[1, 2], completed_count=None)
    resource["relationships"] = {"brand_new_relationship": {"data": []}}
    document = docs.single(resource) | {"meta": {"agent_hints": ["x"]}}
    reply(server, document)
    job = api.get_item_update_job("JOB1")
    assert job.errors[0].detail == "Invalid price"
    assert job.errors[0].meta == {"external_id": "SKU-1"}
    assert job.errors[0].source_pointer == "/data/0" and job.errors[0].code is None
    assert job.completed_count == 0
    assert job.model.attributes.additional_properties["brand_new_attribute"] == [1, 2]


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [
        (b"<html><body>Just a moment...</body></html>", "text/html", "not JSON"),
        (b'{"data": {"type": "catalog-item-bulk-up', "application/json", "not JSON"),
        (b"", "application/json", "not JSON"),
        (b"[]", "application/json", "does not match"),
        (
            json.dumps(docs.single(docs.job(total_count="ten"))).encode(),
            "application/json",
            "total_count",
        ),
        (
            json.dumps(docs.single(docs.job(created_at=17))).encode(),
            "application/json",
            "created_at",
        ),
        (
            json.dumps({"data": {"type": "catalog-item-bulk-update-job"}}).encode(),
            "application/json",
            "does not match",
        ),
    ],
)
def test_unreadable_success_bodies_raise_invalid_response(
    api: Api, server: Recorder, body: bytes, content_type: str, problem: str
) -> None:
    server.replies.append(Reply(200, body, {"Content-Type": content_type}))
    with pytest.raises(InvalidResponseError, match=problem) as caught:
        api.get_item_update_job("JOB1")
    assert caught.value.status_code == 200
    assert caught.value.excerpt.rstrip("…") == " ".join(body[:200].decode().split())
    assert len(server.requests) == 1  # a 200 is never retried


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
    ],
)
def test_client_errors_are_typed_and_not_retried(
    api: Api, server: Recorder, status: int, error_class: type[APIError]
) -> None:
    reply(server, docs.error(status, "Bad filter.", parameter="filter"), status=status)
    with pytest.raises(error_class) as caught:
        api.list_item_create_jobs()
    error = caught.value
    assert error.status_code == status
    assert error.errors[0].detail == "Bad filter." and error.errors[0].source_parameter == "filter"
    assert "Bad filter. (at filter)" in str(error)
    assert len(server.requests) == 1


def test_html_403_from_a_cdn_keeps_an_excerpt(api: Api, server: Recorder) -> None:
    server.replies.append(
        Reply(403, b"<html>Attention Required! | Cloudflare</html>", {"Content-Type": "text/html"})
    )
    with pytest.raises(PermissionDeniedError, match="Attention Required") as caught:
        api.get_item_update_job("JOB1")
    assert caught.value.errors == []


def test_server_errors_are_retried_then_succeed(api: Api, server: Recorder) -> None:
    reply(server, docs.error(503, "busy"), docs.error(500, "oops"), status=503)
    reply(server, docs.single(docs.job()))
    assert api.get_item_update_job("JOB1").id == "JOB1"
    assert len(server.requests) == 3


def test_persistent_server_errors_raise_after_max_retries(api: Api, server: Recorder) -> None:
    server.default = Reply.json(docs.error(502, "bad gateway"), 502)
    with pytest.raises(ServerError) as caught:
        api.with_options(max_retries=2).get_item_update_job("JOB1")
    assert caught.value.status_code == 502
    assert len(server.requests) == 3


def test_persistent_429_raises_rate_limit_error_after_max_retries(
    api: Api, server: Recorder
) -> None:
    server.default = Reply.json(docs.error(429, "Throttled."), 429, **{"Retry-After": "0"})
    with pytest.raises(RateLimitError) as caught:
        api.with_options(max_retries=3).get_item_update_job("JOB1")
    assert caught.value.retry_after == 0.0
    assert len(server.requests) == 4


def test_a_closed_port_is_a_transport_error(api: Api) -> None:
    dead_url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(TransportError):
        api.with_options(base_url=dead_url, max_retries=1, http=None).get_item_update_job("JOB1")


# --- pagination -----------------------------------------------------------------------------------


def next_url(cursor: str) -> str:
    # Another host on purpose: only the cursor may be used, never the URL.
    return "https://elsewhere.example/api/x/?" + urllib.parse.urlencode({"page[cursor]": cursor})


def test_three_pages_are_walked_lazily_without_gaps(api: Api, server: Recorder) -> None:
    kind = "catalog-variant-bulk-update-job"
    reply(
        server,
        docs.collection([docs.job("1", kind), docs.job("2", kind)], next_url("c+1/=")),
        docs.collection([docs.job("3", kind)], next_url("c+2/=")),
        docs.collection([docs.job("4", kind)], None),
    )
    jobs = api.collect("iter_variant_update_jobs", status="queued")
    assert [j.id for j in jobs] == ["1", "2", "3", "4"]
    assert [query(server, i).get("page[cursor]") for i in range(3)] == [None, "c+1/=", "c+2/="]
    assert all(query(server, i)["filter"] == 'equals(status,"queued")' for i in range(3))


def test_iteration_requests_pages_only_as_needed(server: Recorder) -> None:
    kind = "catalog-item-bulk-create-job"
    reply(server, docs.collection([docs.job("1", kind)], next_url("c1")), docs.collection([], None))
    with CatalogJobs(API_KEY, base_url=server.base_url, http_client=server.sync_client()) as kc:
        jobs = kc.iter_item_create_jobs()
        assert next(jobs).id == "1"
        assert len(server.requests) == 1
        assert list(jobs) == []
    assert len(server.requests) == 2


def test_a_repeating_cursor_stops_the_walk(api: Api, server: Recorder) -> None:
    kind = "catalog-item-bulk-create-job"
    server.default = Reply.json(docs.collection([docs.job("1", kind)], next_url("same")))
    with pytest.raises(InvalidResponseError, match="again") as caught:
        api.collect("iter_item_create_jobs")
    assert caught.value.cursor == "same"


def test_cursor_resumes_a_walk(api: Api, server: Recorder) -> None:
    kind = "catalog-item-bulk-create-job"
    reply(server, docs.collection([docs.job("7", kind)], None))
    assert [j.id for j in api.collect("iter_item_create_jobs", cursor="resume+me")] == ["7"]
    assert query(server)["page[cursor]"] == "resume+me"


def test_start_cursor_still_works_and_warns_that_it_is_deprecated(
    api: Api, server: Recorder
) -> None:
    kind = "catalog-variant-bulk-update-job"
    reply(server, docs.collection([docs.job("7", kind)], None))
    with pytest.warns(DeprecationWarning, match="start_cursor= is deprecated; pass cursor=") as w:
        jobs = api.collect("iter_variant_update_jobs", start_cursor="old+name")
    assert [j.id for j in jobs] == ["7"]
    assert query(server)["page[cursor]"] == "old+name"
    assert w[0].filename.endswith("hardening_support.py")  # the line that called iter_*
    with pytest.raises(InvalidRequestError, match="cursor= only"):
        api.collect("iter_item_create_jobs", cursor="a", start_cursor="b")


def test_an_error_while_listing_carries_the_cursor_to_resume_from(
    api: Api, server: Recorder
) -> None:
    kind = "catalog-item-bulk-create-job"
    reply(server, docs.collection([docs.job("1", kind)], next_url("page2")))
    server.default = Reply.json(docs.error(503, "down"), 503)
    with pytest.raises(ServerError) as caught:
        api.with_options(max_retries=0).collect("iter_item_create_jobs")
    assert caught.value.cursor == "page2"


# --- waiting ------------------------------------------------------------------------------------


# The waits run on a virtual clock: the client's sleeps advance it, the wire stays real.


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def test_wait_for_job_polls_until_done(api: Api, server: Recorder, clock: VirtualClock) -> None:
    reply(
        server,
        docs.single(docs.job(status="queued", completed_count=0, failed_count=0)),
        docs.single(docs.job(status="processing", completed_count=6)),
        docs.single(docs.job(status="complete", completed_count=9)),
    )
    job = api.get_item_update_job("JOB1")
    seen: list[tuple[float, float]] = []
    start = clock.now
    done = api.on(clock).wait_for_job(
        job, on_progress=lambda j: seen.append((clock.now - start, j.progress))
    )
    assert done.status == JobStatus.COMPLETE and done.is_done
    # The starting state, then each poll: 2 s after the call, then 3 s (x1.5) after that.
    assert seen == [(0.0, 0.0), (2.0, 0.7), (5.0, 1.0)]
    assert len(server.requests) == 3


def test_wait_for_job_times_out_with_the_last_job(
    api: Api, server: Recorder, clock: VirtualClock
) -> None:
    server.default = Reply.json(docs.single(docs.job(status="processing", completed_count=2)))
    job = api.get_item_update_job("JOB1")
    start = clock.now
    with pytest.raises(WaitTimeoutError) as caught:
        api.on(clock).wait_for_job(job, timeout=60)
    assert clock.now - start == pytest.approx(60.0)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.job.completed_count == 2


def test_a_listed_job_is_polled_by_its_get(api: Api, server: Recorder, clock: VirtualClock) -> None:
    kind = "catalog-item-bulk-create-job"
    reply(
        server,
        docs.collection([docs.job("1", kind, status="processing")], None),
        docs.single(docs.job("1", kind, status="processing")),
        docs.single(docs.job("1", kind, status="complete", completed_count=9)),
    )
    job = api.list_item_create_jobs().data[0]
    done = api.on(clock).wait_for_job(job)
    assert done.id == "1" and done.status is JobStatus.COMPLETE and done.completed_count == 9
    paths = [server.requests[i].raw_path for i in (1, 2)]
    assert paths == [spec("get_item_create_job").path.format(job_id="1")] * 2


def test_wait_for_job_takes_an_id_and_its_kind(
    api: Api, server: Recorder, clock: VirtualClock
) -> None:
    kind = "catalog-category-bulk-delete-job"
    reply(
        server,
        docs.single(docs.job("7", kind, status="processing")),
        docs.single(docs.job("7", kind, status="complete", completed_count=3)),
    )
    seen: list[tuple[float, str]] = []
    start = clock.now

    def note(job: BulkJob) -> None:
        seen.append((clock.now - start, job.status))

    done = api.on(clock).wait_for_job("7", kind="category-delete", on_progress=note)
    assert done.kind == "category-delete" and done.completed_count == 3
    # The first poll at once (the app had no state of the job), the next after poll_interval.
    assert seen == [(0.0, "processing"), (2.0, "complete")]
    with pytest.raises(InvalidRequestError, match="kind="):
        api.wait_for_job("7")


# --- configuration and the key ------------------------------------------------------------------


def test_the_key_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, server: Recorder
) -> None:
    monkeypatch.setenv("KLAVIYO_API_KEY", "pk_from_env")
    reply(server, docs.single(docs.job()))
    with CatalogJobs(base_url=server.base_url, http_client=server.sync_client()) as kc:
        kc.get_item_update_job("JOB1")
    assert server.requests[0].headers["authorization"] == "Klaviyo-API-Key pk_from_env"


def test_no_key_is_a_configuration_error_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KLAVIYO_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="KLAVIYO_API_KEY"):
        CatalogJobs()


@pytest.mark.parametrize(
    "url", ["http://a.klaviyo.com", "http://10.0.0.5:8080", "ftp://x", "not a url"]
)
def test_insecure_or_odd_base_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        CatalogJobs(API_KEY, base_url=url)


@pytest.mark.parametrize(
    "url", ["https://a.klaviyo.com", "http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"]
)
def test_https_and_loopback_base_urls_are_accepted(url: str) -> None:
    CatalogJobs(API_KEY, base_url=url).close()


def test_the_key_is_not_in_repr_or_errors(server: Recorder) -> None:
    server.default = Reply.json(docs.error(401, "Incorrect authentication credentials."), 401)
    with CatalogJobs(API_KEY, base_url=server.base_url, http_client=server.sync_client()) as kc:
        assert API_KEY not in repr(kc)
        with pytest.raises(AuthenticationError) as caught:
            kc.get_item_update_job("JOB1")
    assert API_KEY not in str(caught.value) and API_KEY not in repr(caught.value.__dict__)


# --- included resource views --------------------------------------------------------------------


def test_item_attributes_are_type_checked_when_read(api: Api, server: Recorder) -> None:
    bad = docs.item("A")
    bad["attributes"].update(published="yes", created="2022-11-08T00:00:00")
    reply(server, docs.single(docs.job(linkage=["A"]), [bad]))
    job = api.get_item_update_job("JOB1", include=["items"])
    assert job.items is not None
    item = job.items[0]
    assert isinstance(item, Item)
    assert item.created == dt.datetime(2022, 11, 8, tzinfo=dt.UTC)
    assert item.title == "Shirt" and item.description is None
    with pytest.raises(InvalidResponseError, match="'published' has an unexpected type"):
        _ = item.published


@pytest.mark.parametrize(
    "included",
    [[{"type": "catalog-item"}], [{"type": "catalog-item", "id": 5}], ["A"], {"A": 1}],
)
def test_malformed_included_resources_are_invalid(
    api: Api, server: Recorder, included: Any
) -> None:
    reply(server, docs.single(docs.job(linkage=["A"]), included))
    with pytest.raises(InvalidResponseError, match="included"):
        api.get_item_update_job("JOB1", include=["items"])


def test_a_job_of_the_wrong_type_is_invalid(api: Api, server: Recorder) -> None:
    reply(server, docs.single(docs.job(kind="catalog-variant-bulk-update-job")))
    with pytest.raises(InvalidResponseError, match="expected 'catalog-item-bulk-update-job'"):
        api.get_item_update_job("JOB1")


@pytest.mark.parametrize("revision", ["2023-01-24", "2024-10-15", "2026-07-15.pre"])
def test_path_and_media_type_are_the_generated_revisions_whatever_revision_is_sent(
    api: Api, server: Recorder, revision: str
) -> None:
    # The shape of requests and responses is the generated one: another `revision` header
    # changes the header only, never the path style or the media type asked for.
    reply(server, docs.single(docs.job("J", shape=docs.NEW)))
    with warned_if_not_stable(revision):
        assert api.with_options(revision=revision).get_item_update_job("J").id == "J"
    request = server.requests[0]
    assert request.raw_path == OPERATIONS["get_item_update_job"].path.format(job_id="J")
    assert (request.headers["accept"], request.headers["revision"]) == (MEDIA_TYPE, revision)


def test_the_client_reads_what_the_fake_serves() -> None:
    with FakeKlaviyo(rate_limits=None) as fake:
        job_id = fake.add_job("item-update", status="processing", items=3)
        fake.add_jobs("item-create", 150, status="queued")
        with CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
            job = kc.get_item_update_job(job_id, include=["items"])
            jobs = list(kc.iter_item_create_jobs(status="queued"))
    assert job.id == job_id and job.items is not None and len(job.items) == 3
    assert all(isinstance(item, Item) for item in job.items)
    assert len(jobs) == 150 and len({j.id for j in jobs}) == 150


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fields": ["title"]},
        {"fields": {("catalog-item",): ["title"]}},
        {"fields": {"catalog-item": 5}},
        {"fields": {"catalog-item": [["title"]]}},
        {"include": 5},
        {"include": [["items"]]},
    ],
)
def test_arguments_of_the_wrong_shape_are_invalid_requests(
    api: Api, server: Recorder, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidRequestError):
        api.get_item_update_job("JOB1", **kwargs)
    assert server.requests == []


@pytest.mark.parametrize(
    "rate_limits",
    [[], ["350/s"], {"get_item_update_jobs": [Rate(1, 1.0)]}, {"get_item_update_job": []}],
)
def test_bad_rate_limits_are_a_configuration_error(rate_limits: Any) -> None:
    with pytest.raises(ConfigurationError, match="rate_limits"):
        CatalogJobs(API_KEY, rate_limits=rate_limits)


def test_rate_limits_per_operation_override_the_spec(server: Recorder) -> None:
    with CatalogJobs(
        API_KEY, base_url=server.base_url, rate_limits={"get_item_update_job": [Rate(2, 60.0)]}
    ) as kc:
        assert list(kc.rate_limits_for("get_item_update_job")) == [Rate(2, 60.0)]
        # Any other operation keeps the generated spec's limits.
        assert list(kc.rate_limits_for("list_item_create_jobs")) == rates("list_item_create_jobs")
