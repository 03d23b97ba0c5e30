"""Behaviour of klaviyo_catalog.testing.FakeKlaviyo, observed over HTTP with httpx."""

from __future__ import annotations

import http.client
import json
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from klaviyo_catalog.testing import DEFAULT_REVISION, FakeKlaviyo, Fault
from klaviyo_catalog.testing._model import load_spec
from klaviyo_catalog.testing.pytest_plugin import FakeFactory
from klaviyo_catalog_api.catalog_spec import OPERATIONS, REVISION

from scripts.curate import curate
from tests.support.paths import FIXTURES

pytest_plugins = ["pytester"]  # to run the pytest plugin in a pytest of its own
# One TLS context for every client: httpx builds one per client otherwise (~25 ms each).
TLS = ssl.create_default_context()


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    return make_fake(rate_limits=None)


@pytest.fixture
def fake_klaviyo_factory() -> Iterator[FakeFactory]:
    """Fakes configured per test; the plugin has the same fixture (tested on its own below)."""
    started: list[FakeKlaviyo] = []

    def start(**kwargs: Any) -> FakeKlaviyo:
        started.append(FakeKlaviyo(**kwargs).start())
        return started[-1]

    yield start
    for fake in started:
        fake.stop()
        assert fake.internal_errors == []


@pytest.fixture
def client(fake: FakeKlaviyo) -> Iterator[httpx.Client]:
    with httpx.Client(headers=fake.headers(), timeout=5, verify=TLS) as http:
        yield http


def get(client: httpx.Client, url: str, **params: str) -> httpx.Response:
    return client.get(url, params=params)


def job_id_of(resource: dict[str, Any]) -> str:
    """A served job's id, wherever the revision puts it."""
    job_id: str = resource.get("id") or resource["attributes"]["job_id"]
    return job_id


def spec_of_old_shape() -> dict[str, Any]:
    """Revision 2023-01-24 as curate.py makes it from (a trimmed extract of) Klaviyo's spec:
    trailing slashes, application/json, the job id in `attributes.job_id`, no `id` field."""
    extract = FIXTURES / "klaviyo-openapi" / "stable_2023-01-24.json"
    published = json.loads(extract.read_text(encoding="utf-8"))
    spec: dict[str, Any] = curate(published, extract.name)
    return spec


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    error: dict[str, Any] = body["errors"][0]
    assert error["status"] == response.status_code
    assert {"id", "code", "title", "detail", "source"} <= set(error)
    return error


# --- authentication, revision, routing -------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"revision": DEFAULT_REVISION}, 401, "not_authenticated"),
        ({"revision": DEFAULT_REVISION, "Authorization": "Klaviyo-API-Key pk_wrong"}, 401, None),
        ({"revision": DEFAULT_REVISION, "Authorization": "Bearer x"}, 401, None),
        ({"Authorization": "KEY"}, 400, "invalid"),  # KEY: the right key, no revision
        ({"Authorization": "KEY", "revision": "latest"}, 400, "invalid"),
        ({"Authorization": "KEY", "revision": "2021-01-01"}, 400, "invalid"),
    ],
)
def test_auth_and_revision_errors(
    fake: FakeKlaviyo, headers: dict[str, str], status: int, code: str | None
) -> None:
    job_id = fake.add_job("item-update")
    if headers.get("Authorization") == "KEY":
        headers = {**headers, "Authorization": f"Klaviyo-API-Key {fake.api_key}"}
    response = httpx.get(fake.url("item-update", job_id), headers=headers, verify=TLS)
    assert response.status_code == status
    assert response.headers["content-type"] == fake.shape.content_type
    error = error_of(response)
    assert error["code"] == (code or "authentication_failed")
    if status == 400:
        assert error["source"] == {"parameter": "revision"}


def test_unknown_and_mismatched_jobs_are_404(fake: FakeKlaviyo, client: httpx.Client) -> None:
    variant_job = fake.add_job("variant-update")
    assert get(client, fake.url("item-update", "01JNOPE")).status_code == 404
    response = get(client, fake.url("item-update", variant_job))  # right id, wrong endpoint
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert get(client, fake.url("variant-update", variant_job)).status_code == 200
    assert get(client, f"{fake.base_url}/api/catalog-items/").status_code == 404
    # Every kind has its single-job endpoint: item-create jobs too.
    assert get(client, fake.url("item-create", fake.add_job("item-create"))).status_code == 200


def test_writes_are_405(fake: FakeKlaviyo, client: httpx.Client) -> None:
    response = client.post(fake.url("item-create"), json={"data": {}})
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert get(client, fake.url("item-create")).status_code == 200  # connection still usable


def test_unknown_kind_is_rejected(fake: FakeKlaviyo) -> None:
    with pytest.raises(ValueError, match="unknown job kind"):
        fake.add_job("item-archive")


# --- documents: include and sparse fieldsets ---------------------------------------------------


