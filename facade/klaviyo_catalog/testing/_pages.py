"""Cursor pagination of one endpoint's jobs, in insertion order (oldest first).

A cursor stands for "the jobs inserted after job number N", so jobs added or filtered out
between requests never shift a page: nothing is skipped and nothing is served twice.
"""

from __future__ import annotations

import base64
import bisect
import os
from collections.abc import Iterable
from urllib.parse import quote, urlencode

from ._jobs import Job
from ._model import Endpoint, Shape
from ._request import ApiError, Query

_CURSOR_PREFIX = b"\xfb\xef\xbf"  # base64 "+++/": every cursor needs percent-encoding


class Pager:
    """Pages an endpoint's jobs and keeps the cursors it hands out, each naming the last job
    served before its page."""

    def __init__(self, page_size: int) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size
        self._salt = os.urandom(3)  # another fake's cursors are unknown here
        self._cursors: dict[str, tuple[Endpoint, int]] = {}

    def page(
        self, endpoint: Endpoint, jobs: Iterable[Job], query: Query, shape: Shape, base_url: str
    ) -> tuple[list[Job], dict[str, str | None]]:
        """The jobs of the requested page, and the links (self, first, last, prev, next)."""
        after = self._resolve(query.cursor, endpoint)
        matching = [
            job
            for job in jobs
            if job.kind is endpoint.kind
            and (query.status is None or job.attributes["status"] == query.status)
        ]
        start = bisect.bisect_right([job.seq for job in matching], after)
        size = self.page_size

        def url(cursor: str | None) -> str:
            params = {k: v for k, v in query.params.items() if k != "page[cursor]"}
            if cursor is not None:
                params["page[cursor]"] = cursor
            encoded = urlencode(params, quote_via=quote)  # "+/=" become %2B, %2F, %3D
            path = base_url + shape.path(endpoint.kind.collection)
            return f"{path}?{encoded}" if encoded else path

        def url_of(first: int) -> str:  # the page that begins with matching[first]
            return url(self._cursor(shape, endpoint, matching[first - 1].seq) if first else None)

        links = {
            "self": url(query.cursor),
            "first": url_of(0),
            "last": url_of(max(0, (len(matching) - 1) // size * size)),
            "prev": url_of(max(0, start - size)) if start > 0 else None,
            "next": url_of(start + size) if start + size < len(matching) else None,
        }
        return matching[start : start + size], links

    def _cursor(self, shape: Shape, endpoint: Endpoint, after: int) -> str:
        """A new cursor for the jobs after `after`: opaque, one needing percent-encoding (as
        Klaviyo's do), and valid for this endpoint only."""
        raw = _CURSOR_PREFIX + self._salt + bytes([shape.endpoints.index(endpoint)])
        token = base64.b64encode(raw + after.to_bytes(7, "big")).decode()  # ends in "="
        self._cursors[token] = (endpoint, after)
        return token

    def _resolve(self, cursor: str | None, endpoint: Endpoint) -> int:
        """The sequence number a cursor starts after (0 for the first page); 400 for a cursor
        this endpoint did not hand out."""
        if cursor is None:
            return 0
        found = self._cursors.get(cursor)
        if found is None or found[0] != endpoint:
            detail = "Unknown cursor; take page[cursor] from this endpoint's links.next."
            raise ApiError.bad_parameter("page[cursor]", detail)
        return found[1]
