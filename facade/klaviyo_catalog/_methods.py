"""The public calls, written once for both clients.

Each method hands a flow of the shared core to the client's driver: `CatalogJobs` runs it
and returns the result, `AsyncCatalogJobs` returns a coroutine (or an async iterator) that
does. The three type parameters say which; so each method and its docstring exist once, and
the two clients cannot drift apart.
"""

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypedDict, TypeVar, Unpack

from ._core import Core, Fields, Flow, PageWalk
from ._models import BulkJob, Page
from ._waiting import JobsWait, Schedule, WaitProgress, wait_for_job
from .errors import InvalidRequestError

__all__ = ["ListOptions", "Methods", "WalkOptions"]

JobR = TypeVar("JobR")  # what a call returning one job gives: BulkJob, or a coroutine of one
PageR = TypeVar("PageR")  # the same for a Page
JobsR = TypeVar("JobsR")  # an iterator of jobs, or an async iterator


class ListOptions(TypedDict, total=False):
    """The options of `list_*` (and `iter_*`), all passed by keyword and all optional.

    - `status`: only jobs in this status, one the spec knows (e.g. "processing").
    - `cursor`: the page to start at: a page's `next_cursor`, or an error's `.cursor` to
      resume. Without it, the first page.
    - `fields`: sparse fieldsets, e.g. `{"catalog-item-bulk-create-job": ["errors"]}` (the
      job's status and counts are always asked for).

    An unknown option is a TypeError; a bad value an InvalidRequestError, before any request.
    """

    status: str | None
    cursor: str | None
    fields: Fields


class WalkOptions(ListOptions, total=False):
    """The options of `iter_*`: those of `list_*`, and

    - `max_pages`: at most this many pages; if the server has more, PageLimitExceededError,
      whose `.cursor` goes on.
    - `start_cursor`: the deprecated name of `cursor`.
    """

    max_pages: int | None
    start_cursor: str | None


_LIST_OPTIONS = frozenset(ListOptions.__annotations__)
_WALK_OPTIONS = frozenset(WalkOptions.__annotations__)  # a TypedDict's include its bases'


def _known(method: str, options: Mapping[str, object], accepted: frozenset[str]) -> None:
    """A TypeError for an option `method` does not take, as Python gives for a named one."""
    for name in options:
        if name not in accepted:
            raise TypeError(f"{method}() got an unexpected keyword argument {name!r}")


def _cursor(cursor: str | None, start_cursor: str | None) -> str | None:
    """`iter_*`'s cursor, taking the deprecated `start_cursor=` (one name for list_* and iter_*)."""
    if start_cursor is None:
        return cursor
    if cursor is not None and cursor != start_cursor:
        raise InvalidRequestError("pass cursor= only (start_cursor= is its deprecated name)")
    warnings.warn(
        "start_cursor= is deprecated; pass cursor=, as to list_*",
        DeprecationWarning,
        stacklevel=4,  # the caller of iter_* (which calls _iter, which calls this)
    )
    return start_cursor