def test_include_lists_linkages_in_order_and_includes_each_resource_once(
    fake: FakeKlaviyo, client: httpx.Client
) -> None:
    items = [{"external_id": "SKU-1", "title": "Shirt"}, {"id": "$custom:::$default:::X"}]
    job_id = fake.add_job("item-update", items=[*items, items[0]])
    plain = get(client, fake.url("item-update", job_id)).json()
    assert "included" not in plain
    doc = get(client, fake.url("item-update", job_id), include="items").json()
    linkage = doc["data"]["relationships"]["items"]["data"]
    ids = ["$custom:::$default:::SKU-1", "$custom:::$default:::X", "$custom:::$default:::SKU-1"]
    assert linkage == [{"type": "catalog-item", "id": i} for i in ids]
    assert [r["id"] for r in doc["included"]] == ids[:2]
    first = doc["included"][0]
    assert first["type"] == "catalog-item" and first["attributes"]["title"] == "Shirt"
    # Every attribute the spec gives a catalog item, the given ones and generated others.
    assert set(first["attributes"]) == set(fake.shape.resources["catalog-item"])
    assert {"external_id", "title"} <= set(first["attributes"])
    assert first["links"]["self"] == fake.base_url + fake.shape.path(
        "catalog-items", "%24custom%3A%3A%3A%24default%3A%3A%3ASKU-1"
    )


@pytest.mark.parametrize(
    ("kind", "relationship", "related_type", "wanted"),
    [
        ("item-update", "items", "catalog-item", "title,description"),
        ("variant-update", "variants", "catalog-variant", "sku,inventory_quantity"),
        ("category-update", "categories", "catalog-category", "name"),
    ],
)
def test_sparse_fieldsets_restrict_attributes(
    fake: FakeKlaviyo,
    client: httpx.Client,
    kind: str,
    relationship: str,
    related_type: str,
    wanted: str,
) -> None:
    job_id = fake.add_job(kind, total=3)
    job_type = f"catalog-{kind.split('-')[0]}-bulk-update-job"
    params = {
        "include": relationship,
        f"fields[{job_type}]": "total_count,status",  # served in Klaviyo's order, not this one
        f"fields[{related_type}]": wanted,
    }
    doc = client.get(fake.url(kind, job_id), params=params).json()
    assert doc["data"]["type"] == job_type
    assert list(doc["data"]["attributes"]) == ["status", "total_count"]
    assert len(doc["data"]["relationships"][relationship]["data"]) == 3  # not restricted
    assert len(doc["included"]) == 3
    assert all(list(r["attributes"]) == wanted.split(",") for r in doc["included"])
    assert all(r["type"] == related_type for r in doc["included"])


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("item-update", {"fields[catalog-item-bulk-update-job]": "status,bogus"}),
        ("item-update", {"fields[catalog-item]": "title,sku"}),  # sku: variants only
        ("item-update", {"fields[catalog-item]": ""}),
        ("item-update", {"fields[catalog-variant]": "sku"}),
        ("item-update", {"fields[catalog-nothing]": "x"}),
        ("item-update", {"include": "variants"}),
        ("item-update", {"filter": "equals(status,'queued')"}),
        ("item-update", {"page[size]": "10"}),
        ("item-create", {"include": "items"}),
        ("item-create", {"fields[catalog-item]": "title"}),
    ],
)
def test_bad_query_parameters_are_400_naming_the_parameter(
    fake: FakeKlaviyo, client: httpx.Client, kind: str, params: dict[str, str]
) -> None:
    job_id = None if kind == "item-create" else fake.add_job(kind)
    response = client.get(fake.url(kind, job_id), params=params)
    assert response.status_code == 400
    assert error_of(response)["source"] == {"parameter": next(iter(params))}


def test_job_errors_in_both_shapes_are_served_verbatim(
    fake: FakeKlaviyo, client: httpx.Client
) -> None:
    errors = [
        {
            "id": "e1",
            "code": "invalid",
            "title": "Bad.",
            "detail": "d",
            "source": {"pointer": "/x"},
        },
        {"detail": "Price missing.", "meta": {"external_id": "SKU-9"}, "source": {"pointer": "/y"}},
    ]
    job_id = fake.add_job("category-update", status="complete", failed=2, errors=errors)
    attrs = get(client, fake.url("category-update", job_id)).json()["data"]["attributes"]
    assert attrs["errors"] == errors
    assert (attrs["completed_count"], attrs["failed_count"]) == (8, 2)


def test_datetimes_have_offsets_unless_a_test_sets_naive_ones(
    fake: FakeKlaviyo, client: httpx.Client
) -> None:
    aware = get(client, fake.url("item-update", fake.add_job("item-update"))).json()
    assert aware["data"]["attributes"]["created_at"].endswith("+00:00")
    naive_id = fake.add_job("item-update", created_at="2022-11-08T00:00:00", status="complete")
    attrs = get(client, fake.url("item-update", naive_id)).json()["data"]["attributes"]
    assert attrs["created_at"] == "2022-11-08T00:00:00"
    assert attrs["expires_at"] == "2022-11-15T00:00:00"
    assert "+" not in attrs["completed_at"]


# --- lists: filter and pagination --------------------------------------------------------------


@pytest.mark.parametrize("quote", ['"', "'"])
def test_status_filter(fake: FakeKlaviyo, client: httpx.Client, quote: str) -> None:
    processing = fake.add_jobs("item-create", 3, status="processing")
    fake.add_jobs("item-create", 2, status="complete")
    fake.add_job("variant-update", status="processing")  # another endpoint's job
    doc = get(client, fake.url("item-create"), filter=f"equals(status,{quote}processing{quote})")
    assert [job_id_of(job) for job in doc.json()["data"]] == processing
    assert len(get(client, fake.url("item-create")).json()["data"]) == 5


