"""`Core`: the flows of the public calls, shared by both clients and written sans-I/O.

Each public call is a generator (a "flow", see `_flow`) that yields what it needs done,
`Send(request)`, `Sleep(seconds)` or `Call(function)`, and receives the outcome. The flows
own everything that is not I/O: checking the arguments and building the request
(`_operations`, `_checks`), the request's way through the rate limiter, retries and the
call's deadline (`_exchange`), the bounds on a response body (`_body`), parsing (`_parse`,
`_jsonapi`), pagination state (`_pages`) and polling (`_waiting`).

The drivers in `_client.py` perform the actions, and differ only in how. `CatalogJobs`
blocks: its own pool's sockets wait no longer than the deadline, a `Call` with a timeout
runs in a worker thread (`_workers`), a `Sleep` is `time.sleep`. `AsyncCatalogJobs` awaits:
calls beyond its pool queue in a semaphore, an exchange is cut off at the deadline, every
`Call` runs in a worker thread off the event loop, a `Sleep` is `asyncio.sleep`. Each
iterates a walk or a wait as a generator of its kind.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import _checks as checks
from . import _jsonapi as jsonapi
from ._deadline import Deadline
from ._exchange import Exchange
from ._flow import Flow
from ._models import BulkJob, Page
from ._operations import operation
from ._pages import Fields, PageWalk, materialised
from ._parse import parsed
from ._settings import Settings
from .errors import KlaviyoError


class Core:
    """The flows of every public call, shared by the sync and the async client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- the public calls ----------------------------------------------------------------------

    def get_job(
        self, name: str, job_id: str, include: Iterable[str] | None, fields: Fields
    ) -> Flow[BulkJob]:
        """One job by its operation's GET, checked to be the job asked for."""
        op = operation(name)
        parts, included = op.build(
            revision=self.settings.revision, job_id=job_id, include=include, fields=fields
        )
        deadline = Deadline.start(self.settings.clock, self.settings.retry.deadline)
        response, info = yield from Exchange(self.settings, op, parts, deadline).run()
        job = yield from parsed(
            op,
            response,
            deadline,
            lambda doc: jsonapi.job_document(doc, op.spec.job_type, included, info),
        )
        if job.id != job_id:
            # A connection shared by mistake (say, across fork()) can deliver another request's
            # response; a job that is not the one asked for must never pass as it.
            raise jsonapi.invalid(
                response, op.name, f"asked for job {job_id!r:.80}, got job {job.id!r:.80}"
            )
        return job

    def walk(
        self,
        name: str,
        *,
        status: str | None,
        cursor: str | None,
        fields: Fields,
        max_pages: int | None = None,
    ) -> PageWalk:
        """A walk over every page, its arguments checked now rather than at the first page."""
        max_pages = checks.max_pages(max_pages)
        fields = materialised(fields)
        operation(name).build(
            revision=self.settings.revision, status=status, cursor=cursor, fields=fields
        )
        return PageWalk(cursor, name, status, fields, max_pages)

    def next_page(self, walk: PageWalk) -> Flow[Page[BulkJob]]:
        """The walk's next page (the walk advances past it); raises PageLimitExceededError
        once the page budget is used and the server has more."""
        walk.check_budget()
        page = yield from self.list_page(
            walk.name, status=walk.status, cursor=walk.cursor, fields=walk.fields
        )
        walk.advance(page)
        return page

    def list_page(
        self, name: str, *, status: str | None, cursor: str | None, fields: Fields
    ) -> Flow[Page[BulkJob]]:
        """One page of a listing; an error carries the cursor to resume from."""
        try:
            op = operation(name)
            parts, _ = op.build(
                revision=self.settings.revision, status=status, cursor=cursor, fields=fields
            )
            deadline = Deadline.start(self.settings.clock, self.settings.retry.deadline)
            response, info = yield from Exchange(self.settings, op, parts, deadline).run()
            return (
                yield from parsed(
                    op,
                    response,
                    deadline,
                    lambda doc: jsonapi.job_collection(doc, op.spec.job_type, info, cursor=cursor),
                )
            )
        except KlaviyoError as exc:
            exc.cursor = cursor  # so that the caller can resume from this page
            raise
