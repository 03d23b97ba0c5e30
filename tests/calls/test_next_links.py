"""A page whose `links.next` names no usable cursor: its jobs are kept, the walk never follows
another host, and going past it fails with `PaginationError` carrying the page's own cursor.

Klaviyo's published spec allows any URI in `links.next`. The rule lives in the sans-I/O core
(`_jsonapi.next_page`, `Page.next_cursor`, `PageWalk`); these tests drive it directly, then
through both clients against FakeKlaviyo, with a second FakeKlaviyo on 127.0.0.2 standing for
another host.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from klaviyo_catalog import (
    InvalidResponseError,
    KlaviyoError,
    Page,
    PaginationError,
)
from klaviyo_catalog import _jsonapi as jsonapi
from klaviyo_catalog._pages import PageWalk
from klaviyo_catalog.testing import FakeKlaviyo

from tests.support import documents as docs
from tests.support.hardening_support import Mode, call, consume, json_body, options, use

CREATE = "catalog-item-bulk-create-job"

# links member -> what the error must say. Each names a next page the client cannot ask for.
UNUSABLE: dict[str, tuple[Any, str]] = {
    "links a list": (["next"], "links should be an object"),
    "next a number": ({"next": 2}, "links.next should be a string"),
    "next without cursor": ({"next": "https://x/api/jobs?a=1"}, r"no page\[cursor\]"),
    "next with an empty cursor": ({"next": "https://x/?page[cursor]="}, r"no page\[cursor\]"),
    "next not a URL": ({"next": "http://[::1"}, "not a URL"),
    "next with two cursors": ({"next": "/?page[cursor]=a&page[cursor]=b"}, "2 different"),
    # What Stoplight Prism's dynamic mode sends: any URI, as the published spec allows.
    "a random URI": ({"next": "https://IThUZWfix.votJz"}, r"no page\[cursor\]"),
}

USABLE: dict[str, tuple[Any, str | None]] = {
    "no links": (None, None),
    "next absent": ({"self": "https://x/"}, None),
    "next null": ({"next": None}, None),
    "next empty": ({"next": ""}, None),
    "next on Klaviyo": ({"next": "https://a.klaviyo.com/api/x?page%5Bcursor%5D=c2"}, "c2"),
    "next on another host": ({"next": "https://elsewhere.example/y?page[cursor]=c2"}, "c2"),
    "next relative": ({"next": "/api/x?filter=equals(status,'queued')&page[cursor]=c2"}, "c2"),
}


def document(links: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"data": [docs.job("A", CREATE), docs.job("B", CREATE)]}
    if links is not None:
        doc["links"] = links
    return doc


# --- sans-I/O: the page and the walk ------------------------------------------------------------


@pytest.mark.parametrize("case", USABLE)
def test_a_usable_or_absent_next_link_gives_its_cursor(case: str) -> None:
    links, cursor = USABLE[case]
    page = jsonapi.job_collection(document(links), CREATE, cursor="c1")
    assert [job.id for job in page] == ["A", "B"] and page.cursor == "c1"
    assert page.next_cursor == cursor and page.has_next == (cursor is not None)


@pytest.mark.parametrize("case", UNUSABLE)
def test_an_unusable_next_link_keeps_the_page_and_refuses_to_go_on(case: str) -> None:
    links, problem = UNUSABLE[case]
    page = jsonapi.job_collection(document(links), CREATE, cursor="c1")
    assert [job.id for job in page] == ["A", "B"]  # the data is never lost
    assert page.has_next  # the server pointed onward: never mistaken for the last page
    with pytest.raises(PaginationError, match=problem) as caught:
        _ = page.next_cursor
    assert isinstance(caught.value, InvalidResponseError)
    assert caught.value.cursor == "c1"  # read this page again to resume
    assert caught.value.next_link is not None
    # Serialized, it is not mistaken for the last page either.
    assert page.to_dict()["next_cursor"] is None and page.to_dict()["has_next"] is True


@pytest.mark.parametrize("start", [None, "c1"])
def test_a_walk_stops_after_the_page_with_an_unusable_link_not_before(start: str | None) -> None:
    walk = PageWalk(start)
    assert walk.proceed() and walk.cursor == start
    walk.advance(
        jsonapi.job_collection(document({"next": "/?page[cursor]=c2"}), CREATE, cursor=start)
    )
    assert walk.proceed() and walk.cursor == "c2"
    walk.advance(jsonapi.job_collection(document({"next": "/nowhere"}), CREATE, cursor="c2"))
    # The driver yields that page's jobs after advance(); only asking for more raises.
    for _ in range(2):  # and it keeps raising: a caught error does not end the walk quietly
        with pytest.raises(PaginationError) as caught:
            walk.proceed()
        assert caught.value.cursor == "c2"


def test_a_repeated_cursor_stops_the_walk_after_that_page() -> None:
    walk = PageWalk(None)
    walk.advance(Page([], next_cursor="c2", cursor=None))
    walk.advance(Page(["job"], next_cursor="c2", cursor="c2"))
    with pytest.raises(PaginationError, match="again") as caught:
        walk.proceed()
    assert caught.value.cursor == "c2"


def test_the_last_page_ends_the_walk() -> None:
    walk = PageWalk("c1")
    walk.advance(Page([], next_cursor=None, cursor="c1"))
    assert walk.proceed() is False


# --- both clients, over HTTP --------------------------------------------------------------------


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    return make_fake(page_size=100, rate_limits=None)


@pytest.fixture
def other_host(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    """A fake on 127.0.0.2, another origin on loopback; its request log must stay empty."""
    return make_fake(host="127.0.0.2")


def raw_pages(fake: FakeKlaviyo) -> list[dict[str, Any]]:
    """Every page of the item-create listing, straight from the fake."""
    pages: list[dict[str, Any]] = []
    url: str | None = fake.url("item-create")
    while url is not None:
        pages.append(httpx.get(url, headers=fake.headers()).json())
        url = pages[-1]["links"]["next"]
    return pages


def cursor_in(link: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["page[cursor]"][0]


def walk(mode: Mode, fake: FakeKlaviyo, start: str | None) -> tuple[list[str], KlaviyoError | None]:
    """The job ids an iter_* walk yields, and the error that ended it, if any."""
    seen: list[str] = []
    client_options = options(fake.base_url, fake.api_key, max_retries=0)
    try:
        use(
            mode,
            client_options,
            lambda kc: consume(kc.iter_item_create_jobs(cursor=start), lambda j: seen.append(j.id)),
        )
    except KlaviyoError as error:
        return seen, error
    return seen, None


def test_a_walk_yields_every_job_up_to_an_unusable_link_then_resumes(
    mode: Mode, fake: FakeKlaviyo, other_host: FakeKlaviyo
) -> None:
    wanted = fake.add_jobs("item-create", 250)
    pages = raw_pages(fake)
    second = cursor_in(pages[0]["links"]["next"])
    # The second page's next link points at another host, and names no cursor.
    broken = {**pages[1], "links": {**pages[1]["links"], "next": other_host.base_url + "/x"}}
    fake.inject(json_body(pages[0]))
    fake.inject(json_body(broken))
    fake.reset_log()
    seen, error = walk(mode, fake, None)
    assert seen == wanted[:200]  # both pages delivered in full
    assert isinstance(error, PaginationError) and error.cursor == second
    assert error.next_link == other_host.base_url + "/x"
    assert len(fake.request_log) == 2 and other_host.request_log == []
    # Resuming from the error's cursor reads the second page again, then goes on.
    rest, error = walk(mode, fake, second)
    assert error is None and rest == wanted[100:]
    assert fake.request_log[2].query.get("page[cursor]") == second
    assert other_host.request_log == []


def test_list_gives_the_page_and_asking_for_the_next_one_fails(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    fake.inject(json_body(document({"next": "https://elsewhere.example/"})), times=2)
    opts = options(fake.base_url, fake.api_key, max_retries=0)
    page: Page[Any] = call(mode, opts, "list_item_create_jobs", cursor="c7")
    assert [job.id for job in page] == ["A", "B"] and page.has_next and page.cursor == "c7"
    with pytest.raises(PaginationError, match=r"no page\[cursor\]") as caught:
        _ = page.next_cursor
    assert caught.value.cursor == "c7"