@pytest.mark.parametrize(
    "bad",
    [
        "equals(status,processing)",
        "equals(status,\"processing')",
        "equals(created_at,'2024-01-01')",
        "contains(status,'processing')",
        "equals(status,'processing'",
        "",
    ],
)
def test_malformed_filter_is_400(fake: FakeKlaviyo, client: httpx.Client, bad: str) -> None:
    response = get(client, fake.url("variant-update"), filter=bad)
    assert response.status_code == 400
    assert error_of(response)["source"] == {"parameter": "filter"}


def collect_pages(client: httpx.Client, url: str, **params: str) -> list[dict[str, Any]]:
    pages = [get(client, url, **params).json()]
    while pages[-1]["links"]["next"] is not None:
        response = client.get(pages[-1]["links"]["next"])
        assert response.status_code == 200, response.text
        pages.append(response.json())
    return pages


def test_pagination_loses_nothing_and_needs_encoded_cursors(
    fake: FakeKlaviyo, client: httpx.Client
) -> None:
    wanted = []
    for _ in range(5):  # interleave so the filter matters on every page
        wanted += fake.add_jobs("variant-update", 51, status="processing")
        fake.add_jobs("variant-update", 10, status="queued")
    pages = collect_pages(client, fake.url("variant-update"), filter='equals(status,"processing")')
    assert [len(p["data"]) for p in pages] == [100, 100, 55]
    assert [job_id_of(job) for p in pages for job in p["data"]] == wanted
    first, second, last = pages
    assert first["links"]["prev"] is None and last["links"]["next"] is None
    assert second["links"]["prev"] == first["links"]["self"]
    assert last["links"]["self"] == second["links"]["next"]
    if fake.shape.first_last_links:
        assert first["links"]["self"] == first["links"]["first"]
        assert last["links"]["self"] == last["links"]["last"]
    next_url = first["links"]["next"]
    assert next_url.startswith(fake.url("variant-update") + "?")
    cursor = parse_qs(urlsplit(next_url).query)["page[cursor]"][0]
    assert {"+", "/", "="} <= set(cursor)
    assert "%2B" in next_url and "%2F" in next_url and "%3D" in next_url
    assert parse_qs(urlsplit(next_url).query)["filter"] == ['equals(status,"processing")']
    # The same cursor, sent without percent-encoding, is not a cursor the fake issued.
    raw = f"{fake.url('variant-update')}?page%5Bcursor%5D={cursor}"
    response = client.get(httpx.URL(raw))
    assert response.status_code == 400
    assert error_of(response)["source"] == {"parameter": "page[cursor]"}


def test_unknown_cursor_is_400(fake: FakeKlaviyo, client: httpx.Client) -> None:
    fake.add_jobs("item-create", 150)
    response = get(client, fake.url("item-create"), **{"page[cursor]": "+++/AAAAAAAAAAAAAAAA="})
    assert response.status_code == 400
    assert error_of(response)["source"] == {"parameter": "page[cursor]"}
    # a cursor of the item-create list is unknown to the variant-update list
    next_url = get(client, fake.url("item-create")).json()["links"]["next"]
    cursor = parse_qs(urlsplit(next_url).query)["page[cursor]"][0]
    response = get(client, fake.url("variant-update"), **{"page[cursor]": cursor})
    assert response.status_code == 400


def test_thousands_of_jobs_seed_fast_and_page_in_insertion_order(
    fake: FakeKlaviyo, client: httpx.Client
) -> None:
    started = time.monotonic()
    ids = fake.add_jobs("item-create", 1234, status="complete", total=2)
    assert time.monotonic() - started < 2
    pages = collect_pages(client, fake.url("item-create"))
    assert len(pages) == 13
    assert [job_id_of(job) for p in pages for job in p["data"]] == ids
    assert pages[0]["data"][0]["relationships"]["items"]["data"][1]["type"] == "catalog-item"


def test_jobs_added_while_paging_are_not_lost(fake: FakeKlaviyo, client: httpx.Client) -> None:
    ids = fake.add_jobs("item-create", 150)
    first = get(client, fake.url("item-create")).json()
    ids += fake.add_jobs("item-create", 30)
    rest = client.get(first["links"]["next"]).json()
    assert [job_id_of(j) for j in first["data"] + rest["data"]] == ids


def test_page_size_is_configurable(fake_klaviyo_factory: FakeFactory) -> None:
    fake = fake_klaviyo_factory(page_size=2, rate_limits=None)
    fake.add_jobs("item-create", 5)
    with httpx.Client(headers=fake.headers(), verify=TLS) as client:
        assert len(collect_pages(client, fake.url("item-create"))) == 3


# --- progression ---------------------------------------------------------------------------------


