"""Walks over pages: the loop guard keeps digests, not cursors; a page budget; arguments checked
and read once, when the walk is made."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    CatalogJobs,
    InvalidRequestError,
    InvalidResponseError,
    MemoryRateLimiter,
    PageLimitExceededError,
)
from klaviyo_catalog._flow import Send
from klaviyo_catalog._pages import CURSOR_DIGEST_BYTES
from klaviyo_catalog.testing import FakeKlaviyo, VirtualClock

from tests.support.hardening_support import Mode, call
from tests.support.virtual_clock import Served, VirtualDriver, virtual_core

LIST = "list_item_create_jobs"


def page(n: int, next_cursor: str | None) -> dict[str, Any]:
    job = {
        "type": "catalog-item-bulk-create-job",
        "id": f"J{n}",
        "attributes": {"job_id": f"J{n}", "status": "processing", "created_at": "2024-05-01"},
    }
    next_link = None
    if next_cursor is not None:
        next_link = f"https://a.klaviyo.com/api/x?page%5Bcursor%5D={next_cursor}"
    return {"data": [job], "links": {"self": None, "next": next_link}}


def walk_through(core: Any, driver: VirtualDriver, **arguments: Any) -> Iterator[str]:
    walk = core.walk(LIST, status=None, cursor=None, fields=None, **arguments)
    while walk.proceed():
        for job in driver.run(core.next_page(walk)):
            yield job.id
    assert all(len(digest) == CURSOR_DIGEST_BYTES for digest in walk.seen)


def test_a_new_16_kb_cursor_per_page_costs_the_loop_guard_a_digest_each() -> None:
    pages = 120
    clock = VirtualClock()
    core = virtual_core(clock)

    def server(send: Send) -> Served:
        n = int(send.request.url.params.get("page[cursor]", "0")[:6])
        return Served.body(page(n, f"{n + 1:06d}{'x' * 16_000}" if n + 1 < pages else None))

    driver = VirtualDriver(clock, server, keep_sends=False)
    tracemalloc.start()
    try:
        walk = walk_through(core, driver)
        first = [next(walk) for _ in range(10)]
        settled = tracemalloc.get_traced_memory()[0]
        rest = list(walk)
        grown = tracemalloc.get_traced_memory()[0] - settled
    finally:
        tracemalloc.stop()
    assert first + rest == [f"J{n}" for n in range(pages)]
    # 110 more cursors of 16 KB went by: 1.8 MB if kept, about 10 KB as digests in a set.
    assert grown < 200_000


def test_a_cursor_seen_before_still_stops_the_walk() -> None:
    clock = VirtualClock()
    core = virtual_core(clock)
    cursors = {None: "a", "a": "b", "b": "c", "c": "a"}

    def server(send: Send) -> Served:
        cursor = send.request.url.params.get("page[cursor]")
        return Served.body(page(len(driver.sends), cursors[cursor]))

    driver = VirtualDriver(clock, server)
    with pytest.raises(InvalidResponseError, match="again") as caught:
        list(walk_through(core, driver))
    assert caught.value.cursor == "c" and len(driver.sends) == 4


def test_a_walk_stops_at_its_page_budget_with_the_cursor_to_go_on() -> None:
    clock = VirtualClock()
    core = virtual_core(clock)

    def server(send: Send) -> Served:
        n = int(send.request.url.params.get("page[cursor]", "0"))
        return Served.body(page(n, str(n + 1) if n < 4 else None))

    driver = VirtualDriver(clock, server)
    seen: list[str] = []
    with pytest.raises(PageLimitExceededError) as caught:
        seen.extend(walk_through(core, driver, max_pages=2))
    assert seen == ["J0", "J1"] and len(driver.sends) == 2  # page 3 was never fetched
    assert caught.value.cursor == "2" and caught.value.max_pages == 2
    resumed = core.walk(LIST, status=None, cursor=caught.value.cursor, fields=None, max_pages=9)
    rest = [job.id for _ in range(3) for job in driver.run(core.next_page(resumed))]
    assert rest == ["J2", "J3", "J4"] and resumed.done


def test_a_budget_the_walk_does_not_need_raises_nothing() -> None:
    clock = VirtualClock()
    core = virtual_core(clock)
    driver = VirtualDriver(clock, lambda send: Served.body(page(0, None)))
    assert list(walk_through(core, driver, max_pages=1)) == ["J0"]


# --- through both clients --------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo(page_size=2, rate_limits=None) as server:
        yield server


def collect(mode: Mode, fake: FakeKlaviyo, **kwargs: Any) -> list[str]:
    jobs = call(mode, client_options(fake), "iter_item_create_jobs", **kwargs)
    return [job.id for job in jobs]


def client_options(fake: FakeKlaviyo) -> dict[str, Any]:
    """A client of `fake`, with a rate-limit budget of its own."""
    return {"api_key": fake.api_key, "base_url": fake.base_url, "rate_limiter": MemoryRateLimiter()}


def test_max_pages_then_resume_sees_every_job_once(mode: Mode, fake: FakeKlaviyo) -> None:
    ids = fake.add_jobs("item-create", 5)
    with pytest.raises(PageLimitExceededError) as caught:
        collect(mode, fake, max_pages=2)
    assert len(fake.request_log) == 2
    rest = collect(mode, fake, cursor=caught.value.cursor)
    assert len(rest) == 1 and rest[0] == ids[-1]


def test_an_iterator_in_fields_serves_every_page(mode: Mode, fake: FakeKlaviyo) -> None:
    fake.add_jobs("item-create", 5)
    names = iter(["completed_count"])
    jobs = collect(mode, fake, fields={"catalog-item-bulk-create-job": names})
    assert len(jobs) == 5 and len(fake.request_log) == 3
    for record in fake.request_log:
        fieldset = record.query["fields[catalog-item-bulk-create-job]"].split(",")
        assert fieldset[0] == "completed_count"  # not an empty list after the first page


def test_an_iterator_in_fields_or_include_of_a_single_job_is_sent_whole(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    job_id = fake.add_job("item-update", items=2)
    fields = {"catalog-item": (name for name in ["title", "price"])}
    include = (name for name in ["items"])
    job = call(
        mode, client_options(fake), "get_item_update_job", job_id, include=include, fields=fields
    )
    assert job.items is not None and len(job.items) == 2
    (record,) = fake.request_log
    assert record.query["fields[catalog-item]"] == "title,price"
    assert record.query["include"] == "items"


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
@pytest.mark.parametrize("client_class", [CatalogJobs, AsyncCatalogJobs])
def test_a_walk_checks_its_arguments_when_it_is_made(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs], bad: Any
) -> None:
    kc = client_class("pk_x")
    with pytest.raises(InvalidRequestError, match="max_pages"):
        kc.iter_item_create_jobs(max_pages=bad)
    with pytest.raises(InvalidRequestError, match="status must be a str"):
        kc.iter_variant_update_jobs(status=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="cursor"):
        kc.iter_item_create_jobs(cursor="x" * 70_000)
