"""A cursor goes back byte for byte, whatever bytes it holds: `Page.next_cursor` is a str in
which a byte that is not UTF-8 is a surrogate escape ("%FF" is "\\udcff"), percent-encoded back
to that byte. Before, "%FF%FE" came back as U+FFFD twice, and the walk could not continue.

Checked on the raw request line a tiny loopback server receives, through both clients.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from klaviyo_catalog import InvalidRequestError
from klaviyo_catalog import _jsonapi as jsonapi
from klaviyo_catalog._operations import operation

from tests.support import documents as docs
from tests.support.hardening_support import PROFILE, Mode, call, options

CREATE = "catalog-item-bulk-create-job"
LIST = "list_item_create_jobs"


class CursorServer(http.server.ThreadingHTTPServer):
    """Page 1 links to page 2 by `cursor` (a raw, percent-encoded query value); page 2 is
    served only to a request whose raw `page[cursor]` is exactly that, else a 400."""

    cursor = ""
    raw_queries: list[str]


class Handler(http.server.BaseHTTPRequestHandler):
    server: CursorServer

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        self.server.raw_queries.append(query)
        raw = dict(part.partition("=")[::2] for part in query.split("&") if part)
        if "page[cursor]" not in raw and "page%5Bcursor%5D" not in raw:
            link = f"http://127.0.0.1:{self.server.server_port}{path}?page%5Bcursor%5D="
            self.answer(200, docs.collection([docs.job("A", CREATE)], link + self.server.cursor))
        elif self.server.cursor in (raw.get("page[cursor]"), raw.get("page%5Bcursor%5D")):
            self.answer(200, docs.collection([docs.job("B", CREATE)], None))
        else:
            self.answer(400, docs.error(400, "unknown cursor", parameter="page[cursor]"))

    def answer(self, status: int, document: Any) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.api+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[CursorServer]:
    with CursorServer(("127.0.0.1", 0), Handler) as served:
        served.raw_queries = []
        thread = threading.Thread(target=served.serve_forever, kwargs={"poll_interval": 0.01})
        thread.start()
        try:
            yield served
        finally:
            served.shutdown()
            thread.join()


def client_options(server: CursorServer) -> dict[str, Any]:
    return options(f"http://127.0.0.1:{server.server_port}", "pk_cursor_test", max_retries=0)


# Raw cursors as a server may percent-encode them: the issue's, UTF-8 text beside a stray
# byte and base64's reserved characters, a UTF-8 sequence cut short, a lone continuation byte.
RAW_CURSORS = ["%FF%FE", "%C3%A9%FF%2B%2F%3D", "%E2%82", "abc%80def", "bmV4dDo6aWQ6OjQz"]


@pytest.mark.parametrize("raw", RAW_CURSORS)
def test_a_walk_sends_each_cursor_back_as_the_server_encoded_it(
    mode: Mode, server: CursorServer, raw: str
) -> None:
    server.cursor = raw
    jobs = call(mode, client_options(server), "iter_item_create_jobs")
    assert [job.id for job in jobs] == ["A", "B"]
    assert server.raw_queries[1] == f"page[cursor]={raw}"  # the very bytes, as encoded


def test_next_cursor_is_a_str_that_resumes_a_listing_even_through_json(
    mode: Mode, server: CursorServer
) -> None:
    server.cursor = "%FF%FE"
    page = call(mode, client_options(server), LIST)
    assert page.next_cursor == "\udcff\udcfe"  # surrogate escapes of the bytes FF FE
    stored = json.loads(page.to_json())["next_cursor"]  # as an app might keep it
    page.to_json().encode("utf-8")  # the JSON text itself is valid UTF-8
    resumed = call(mode, client_options(server), LIST, cursor=stored)
    assert [job.id for job in resumed] == ["B"] and not resumed.has_next
    assert server.raw_queries[-1] == "page[cursor]=%FF%FE"


@PROFILE
@given(st.binary(min_size=1, max_size=40))
def test_any_cursor_bytes_round_trip(cursor: bytes) -> None:
    link = "https://a.klaviyo.com/api/x?page%5Bcursor%5D=" + urllib.parse.quote(cursor, safe="")
    next_cursor, unusable = jsonapi.next_page({"next": link})
    assert unusable is None and isinstance(next_cursor, str)
    parts, _ = operation(LIST).build(revision="2026-07-15", cursor=next_cursor)
    name, _, value = parts.target.partition("?")[2].partition("=")
    assert name == "page[cursor]" and urllib.parse.unquote_to_bytes(value) == cursor


@pytest.mark.parametrize("cursor", ["\ud800", "\udcc3\udca9", "a\udc41"])
def test_a_cursor_that_stands_for_no_single_byte_string_is_refused(cursor: str) -> None:
    # A lone surrogate that is no escaped byte, or escapes of bytes that are UTF-8 (which a
    # next_cursor never holds: "\udcc3\udca9" would go out as "é").
    with pytest.raises(InvalidRequestError, match="surrogate escapes"):
        operation(LIST).build(revision="2026-07-15", cursor=cursor)