def test_job_progresses_over_polls(fake: FakeKlaviyo, client: httpx.Client) -> None:
    job_id = fake.add_job("item-update", total=10, failed=2, polls_to_complete=4)
    polls = [
        get(client, fake.url("item-update", job_id)).json()["data"]["attributes"] for _ in "1234"
    ]
    assert [p["status"] for p in polls] == ["queued", "processing", "processing", "complete"]
    done = [p["completed_count"] for p in polls]
    assert done == sorted(done) and done[0] == 0 and done[-1] == 8
    assert polls[-1]["failed_count"] == 2 and polls[-1]["total_count"] == 10
    assert polls[-1]["completed_at"] is not None and polls[0]["completed_at"] is None
    assert [set(e) for e in polls[-1]["errors"]] == [{"detail", "meta", "source"}] * 2
    # An update job's errors, as live ones: the resource's full id, a pointer without index.
    assert polls[-1]["errors"][0]["meta"] == {"id": "$custom:::$default:::ITEM-1"}
    assert polls[-1]["errors"][0]["source"] == {"pointer": "/data/attributes/items/data/id"}
    again = get(client, fake.url("item-update", job_id)).json()["data"]["attributes"]
    assert again["status"] == "complete"


def test_failed_polls_do_not_advance_and_set_job_freezes(
    fake: FakeKlaviyo, client: httpx.Client
) -> None:
    job_id = fake.add_job("variant-update", polls_to_complete=2)
    fake.inject(Fault.status(503), times=2)
    for _ in range(2):
        assert get(client, fake.url("variant-update", job_id)).status_code == 503
    assert fake.job_attributes(job_id)["status"] == "queued"
    when = datetime(2024, 5, 1, 12, 0)  # naive: served without an offset
    fake.set_job(job_id, status="cancelled", completed_count=None, total_count="many")
    fake.set_job(job_id, completed_at=when)
    for _ in range(3):
        attrs = get(client, fake.url("variant-update", job_id)).json()["data"]["attributes"]
        assert (attrs["status"], attrs["completed_count"]) == ("cancelled", None)
        assert attrs["total_count"] == "many"
        assert attrs["completed_at"] == "2024-05-01T12:00:00"
    with pytest.raises(ValueError, match="no attribute"):
        fake.set_job(job_id, colour="red")
    fake.remove_job(job_id)
    assert get(client, fake.url("variant-update", job_id)).status_code == 404


def test_list_serving_advances_list_only_jobs(fake: FakeKlaviyo, client: httpx.Client) -> None:
    fake.add_job("item-create", polls_to_complete=2)
    statuses = [
        get(client, fake.url("item-create")).json()["data"][0]["attributes"]["status"] for _ in "12"
    ]
    assert statuses == ["queued", "complete"]


# --- faults ---------------------------------------------------------------------------------------


def test_status_fault_has_a_json_api_body(fake: FakeKlaviyo, client: httpx.Client) -> None:
    job_id = fake.add_job("item-update")
    fake.inject(Fault.status(503, retry_after="3"))
    response = get(client, fake.url("item-update", job_id))
    assert response.status_code == 503 and response.headers["retry-after"] == "3"
    assert error_of(response)["code"] == "service_unavailable"
    assert get(client, fake.url("item-update", job_id)).status_code == 200  # consumed
    last_two = fake.request_log[-2:]
    assert [(r.status, r.fault, r.counted) for r in last_two] == [
        (503, "status", False),
        (200, None, True),
    ]


def test_html_challenge_page(fake: FakeKlaviyo, client: httpx.Client) -> None:
    fake.inject(Fault.html())
    fake.inject(Fault.html(status=200))
    for status in (403, 200):
        response = get(client, fake.url("item-create"))
        assert response.status_code == status
        assert response.headers["content-type"] == "text/html"
        assert response.text.startswith("<!DOCTYPE html>")


def test_truncated_body_has_matching_length(fake: FakeKlaviyo, client: httpx.Client) -> None:
    fake.inject(Fault.truncated())
    response = get(client, fake.url("item-create"))
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content) > 10
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert get(client, fake.url("item-create")).status_code == 200  # framing intact


def test_empty_body(fake: FakeKlaviyo, client: httpx.Client) -> None:
    fake.inject(Fault.empty())
    fake.inject(Fault.empty(status=502))
    for status in (200, 502):
        response = get(client, fake.url("item-create"))
        assert (response.status_code, response.content) == (status, b"")


@pytest.mark.parametrize("mid_body", [True, False])
def test_reset_breaks_the_connection(
    fake: FakeKlaviyo, client: httpx.Client, mid_body: bool
) -> None:
    fake.inject(Fault.reset(mid_body=mid_body))
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        get(client, fake.url("item-create"))
    assert get(client, fake.url("item-create")).status_code == 200  # a new connection works
    record = fake.request_log[0]
    assert record.fault == "reset" and record.status == (200 if mid_body else None)


def test_delay_then_normal_answer(fake: FakeKlaviyo, client: httpx.Client) -> None:
    fake.inject(Fault.delay(0.3))
    started = time.monotonic()
    response = get(client, fake.url("item-create"))
    assert response.status_code == 200 and time.monotonic() - started >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        fake.inject(Fault.delay(5))
        client.get(fake.url("item-create"), timeout=0.2)
    record = fake.request_log[0]
    assert (record.fault, record.counted, record.status) == ("delay", True, 200)


