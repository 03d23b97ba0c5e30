"""The public calls, written once for both clients.

The 27 calls of the spec's operations (`get_*`, `list_*`, `iter_*`) are generated from the
curated spec (`klaviyo_catalog_api.methods.JobMethods`): each hands its operation to a hook
here, which starts a flow of the shared core and gives it to the client's driver. The waits
are written here. `CatalogJobs` runs each flow and returns the result, `AsyncCatalogJobs`
returns a coroutine (or an async iterator) that does; the three type parameters say which, so
each method and its docstring exist once and the two clients cannot drift apart.
"""

import types
import typing
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from klaviyo_catalog_api.methods import (
    Fields,
    IncludeName,
    JobMethods,
    JobR,
    JobsR,
    KindName,
    ListOptions,
    PageR,
    StatusName,
    WalkOptions,
)

from ._core import Core
from ._flow import Flow
from ._models import BulkJob, Page
from ._pages import PageWalk
from ._polling import Schedule, WaitProgress
from ._waiting import JobsWait, wait_for_job
from .errors import InvalidRequestError

__all__ = ["IncludeName", "KindName", "ListOptions", "Methods", "StatusName", "WalkOptions"]

# The generated methods' own type parameters (JobR: what a call returning one job gives, a
# BulkJob or a coroutine of one; PageR: the same for a Page; JobsR: an iterator of jobs, or an
# async iterator), so that one binding per client names the concrete types in all of them.


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


class Methods(JobMethods[JobR, PageR, JobsR]):
    """The calls of `CatalogJobs` and `AsyncCatalogJobs`; each client says how to run them.

    Annotations are evaluated (no `from __future__ import annotations`), and each client gets
    its own copy of every public method with the type parameters replaced by its concrete
    types (`__init_subclass__`), so that `help()` and `inspect.signature` show `BulkJob`,
    `Page[BulkJob]` or `Iterator[BulkJob]` rather than `~JobR`.
    """

    _core: Core

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            if typing.get_origin(base) is not Methods:
                continue
            parameters = getattr(Methods, "__parameters__", ())
            concrete = dict(zip(parameters, typing.get_args(base), strict=True))
            # A copy of every public method, whose annotations name `concrete`'s types instead
            # of the type parameters (for `help()`; type checkers see them through the base).
            for name in dir(Methods):
                function = getattr(Methods, name)
                if name.startswith("_") or not isinstance(function, types.FunctionType):
                    continue
                copy = types.FunctionType(
                    function.__code__,
                    function.__globals__,
                    name,
                    function.__defaults__,
                    function.__closure__,
                )
                copy.__kwdefaults__ = function.__kwdefaults__  # the docstring comes with the code
                copy.__module__ = cls.__module__
                copy.__qualname__ = f"{cls.__qualname__}.{name}"
                copy.__annotations__ = {
                    key: concrete.get(value, value)
                    for key, value in function.__annotations__.items()
                }
                setattr(cls, name, copy)

    # What each client implements: how to run a flow that ends in one job or one page (the
    # sync client runs it and returns the result, the async one returns a coroutine that
    # does), and how to drive a walk page by page or a wait round by round (an iterator of
    # the jobs, or an async iterator).
    _run_to_job: Callable[[Flow[BulkJob]], JobR]
    _run_to_page: Callable[[Flow[Page[BulkJob]]], PageR]
    _drive_walk: Callable[[PageWalk], JobsR]
    _drive_wait: Callable[[JobsWait], JobsR]

    # --- the hooks of the generated calls ---

    def _get(
        self, operation: str, job_id: str, include: Iterable[str] | None, fields: Fields | None
    ) -> JobR:
        return self._run_to_job(self._core.get_job(operation, job_id, include, fields))

    def _list(
        self, operation: str, status: str | None, cursor: str | None, fields: Fields | None
    ) -> PageR:
        flow = self._core.list_page(operation, status=status, cursor=cursor, fields=fields)
        return self._run_to_page(flow)

    def _iter(
        self,
        operation: str,
        status: str | None,
        cursor: str | None,
        fields: Fields | None,
        max_pages: int | None,
        start_cursor: str | None,
    ) -> JobsR:
        # The walk's arguments are checked now, not at the first page.
        walk = self._core.walk(
            operation,
            status=status,
            cursor=_cursor(cursor, start_cursor),
            fields=fields,
            max_pages=max_pages,
        )
        return self._drive_walk(walk)

    # --- polling ---

    def wait_for_job(
        self,
        job: BulkJob | str,
        *,
        kind: KindName | None = None,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        timeout: float = 600.0,
        on_progress: Callable[[BulkJob], object] | None = None,
        include: Iterable[IncludeName] | None = None,
        fields: Fields | None = None,
    ) -> JobR:
        """Poll one job until it is complete or cancelled, and return its final state.

        `job` is a `BulkJob`, or the id of one with its `kind` (e.g. `"item-create"`): then
        the first poll comes at once. After that each poll comes `poll_interval` seconds after
        the one before, and each interval is 1.5 times the one before, up to
        `max_poll_interval`: with the defaults the polls fall at 2, 5, 9.5, 16, 26, 42, 64,
        94 ... seconds, then every 30 s. Pass `max_poll_interval=poll_interval` for a fixed
        interval. The job is polled by its GET, with `include` and `fields` if given, else
        those the job was fetched with, so the result keeps its items. `on_progress` gets the
        starting state, then each polled state.

        Raises WaitTimeoutError (with `.job`, the last state seen) after `timeout` seconds,
        and NotFoundError if the job is gone. A 429, 5xx or network failure that outlasts the
        client's retries or its per-call `deadline` skips that poll; the wait goes on.
        """
        schedule = Schedule(poll_interval, max_poll_interval, timeout)
        flow = wait_for_job(
            self._core,
            job,
            schedule,
            kind=kind,
            on_progress=on_progress,
            include=include,
            fields=fields,
        )
        return self._run_to_job(flow)

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
            print(job.id, job.status, job.failed_count, len(job.errors))
        ```

        Each job is yielded in the first state that shows it complete or cancelled (jobs
        already done are yielded first), with its `errors`: a finished job with failures that
        a list showed without them is fetched by its GET first. A round every
        `poll_interval` seconds polls each kind through its list (about one request per 100
        running jobs, plus a search of the finished list or a GET for the jobs that left it),
        or, for a few jobs, by their GETs. The wait uses at most `quota_share` of each
        operation's rate limits, so the app's own calls keep the rest, and lengthens the
        interval when a round needs more than that. With `max_poll_interval` the interval
        also grows x1.5 per round up to it.

        A job found in no list at all (a status this client does not know) stays pending,
        and is looked for again less and less often; `on_progress` counts it in `missing`.
        A job whose GET answers 404 (deleted meanwhile) stops being polled; the others are
        still yielded as they finish, and once they are all done the wait raises
        NotFoundError whose `vanished` lists every such job (in its last state seen).
        `on_progress` gets a `WaitProgress` at the start and after each round. Raises
        WaitTimeoutError, whose `pending` lists the jobs still unfinished, once `timeout`
        seconds have passed. A 429, 5xx or network failure that outlasts the retries or the
        per-call `deadline`, or a cursor that breaks, only costs that round.
        """
        schedule = Schedule(poll_interval, max_poll_interval, timeout, quota_share)
        return self._drive_wait(JobsWait(self._core, jobs, schedule, on_progress=on_progress))
