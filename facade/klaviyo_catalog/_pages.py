"""Where a listing walk is: `PageWalk`, the state between the pages of an `iter_*` call.

Sans-I/O, as the rest of the core: the walk says which cursor to request next and takes the
page that came back; the drivers loop over it, one page in memory at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._models import Page
from .errors import PageLimitExceededError, PaginationError

#: The loop guard of a walk keeps a digest of this many bytes per cursor, not the cursor: a
#: server handing out a new 16 KB cursor per page costs 16 bytes (plus the set's slot) each.
CURSOR_DIGEST_BYTES = 16
# A call's sparse fieldsets: JSON:API type -> field names.
Fields = Mapping[str, Iterable[str]] | None


@attrs.define
class PageWalk:
    """Where a listing is: the operation and its arguments (validated, and materialised once),
    the cursor to request next, digests of the cursors already seen, and the page budget.

    Drivers loop `while walk.proceed(): <yield the jobs of next_page(walk)>`. A page whose
    next link is unusable, or repeats a cursor, still yields its jobs: the walk stops only when
    asked to go past it, with `PaginationError` carrying that page's cursor, so an app can
    resume instead of ending silently short.
    """

    cursor: str | None
    name: str = ""
    status: str | None = None
    fields: Fields = None
    max_pages: int | None = None
    pages: int = 0
    done: bool = False
    seen: set[bytes] = attrs.field(factory=set)
    stopped: PaginationError | None = None

    def proceed(self) -> bool:
        """True while another page is to be requested; raises what stopped the walk."""
        if self.stopped is not None:
            raise self.stopped
        return not self.done

    def advance(self, page: Page[Any]) -> None:
        """Take the page that came back: its next cursor leads on; an unusable next link or a
        repeated cursor stops the walk after this page (raised by the next `proceed()`)."""
        self.pages += 1
        try:
            next_cursor = page.next_cursor
        except PaginationError as exc:
            self.stopped = exc
            return
        if next_cursor is None:
            self.done = True
            return
        digest = _digest(next_cursor)
        if next_cursor == self.cursor or digest in self.seen:
            self.stopped = PaginationError(
                f"the server returned cursor {next_cursor!r:.60} again; stopping to avoid a loop",
                cursor=self.cursor,
            )
            return
        if self.cursor is not None:
            self.seen.add(_digest(self.cursor))
        self.cursor = next_cursor

    def check_budget(self) -> None:
        """Before fetching a page: raise if the walk has used its `max_pages`."""
        if self.max_pages is not None and self.pages >= self.max_pages and self.cursor:
            raise PageLimitExceededError(
                f"{self.name}: fetched max_pages={self.max_pages} pages and the server has "
                "more; pass the error's cursor as cursor= to go on",
                max_pages=self.max_pages,
                cursor=self.cursor,
            )


def _digest(cursor: str) -> bytes:
    """A short digest of a cursor, for the walk's loop guard: a few bytes per page, whatever the
    cursor's size."""
    return hashlib.blake2b(
        cursor.encode("utf-8", "surrogatepass"), digest_size=CURSOR_DIGEST_BYTES
    ).digest()


def materialised(fields: Fields) -> Fields:
    """`fields` with each value read into a tuple once, so that an iterator given as a value
    serves every page of a walk (and validation does not consume it)."""
    if fields is None or not isinstance(fields, Mapping):
        return fields  # Operation.build refuses a non-mapping with InvalidRequestError
    return {
        key: tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else value
        for key, value in fields.items()
    }