def test_stall_never_answers_until_the_fake_stops(fake_klaviyo_factory: FakeFactory) -> None:
    fake = fake_klaviyo_factory(rate_limits=None)
    url = fake.url("item-create")
    fake.inject(Fault.stall())
    with httpx.Client(headers=fake.headers(), verify=TLS) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get(url, timeout=0.3)
        assert client.get(url, timeout=5).status_code == 200  # only that request stalls
        (stalled, answered) = fake.request_log
        assert (stalled.fault, stalled.status, stalled.counted) == ("stall", None, False)
        assert answered.fault is None
        fake.inject(Fault.stall())
        failures: list[BaseException] = []

        def stalled_request() -> None:
            try:
                client.get(url, timeout=30)
            except httpx.HTTPError as exc:
                failures.append(exc)

        stuck = threading.Thread(target=stalled_request)
        stuck.start()
        time.sleep(0.1)
        started = time.monotonic()
        fake.stop()  # hangs up at once
        stuck.join(timeout=2)
        assert time.monotonic() - started < 1.0 and len(failures) == 1


def test_a_timed_stall_hangs_up_after_its_seconds(fake: FakeKlaviyo, client: httpx.Client) -> None:
    fake.inject(Fault.stall(0.2))
    started = time.monotonic()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        get(client, fake.url("item-create"))
    assert 0.2 <= time.monotonic() - started < 5.0
    assert get(client, fake.url("item-create")).status_code == 200  # a new connection works
    assert [r.fault for r in fake.request_log] == ["stall", None]


def test_trickle_sends_the_real_answer_a_byte_at_a_time(
    fake: FakeKlaviyo, client: httpx.Client
) -> None:
    # The real answer: here a 404, whose body is short enough to trickle in a moment.
    fake.inject(Fault.trickle(0.001))
    arrivals: list[float] = []
    with client.stream("GET", fake.url("item-update", "NO-SUCH-JOB")) as response:
        body = b""
        for chunk in response.iter_raw():
            arrivals.append(time.monotonic())
            body += chunk
    assert response.status_code == 404 and error_of(httpx.Response(404, content=body))
    assert len(arrivals) > len(body) // 4  # in many small pieces, not one write
    assert arrivals[-1] - arrivals[0] >= 0.001 * (len(body) - 1) * 0.9
    (record,) = fake.request_log
    assert (record.fault, record.status, record.counted) == ("trickle", 404, True)


def test_endless_body_never_ends(fake: FakeKlaviyo, client: httpx.Client) -> None:
    fake.inject(Fault.endless())
    received = 0
    with client.stream("GET", fake.url("item-create")) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        for chunk in response.iter_bytes():
            assert chunk.strip() == b""
            received += len(chunk)
            if received > 4_000_000:
                break
    assert received > 4_000_000
    assert get(client, fake.url("item-create")).status_code == 200  # a new connection works
    assert fake.request_log[0].fault == "endless"


def test_oversized_declares_a_length_it_would_take_forever_to_send(
    fake: FakeKlaviyo, client: httpx.Client
) -> None:
    fake.inject(Fault.oversized(10**9))
    with client.stream("GET", fake.url("item-create")) as response:
        assert response.headers["content-length"] == str(10**9)
        first = next(response.iter_bytes())
        assert first.strip() == b"" and len(first) > 0
    assert get(client, fake.url("item-create")).status_code == 200
    assert fake.request_log[0].fault == "oversized"


def test_gzip_bomb_is_small_on_the_wire_and_huge_decoded(
    fake: FakeKlaviyo, client: httpx.Client
) -> None:
    bomb = Fault.gzip_bomb(64 << 20)
    assert len(bomb.payload) < 100_000
    fake.inject(bomb)
    with client.stream("GET", fake.url("item-create")) as response:
        assert response.headers["content-encoding"] == "gzip"
        assert int(response.headers["content-length"]) == len(bomb.payload)
        decoded = sum(len(chunk) for chunk in response.iter_bytes())
    assert decoded == 64 << 20  # the gzip trailer checks out too, or httpx would have raised
    assert fake.request_log[0].fault == "gzip_bomb"


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: Fault.trickle(-1), ValueError),
        (lambda: Fault.stall(-1), ValueError),
        (lambda: Fault.stall(float("nan")), ValueError),
        (lambda: Fault.trickle(float("inf")), ValueError),
        (lambda: Fault.trickle("1"), TypeError),  # type: ignore[arg-type]
        (lambda: Fault.oversized(0), ValueError),
        (lambda: Fault.oversized(1.5), TypeError),  # type: ignore[arg-type]
        (lambda: Fault.gzip_bomb(1000), ValueError),
        (lambda: Fault.gzip_bomb(True), TypeError),
    ],
)
def test_hostile_faults_check_their_arguments(make: Callable[[], Fault], error: type) -> None:
    with pytest.raises(error):
        make()


def test_connections_are_counted_and_kept_alive(fake_klaviyo_factory: FakeFactory) -> None:
    fake = fake_klaviyo_factory(rate_limits=None)
    assert fake.connections == 0
    with httpx.Client(headers=fake.headers(), verify=TLS) as client:
        for _ in range(3):
            assert get(client, fake.url("item-create")).status_code == 200
    assert fake.connections == 1
    httpx.get(fake.url("item-create"), headers=fake.headers(), verify=TLS)
    assert fake.connections == 2