class Methods(Generic[JobR, PageR, JobsR]):
    """The calls of `CatalogJobs` and `AsyncCatalogJobs`; each client says how to run them.

    Annotations are evaluated (no `from __future__ import annotations`), so that `help()` and
    `inspect.signature` show the argument types in full. In them, `JobR` is `BulkJob` on
    `CatalogJobs` and an awaitable `BulkJob` on `AsyncCatalogJobs`; `PageR` is `Page[BulkJob]`
    or an awaitable one; `JobsR` is an iterator of `BulkJob`, or an async iterator. The four
    listings take their options as `**options: Unpack[...]` of `ListOptions` or `WalkOptions`
    (PEP 692, as stripe-python does), so those are written once; type checkers and IDEs
    check and complete them as named keywords.
    """

    _core: Core

    def _job(self, flow: Flow[BulkJob]) -> JobR:
        """Run a flow that ends in one job: the sync client returns the job, the async one a
        coroutine."""
        raise NotImplementedError

    def _page(self, flow: Flow[Page[BulkJob]]) -> PageR:
        """Run a flow that ends in one page, as `_job` does."""
        raise NotImplementedError

    def _walk(self, walk: PageWalk) -> JobsR:
        """Drive a walk page by page: an iterator of its jobs, or an async iterator."""
        raise NotImplementedError

    def _drain(self, wait: JobsWait) -> JobsR:
        """Drive a wait round by round: an iterator of the jobs as they finish, or an async
        iterator."""
        raise NotImplementedError

    # --- single jobs ---

    def get_item_update_job(
        self, job_id: str, *, include: Iterable[str] | None = None, fields: Fields = None
    ) -> JobR:
        """One catalog item bulk-update job; with `include=["items"]`, its items too.

        `fields` asks for sparse fieldsets, e.g. `{"catalog-item": ["title", "price"]}` (the
        job's status and counts are always asked for). Raises InvalidRequestError, before any
        request, for an unknown field or include; NotFoundError when there is no such job.
        """
        return self._job(self._core.get_job("get_item_update_job", job_id, include, fields))

    def get_variant_update_job(
        self, job_id: str, *, include: Iterable[str] | None = None, fields: Fields = None
    ) -> JobR:
        """One catalog variant bulk-update job; with `include=["variants"]`, its variants too.
        Arguments and errors as for `get_item_update_job`."""
        return self._job(self._core.get_job("get_variant_update_job", job_id, include, fields))

    def get_category_update_job(
        self, job_id: str, *, include: Iterable[str] | None = None, fields: Fields = None
    ) -> JobR:
        """One catalog category bulk-update job; with `include=["categories"]`, its categories too.
        Arguments and errors as for `get_item_update_job`."""
        return self._job(self._core.get_job("get_category_update_job", job_id, include, fields))

    # --- listings: one page, or every page lazily ---

    def list_item_create_jobs(self, **options: Unpack[ListOptions]) -> PageR:
        """One page (up to 100) of the account's item-create jobs, oldest first.

        Options (`ListOptions`), all by keyword: `status` filters by a status the spec knows
        (e.g. "processing"); `cursor` is a page's `next_cursor`, or an error's `.cursor` to
        resume; `fields` asks for sparse fieldsets. `page.next_cursor` leads on;
        `iter_item_create_jobs` walks every page for you.
        """
        return self._list("list_item_create_jobs", options)

    def list_variant_update_jobs(self, **options: Unpack[ListOptions]) -> PageR:
        """One page (up to 100) of the account's variant-update jobs, oldest first; as
        `list_item_create_jobs`."""
        return self._list("list_variant_update_jobs", options)

    def iter_item_create_jobs(self, **options: Unpack[WalkOptions]) -> JobsR:
        """Every item-create job of every page, one page in memory at a time, from `cursor`
        (an error's `.cursor` resumes a walk) or the first page.

        Options (`WalkOptions`), all by keyword: `status`, `cursor` and `fields` as for
        `list_item_create_jobs`; with `max_pages`, at most that many pages: if the server has
        more, PageLimitExceededError, whose `.cursor` goes on.
        """
        return self._iter("list_item_create_jobs", options)

    def iter_variant_update_jobs(self, **options: Unpack[WalkOptions]) -> JobsR:
        """Every variant-update job of every page; as `iter_item_create_jobs`."""
        return self._iter("list_variant_update_jobs", options)

    def _list(self, name: str, options: ListOptions) -> PageR:
        """`list_*` of the list operation `name`."""
        _known(name, options, _LIST_OPTIONS)
        flow = self._core.list_page(
            name,
            status=options.get("status"),
            cursor=options.get("cursor"),
            fields=options.get("fields"),
        )
        return self._page(flow)

    def _iter(self, name: str, options: WalkOptions) -> JobsR:
        """`iter_*` of the list operation `name`: a walk, its arguments checked now, that the
        client drives page by page."""
        _known(name.replace("list_", "iter_", 1), options, _WALK_OPTIONS)
        walk = self._core.walk(
            name,
            status=options.get("status"),
            cursor=_cursor(options.get("cursor"), options.get("start_cursor")),
            fields=options.get("fields"),
            max_pages=options.get("max_pages"),
        )
        return self._walk(walk)

    # --- polling ---

    def wait_for_job(
        self,
        job: BulkJob,
        *,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        timeout: float = 600.0,
        on_progress: Callable[[BulkJob], object] | None = None,
        include: Iterable[str] | None = None,
        fields: Fields = None,
    ) -> JobR:
        """Poll one job until it is complete or cancelled, and return its final state.

        The first poll comes `poll_interval` seconds after the call, and each interval is 1.5
        times the one before, up to `max_poll_interval`: with the defaults the polls fall at
        2, 5, 9.5, 16, 26, 42, 64, 94 ... seconds, then every 30 s. Pass
        `max_poll_interval=poll_interval` for a fixed interval. Item-create jobs, which have
        no single-job endpoint, are polled through their list, as `wait_for_jobs` does; the
        others by their GET, with `include` and `fields` if given, else those the job was
        fetched with (the relationships and sparse fields it holds), so the result keeps its
        items. `on_progress` gets the starting state, then each polled state.

        Raises WaitTimeoutError (with `.job`, the last state seen) after `timeout` seconds,
        and NotFoundError if the job is gone. A 429, 5xx or network failure that outlasts the
        client's retries or its per-call `deadline` skips that poll; the wait goes on.
        """
        schedule = Schedule(poll_interval, max_poll_interval, timeout)
        flow = wait_for_job(
            self._core, job, schedule, on_progress=on_progress, include=include, fields=fields
        )
        return self._job(flow)

    def wait_for_jobs(
        self,
        jobs: Iterable[BulkJob],
        *,
        poll_interval: float = 5.0,
        max_poll_interval: float | None = None,
        timeout: float = 3600.0,
        quota_share: float = 0.5,
        on_progress: Callable[[WaitProgress], object] | None = None,
    ) -> JobsR:
        """Wait for many jobs of any kinds at once; yield each as it finishes, exactly once.

        ```python
        for job in kc.wait_for_jobs(jobs, poll_interval=5):
            print(job.id, job.status, job.failed_count)
        ```

        Each job is yielded in the first state that shows it complete or cancelled (jobs
        already done are yielded first). A round every `poll_interval` seconds polls
        item-create and variant-update jobs through their lists (about one request per 100
        running jobs, plus a search of the finished list or a GET for the jobs that left
        it), and the other kinds with one GET each. The wait uses at most `quota_share` of
        each operation's rate limits, so the app's own calls keep the rest, and lengthens the
        interval when a round needs more than that. With `max_poll_interval` the interval
        also grows x1.5 per round up to it.

        A job found in no list at all (a status this client does not know, or one that was
        deleted) stays pending, and is looked for again less and less often; `on_progress`
        counts it in `missing`. `on_progress` gets a `WaitProgress` at the start and after
        each round. Raises WaitTimeoutError, whose `pending` lists the jobs still unfinished,
        once `timeout` seconds have passed, and NotFoundError when a job's GET says it is
        gone. A 429, 5xx or network failure that outlasts the retries or the per-call
        `deadline`, or a cursor that breaks, only costs that round.
        """
        schedule = Schedule(poll_interval, max_poll_interval, timeout, quota_share)
        return self._drain(JobsWait(self._core, jobs, schedule, on_progress=on_progress))