def test_another_loopback_address_is_another_origin(fake_klaviyo_factory: FakeFactory) -> None:
    fake = fake_klaviyo_factory(host="127.0.0.2")
    assert fake.base_url.startswith("http://127.0.0.2:")
    response = httpx.get(fake.url("item-create"), headers=fake.headers(), verify=TLS)
    assert response.status_code == 200


@pytest.mark.parametrize("retry_after", ["1", "Wed, 21 Oct 2015 07:28:00 GMT", None])
def test_injected_rate_limit(
    fake: FakeKlaviyo, client: httpx.Client, retry_after: str | None
) -> None:
    fake.inject(Fault.rate_limited(retry_after))
    response = get(client, fake.url("item-create"))
    assert response.status_code == 429
    assert response.headers.get("retry-after") == retry_after
    assert error_of(response)["code"] == "throttled"
    assert not any(h.startswith("ratelimit-") for h in response.headers)


def test_arbitrary_body(fake: FakeKlaviyo, client: httpx.Client) -> None:
    fake.inject(Fault.body(201, b"\xff\x00not json", "application/octet-stream"))
    response = get(client, fake.url("item-create"))
    assert (response.status_code, response.content) == (201, b"\xff\x00not json")
    assert response.headers["content-type"] == "application/octet-stream"


def test_faults_are_consumed_in_order_before_auth(fake: FakeKlaviyo) -> None:
    fake.inject(Fault.status(500))
    fake.inject(Fault.empty(), times=2)
    statuses = [httpx.get(fake.url("item-create"), verify=TLS).status_code for _ in range(4)]
    assert statuses == [500, 200, 200, 401]  # no credentials sent: only the last one tells


def test_random_faults_are_reproducible(fake_klaviyo_factory: FakeFactory) -> None:
    outcomes = []
    for _ in range(2):
        fake = fake_klaviyo_factory(rate_limits=None)
        fake.inject_random(0.5, [Fault.status(502), Fault.status(504)], seed=7)
        with httpx.Client(headers=fake.headers(), verify=TLS) as client:
            outcomes.append([get(client, fake.url("item-create")).status_code for _ in range(30)])
    assert outcomes[0] == outcomes[1]
    assert {200, 502, 504} == set(outcomes[0])


# --- rate limits ----------------------------------------------------------------------------------


def test_fixed_windows_burst_and_steady(fake_klaviyo_factory: FakeFactory) -> None:
    fake = fake_klaviyo_factory(rate_limits=[(5, 0.5), (8, 3.0)])
    with httpx.Client(headers=fake.headers(), verify=TLS) as client:
        burst = [get(client, fake.url("item-create")) for _ in range(6)]
        assert [r.status_code for r in burst] == [200] * 5 + [429]
        assert [r.headers["ratelimit-remaining"] for r in burst[:5]] == ["7", "6", "5", "4", "3"]
        # Klaviyo's form: both windows in one header; Remaining and Reset the steady window's.
        assert {r.headers["ratelimit-limit"] for r in burst[:5]} == {"5, 5;w=1, 8;w=3"}
        assert all(1 <= int(r.headers["ratelimit-reset"]) <= 3 for r in burst[:5])
        throttled = burst[5]
        assert throttled.headers["retry-after"] == "1"  # 0.5 s window, rounded up to 1
        assert not any(h.startswith("ratelimit-") for h in throttled.headers)
        assert error_of(throttled)["code"] == "throttled"
        time.sleep(0.55)  # the burst window resets; the steady one has 3 left
        after = [get(client, fake.url("item-create")).status_code for _ in range(4)]
        assert after == [200, 200, 200, 429]
        steady_wait = int(get(client, fake.url("item-create")).headers["retry-after"])
        assert 2 <= steady_wait <= 3
    counted = [r.time for r in fake.request_log if r.counted]
    assert len(counted) == 8
    assert all(sum(t <= u < t + 0.5 for u in counted) <= 5 for t in counted)


def test_rate_limits_can_be_disabled_and_changed(fake: FakeKlaviyo, client: httpx.Client) -> None:
    response = get(client, fake.url("item-create"))
    assert "ratelimit-limit" not in response.headers
    fake.set_rate_limits([(1, 10.0)])
    assert get(client, fake.url("item-create")).status_code == 200
    assert get(client, fake.url("item-create")).headers["retry-after"] == "10"


def test_default_limits_are_the_generated_revisions_per_operation() -> None:
    with FakeKlaviyo() as fake, httpx.Client(headers=fake.headers(), verify=TLS) as client:
        assert fake.revision == DEFAULT_REVISION == REVISION
        urls = {
            "list_item_create_jobs": fake.url("item-create"),
            "list_variant_update_jobs": fake.url("variant-update"),
            "get_item_update_job": fake.url("item-update", fake.add_job("item-update")),
            "get_variant_update_job": fake.url("variant-update", fake.add_job("variant-update")),
            "get_category_update_job": fake.url("category-update", fake.add_job("category-update")),
        }
        for name, url in urls.items():
            limits = sorted(OPERATIONS[name].rate_limits, key=lambda limit: limit[1])
            steady = limits[-1][0]
            stated = f"{limits[0][0]}, " + ", ".join(f"{n};w={math.ceil(s)}" for n, s in limits)
            for used in (1, 2):  # each operation counts in windows of its own
                response = client.get(url)
                assert response.status_code == 200, name
                assert (
                    response.headers["ratelimit-limit"],
                    response.headers["ratelimit-remaining"],
                ) == (
                    stated,
                    str(steady - used),
                ), name


def test_per_operation_limits_are_counted_apart(fake_klaviyo_factory: FakeFactory) -> None:
    fake = fake_klaviyo_factory(rate_limits={"list_item_create_jobs": [(1, 10.0)]})
    with httpx.Client(headers=fake.headers(), verify=TLS) as client:
        assert client.get(fake.url("item-create")).status_code == 200
        assert client.get(fake.url("item-create")).status_code == 429
        for _ in range(3):  # an operation the mapping leaves out is not limited
            assert client.get(fake.url("variant-update")).status_code == 200
    with pytest.raises(ValueError, match="get_item_jobs"):
        FakeKlaviyo(rate_limits={"get_item_jobs": [(1, 1.0)]})


def test_unauthenticated_requests_use_no_quota(fake_klaviyo_factory: FakeFactory) -> None:
    fake = fake_klaviyo_factory(rate_limits=[(1, 10.0)])
    assert httpx.get(fake.url("item-create"), verify=TLS).status_code == 401
    assert httpx.get(fake.url("item-create"), headers=fake.headers(), verify=TLS).status_code == 200


# --- revisions ------------------------------------------------------------------------------------


def test_the_default_shape_is_the_generated_revisions(fake: FakeKlaviyo) -> None:
    spec = load_spec(None)
    assert fake.shape.revision == DEFAULT_REVISION == spec["info"]["version"]
    job_id = fake.add_job("variant-update", total=1)
    url = fake.url("variant-update", job_id)
    path = "/api/catalog-variant-bulk-update-jobs/{job_id}"
    assert path in spec["paths"] or path + "/" in spec["paths"]
    assert url == fake.base_url + (path if path in spec["paths"] else path + "/").format(
        job_id=job_id
    )
    with httpx.Client(headers=fake.headers(), verify=TLS) as client:
        response = get(client, url, include="variants")
    content = spec["paths"][urlsplit(url).path.replace(job_id, "{job_id}")]["get"]["responses"]
    assert response.headers["content-type"] == next(iter(content["200"]["content"]))


def test_old_shape(fake_klaviyo_factory: FakeFactory) -> None:
    fake = fake_klaviyo_factory(spec=spec_of_old_shape(), rate_limits=None)
    assert fake.revision == "2023-01-24"
    job_id = fake.add_job("item-update", total=1)
    with httpx.Client(headers=fake.headers(), verify=TLS) as client:
        response = get(client, fake.url("item-update", job_id))
        assert response.headers["content-type"] == "application/json"
        data = response.json()["data"]
        assert "id" not in data and data["attributes"]["job_id"] == job_id
        assert set(data["relationships"]["items"]) == {"data"}
        assert data["links"]["self"] == fake.url("item-update", job_id)
        assert fake.url("item-update", job_id).endswith("/")
        assert "links" not in response.json()
        no_slash = fake.url("item-update", job_id).rstrip("/")
        assert get(client, no_slash).status_code == 404
        links = get(client, fake.url("item-create")).json()["links"]
        assert list(links) == ["self", "first", "last", "prev", "next"]
        sparse = {"fields[catalog-item-bulk-update-job]": "id,status"}
        assert client.get(fake.url("item-update", job_id), params=sparse).status_code == 400


@pytest.mark.parametrize("header", ["2023-01-24", "2026-07-15.pre", "2030-01-01"])
def test_any_valid_revision_header_gets_the_spec_shape(fake: FakeKlaviyo, header: str) -> None:
    job_id = fake.add_job("variant-update", total=1)
    with httpx.Client(headers=fake.headers(header), verify=TLS) as client:
        url = fake.url("variant-update", job_id)
        response = get(client, url, include="variants")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == fake.shape.content_type
        doc = response.json()
        assert job_id_of(doc["data"]) == job_id and doc["data"]["links"]["self"] == url
        other_form = url.rstrip("/") if url.endswith("/") else url + "/"
        assert get(client, other_form).status_code == 404


def test_id_is_a_field_where_the_spec_says_so(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    allowed = fake.shape.endpoints[0].fieldsets
    with httpx.Client(headers=fake.headers(), verify=TLS) as client:
        url = fake.url("item-update", job_id)
        params = {"fields[catalog-item-bulk-update-job]": "id,status"}
        response = client.get(url, params=params)
    if "id" in next(iter(allowed.values())):
        doc = response.json()
        assert list(doc["data"]["attributes"]) == ["status"] and doc["data"]["id"] == job_id
    else:
        assert response.status_code == 400


def test_resources_have_every_attribute_of_the_spec(fake: FakeKlaviyo) -> None:
    schemas = load_spec(None)["components"]["schemas"]
    job_id = fake.add_job("variant-update", items=2)
    with httpx.Client(headers=fake.headers(), verify=TLS) as client:
        doc = get(client, fake.url("variant-update", job_id), include="variants").json()
    assert [set(r["attributes"]) for r in doc["included"]] == [
        set(schemas["CatalogVariantAttributes"]["properties"])
    ] * 2


# --- transport ------------------------------------------------------------------------------------


def test_keep_alive_serves_many_requests_on_one_connection(fake: FakeKlaviyo) -> None:
    host, port = urlsplit(fake.base_url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    path = urlsplit(fake.url("item-create")).path
    sockets = []
    for _ in range(3):
        connection.request("GET", path, headers=fake.headers())
        response = connection.getresponse()
        assert response.status == 200 and response.version == 11
        assert int(response.getheader("Content-Length") or -1) == len(response.read())
        sockets.append(connection.sock)
    assert sockets[0] is not None and sockets == [sockets[0]] * 3  # never reconnected
    connection.close()


def test_concurrent_requests(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update", polls_to_complete=1000)
    statuses: list[int] = []

    def worker() -> None:
        with httpx.Client(headers=fake.headers(), verify=TLS) as client:
            for _ in range(20):
                statuses.append(get(client, fake.url("item-update", job_id)).status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 160
    assert len(fake.request_log) == 160
    assert fake.job_attributes(job_id)["status"] == "processing"


def test_stop_is_fast_and_final(fake_klaviyo_factory: FakeFactory) -> None:
    fake = fake_klaviyo_factory()
    url = fake.url("item-create")
    client = httpx.Client(headers=fake.headers(), timeout=2, verify=TLS)
    assert client.get(url).status_code == 200  # leaves a kept-alive connection open
    fake.inject(Fault.delay(30))

    def wait_for_delayed_reply() -> None:
        with pytest.raises(httpx.HTTPError):  # the fake hangs up when stopped
            client.get(url)

    stuck = threading.Thread(target=wait_for_delayed_reply)
    stuck.start()
    time.sleep(0.1)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.0
    stuck.join(timeout=2)
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, headers=fake.headers(), timeout=1, verify=TLS)
    with pytest.raises(RuntimeError):
        fake.base_url  # noqa: B018
    client.close()


def test_stopping_while_a_request_is_answered_is_no_failure_of_the_fake(
    fake_klaviyo_factory: FakeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_klaviyo_factory(rate_limits=None)
    url = fake.url("item-create")
    page = fake._pager.page

    def stopped_meanwhile(*args: Any, **kwargs: Any) -> Any:
        # stop() overtakes the request: it returns before the document is built.
        stopper = threading.Thread(target=fake.stop)
        stopper.start()
        stopper.join(timeout=5)
        return page(*args, **kwargs)

    monkeypatch.setattr(fake._pager, "page", stopped_meanwhile)
    with pytest.raises(httpx.HTTPError):  # cut off, as every request in flight at stop()
        httpx.get(url, headers=fake.headers(), timeout=5, verify=TLS)
    assert fake.internal_errors == []


def test_log_records_requests_and_can_be_reset(fake: FakeKlaviyo, client: httpx.Client) -> None:
    get(client, fake.url("item-create"), filter='equals(status,"queued")')
    (record,) = fake.request_log
    assert record.method == "GET" and record.path == fake.shape.path(
        "catalog-item-bulk-create-jobs"
    )
    assert record.query == {"filter": 'equals(status,"queued")'}
    assert record.headers["revision"] == DEFAULT_REVISION and record.status == 200
    fake.reset_log()
    assert fake.request_log == []


def test_pytest_plugin_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        def test_fixture(fake_klaviyo):
            job_id = fake_klaviyo.add_job("item-update")
            url = fake_klaviyo.url("item-update", job_id)
            assert httpx.get(url, headers=fake_klaviyo.headers()).status_code == 200

        def test_factory(fake_klaviyo_factory):
            fake = fake_klaviyo_factory(revision="2024-10-15")
            assert "/api/catalog-item-bulk-create-jobs" in fake.url("item-create")
            assert fake.headers()["revision"] == "2024-10-15"
        """
    )
    # Block the entry point (if installed) so the module is not registered twice.
    plugin = ("-p", "no:klaviyo_catalog", "-p", "klaviyo_catalog.testing.pytest_plugin")
    # No other plugin either: what an in-process run imports, pytester drops from sys.modules
    # after it, and a module of anyio imported again then raises exceptions httpcore no longer
    # recognises (later async tests in this worker failed with anyio's BrokenResourceError).
    result = pytester.runpytest_inprocess("--disable-plugin-autoload", *plugin)
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("kind", "meta", "pointer"),
    [
        ("item-create", {"external_id": "ITEM-1"}, "/data/attributes/items/data/0"),
        (
            "variant-update",
            {"id": "$custom:::$default:::VARIANT-1"},
            "/data/attributes/variants/data/id",
        ),
        (
            "category-delete",
            {"id": "$custom:::$default:::CATEGORY-1"},
            "/data/attributes/categories/data/id",
        ),
    ],
)
def test_failed_jobs_report_errors_in_the_live_shape_of_their_kind(
    fake: FakeKlaviyo, client: httpx.Client, kind: str, meta: dict[str, str], pointer: str
) -> None:
    """Create jobs name a failed resource by meta.external_id and an indexed pointer; update
    and delete jobs by meta.id (its full id) and a pointer without an index, as live jobs do."""
    job_id = fake.add_job(kind, status="complete", items=3, failed=1)
    [error] = get(client, fake.url(kind, job_id)).json()["data"]["attributes"]["errors"]
    assert (error["meta"], error["source"]["pointer"]) == (meta, pointer)
    assert set(error) == {"detail", "meta", "source"}  # no id, code or title
