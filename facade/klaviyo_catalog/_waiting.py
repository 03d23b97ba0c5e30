"""Waiting for bulk jobs, one or hundreds, within a share of each operation's quota (sans-I/O).

`JobsWait` is one more flow of the shared core: each `next_round()` sleeps until the round is
due, polls, and returns the jobs it saw finish. Both clients only drive it.

A round costs little, whatever the number of jobs:
- each kind with a list endpoint (all nine, at every revision so far) is polled through it,
  filtered by status: one request per 100 *running* jobs of the account, or a GET per job
  when a kind has fewer jobs than its lists have pages. A tracked job missing from those
  lists is a candidate: it may have finished, but a list is no proof (a cursor may skip it),
  so it is confirmed by a search of the finished lists (`complete`, then `cancelled`) or, when
  that is cheaper or the job carries included resources, by its single-job GET. Only a
  response that shows a job done reports it, and a job a list shows done with failures but
  without their errors is fetched by its GET first, so that it is reported with them.
- a kind without a list endpoint: one GET per job per round.
- a job whose GET answers 404 (deleted meanwhile) is set aside; the others go on, and the
  wait raises NotFoundError naming it (`vanished`) once they are all reported.

Every request passes the wait's `Pacer` (`_polling`), which holds it to `quota_share` of each
operation's limits and sets when the next round falls.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable

from klaviyo_catalog_api.catalog_spec import KINDS
from klaviyo_catalog_api.views import KIND_TYPES

from ._core import Core
from ._flow import Flow, Sleep
from ._models import BulkJob, JobStatus, Page
from ._operations import operation
from ._pages import Fields, PageWalk
from ._polling import (
    GET_OPERATION,
    LIST_OPERATION,
    Fetch,
    OutOfTime,
    Pacer,
    Schedule,
    WaitProgress,
    fetch_of,
    timeout_error,
    transient,
    vanished_error,
)
from ._text import Shown
from .errors import (
    InvalidRequestError,
    KlaviyoError,
    NotFoundError,
)

__all__ = ["JobsWait", "wait_for_job"]

logger = logging.getLogger("klaviyo_catalog")

FINISHED = (JobStatus.COMPLETE.value, JobStatus.CANCELLED.value)
# A job seen in no list is searched for again after this many intervals, doubling each time.
MISSING_RECHECK_CAP = 16
# Jobs per page of a list, as Klaviyo serves them. Not a spec fact: no parameter or schema
# states it (the published descriptions say "100" in prose, and there is no page[size]); it
# only sizes the estimate of how many pages a round will read, never what is read.
PAGE_SIZE = 100


Key = tuple[str, str]  # (kind, id): ids are unique per kind only
Done = dict[Key, BulkJob]  # the jobs a round saw finish


def _key(job: BulkJob) -> Key:
    """A job's key in a wait: (kind, id), since ids are unique per kind only."""
    return (job.kind, job.id)


class JobsWait:
    """The state of one wait for many jobs; see the module docstring and `wait_for_jobs`.

    Drive it with `while not wait.finished: for job in run(wait.next_round()): ...`.
    """

    def __init__(
        self,
        core: Core,
        jobs: Iterable[BulkJob],
        schedule: Schedule,
        *,
        on_progress: Callable[[WaitProgress], object] | None = None,
        include: Iterable[str] | None = None,
        fields: Fields = None,
    ) -> None:
        if isinstance(jobs, BulkJob):
            jobs = [jobs]
        self._core = core
        self._clock = core.settings.clock
        self._started = self._clock()
        self._deadline = self._started + schedule.timeout
        self._schedule = schedule
        self._pacer = Pacer(
            schedule, lambda name: core.settings.rates(operation(name)), self._clock, self._deadline
        )
        self._on_progress = on_progress
        self._latest: dict[Key, BulkJob] = {}  # every tracked job's latest state
        self._pending: dict[Key, BulkJob] = {}
        self._fetch: dict[Key, Fetch] = {}
        self._ready: list[BulkJob] = []  # done, not handed out yet
        self._confirm: set[Key] = set()  # seen done in a list, to be fetched by their GET
        self._vanished: dict[Key, NotFoundError] = {}  # their GET answered 404
        self._missing: dict[Key, int] = {}  # -> how many searches missed it
        self._recheck_at: dict[str, float] = {}  # job type -> when to look for missing ones
        self._search_pages: dict[str, int] = {}  # job type -> pages the last search took
        self._finished_pages: dict[str, int] = {}  # job type -> pages of its complete list
        self._running_pages: dict[str, int] = {}  # job type -> pages of its running lists
        self._finishing: dict[str, bool] = {}  # job type -> jobs left the running lists
        self._next_round_at = self._started + schedule.poll_interval
        self._rounds = 0
        self._requests = 0
        self._announced = False
        for job in jobs:
            if not isinstance(job, BulkJob):
                raise InvalidRequestError(f"wait_for_jobs takes BulkJob objects, not {job!r:.60}")
            if job.kind not in LIST_OPERATION and job.kind not in GET_OPERATION:
                raise InvalidRequestError(f"there is no endpoint to poll {job.kind!r} jobs with")
            key = _key(job)
            if key in self._latest:
                continue  # the same job twice is waited for, and reported, once
            self._fetch[key] = fetch_of(job, include, fields)
            self._latest[key] = job
            if job.is_done:
                self._ready.append(job)
            else:
                self._pending[key] = job

    # --- what the drivers use ---------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once every job has been handed out by `next_round` (and any that vanished
        reported by its NotFoundError)."""
        return not self._pending and not self._ready and not self._vanished

    def latest(self, job: BulkJob) -> BulkJob:
        """The latest state seen of a tracked job."""
        return self._latest.get(_key(job), job)

    def progress(self) -> WaitProgress:
        """The aggregate `on_progress` receives."""
        states = self._latest.values()
        return WaitProgress(
            jobs=len(self._latest),
            done=len(self._latest) - len(self._pending),
            running=len(self._pending),
            missing=len(self._missing),
            total_items=sum(max(0, j.total_count) for j in states),
            completed_items=sum(max(0, j.completed_count) for j in states),
            failed_items=sum(max(0, j.failed_count) for j in states),
            elapsed=max(0.0, self._clock() - self._started),
            next_poll_in=max(0.0, self._next_round_at - self._clock()) if self._pending else 0.0,
            rounds=self._rounds,
            requests=self._requests,
        )

    def next_round(self) -> Flow[list[BulkJob]]:
        """Hand out the jobs known done; else sleep until the next round is due and poll.

        Returns the jobs seen finishing, each once, in their final state (possibly none).
        Raises WaitTimeoutError, with the pending jobs, once the timeout has passed.
        """
        if not self._announced:
            self._announced = True
            self._report()
        if self._ready:
            ready, self._ready = self._ready, []
            return ready
        if not self._pending:
            if self._vanished:
                raise vanished_error(self._vanished, self._latest)
            return []
        now = self._clock()
        if now >= self._deadline:
            raise timeout_error(tuple(self._pending.values()), self._schedule.timeout)
        wait = self._next_round_at - now
        if wait > 0:
            yield Sleep(min(wait, self._deadline - now))
        started = self._clock()
        used: Counter[str] = Counter()
        done: Done = {}
        try:
            for kind in sorted({key[0] for key in self._pending}):
                if kind in LIST_OPERATION:
                    yield from self._poll_listed(kind, done, used)
                else:
                    yield from self._poll_each(kind, done, used)
            for key in sorted(self._confirm):
                if key in self._pending and key not in done:
                    yield from self._get(GET_OPERATION[key[0]], key, done, used)
        except OutOfTime:
            pass  # what was found is kept; the next call raises WaitTimeoutError
        self._confirm.clear()
        for key, job in done.items():
            self._latest[key] = job
            self._pending.pop(key, None)
            self._missing.pop(key, None)
        self._rounds += 1
        self._requests += sum(used.values())
        self._next_round_at = self._pacer.next_round_at(started, used)
        self._report()
        return list(done.values())

    # --- one round ----------------------------------------------------------------------------

    def _poll_listed(self, kind: str, done: Done, used: Counter[str]) -> Flow[None]:
        """One of three ways, whichever costs fewest requests by the last round's counts:
        a GET per job (a few jobs), the finished lists only (while jobs keep finishing and the
        running list is the longer walk), or the running lists and a search for the jobs that
        left them (which also updates the running jobs' counts)."""
        list_name = LIST_OPERATION[kind]
        tracked = {k for k in self._pending if k[0] == kind}
        running_pages = self._running_pages.get(kind, 1)
        get_name = GET_OPERATION.get(kind)
        if get_name is not None and len(tracked) <= running_pages:
            for key in sorted(tracked):
                yield from self._get(get_name, key, done, used)
            return
        # The finished lists alone cost their whole length and the cancelled list; the other
        # way, the running lists and (while jobs leave them) a search that stops when it has
        # found them.
        whole = self._finished_pages.get(kind)
        searched = self._search_pages.get(kind, 1) if self._finishing.get(kind) else 0
        if whole is not None and whole + 1 < running_pages + searched:
            before = len(done)
            yield from self._search(kind, sorted(tracked), done, used, deep=False)
            self._finishing[kind] = len(done) > before
            left = sum(1 for k in tracked if k not in done)
            self._running_pages[kind] = max(1, math.ceil(left / PAGE_SIZE))
            return
        seen: set[Key] = set()
        pages = 0

        def note(page: Page[BulkJob]) -> bool:
            nonlocal pages
            pages += 1
            for job in page:
                key = _key(job)
                if key in tracked:
                    seen.add(key)
                    self._update(key, job, done, listed=True)
            return False

        # Queued first: a job moving from queued to processing meanwhile is then in the
        # second list. No tracked job queued (or of an unknown status): no queued walk.
        statuses = [JobStatus.PROCESSING.value]
        if any(self._pending[k].status != JobStatus.PROCESSING for k in tracked):
            statuses.insert(0, JobStatus.QUEUED.value)
        complete = True
        slim = {KIND_TYPES[kind]: ["status"]}  # the counts come with it; errors do not
        for status in statuses:
            complete = (yield from self._walk(list_name, status, note, used, slim)) and complete
        for key in seen:
            self._missing.pop(key, None)
        if not complete:
            return  # a broken walk proves nothing about the jobs it did not reach
        self._running_pages[kind] = max(1, pages)
        candidates = [k for k in tracked if k not in seen and k in self._pending]
        self._finishing[kind] = any(k not in self._missing for k in candidates)
        recheck = self._clock() >= self._recheck_at.get(kind, -math.inf)
        fresh = [k for k in candidates if k not in self._missing]
        if not fresh and not recheck:
            return
        get_name = GET_OPERATION.get(kind)
        # A job with included resources is confirmed by its GET (a list would lose them); the
        # others by a search of the finished lists when that costs fewer requests, and by
        # their GETs when it did not find them (or, with no GET, an unfiltered search).
        by_get = [k for k in candidates if self._fetch[k].include] if get_name else []
        rest = [k for k in candidates if k not in by_get]
        if get_name is not None and len(rest) <= self._search_pages.get(kind, 1):
            by_get, rest = by_get + rest, []
        if rest:
            yield from self._search(kind, rest, done, used, deep=get_name is None)
            if get_name is not None:
                by_get += [k for k in rest if self._unconfirmed(k, done)]
        for key in by_get:
            yield from self._get(str(get_name), key, done, used)
        missed = [k for k in candidates if self._unconfirmed(k, done)]
        for key in missed:
            self._missing[key] = self._missing.get(key, 0) + 1
        if missed:
            # In no list, and not done: a status this client does not know. Look again, less
            # and less often, so that one such job does not cost requests every round.
            times = min(MISSING_RECHECK_CAP, 2 ** min(self._missing[k] for k in missed))
            self._recheck_at[kind] = self._clock() + times * self._pacer.interval
        else:
            self._recheck_at.pop(kind, None)

    def _unconfirmed(self, key: Key, done: Done) -> bool:
        """Still pending after this round's look, and not about to be confirmed by its GET."""
        return key in self._pending and key not in done and key not in self._confirm

    def _search(
        self, kind: str, keys: list[Key], done: Done, used: Counter[str], deep: bool = True
    ) -> Flow[None]:
        """Look for `keys` in the finished lists; the jobs found there are done. `deep`: look
        through every status for the ones searched for before and never found."""
        wanted = set(keys)
        pages = 0
        ended = False

        def note(page: Page[BulkJob]) -> bool:
            nonlocal pages, ended
            pages += 1
            ended = not page.has_next
            for job in page:
                key = _key(job)
                if key in wanted:
                    wanted.discard(key)
                    self._update(key, job, done, listed=True)
            return not wanted  # stop as soon as every one is found

        for status in FINISHED:
            pages, ended = 0, False
            yield from self._walk(LIST_OPERATION[kind], status, note, used, None)
            if status == JobStatus.COMPLETE:
                self._search_pages[kind] = max(1, pages)
                if ended:  # read to its last page: the list's length, in pages
                    self._finished_pages[kind] = pages
            if not wanted:
                break
        if deep and wanted and any(self._missing.get(k) for k in wanted):
            # Searched before and missed: look through every status once, in case it carries
            # one this client does not know.
            yield from self._walk(LIST_OPERATION[kind], None, note, used, None)

    def _poll_each(self, kind: str, done: Done, used: Counter[str]) -> Flow[None]:
        """GET every pending job of a kind that has no list endpoint."""
        name = GET_OPERATION[kind]
        for key in [k for k in self._pending if k[0] == kind]:
            yield from self._get(name, key, done, used)

    def _get(self, name: str, key: Key, done: Done, used: Counter[str]) -> Flow[None]:
        """Poll one job by its GET; a transient failure skips it this round, a 404 sets it
        aside (reported once the others are done)."""
        yield from self._pacer.pace(name, used)
        fetch = self._fetch[key]
        try:
            job = yield from self._core.get_job(name, key[1], fetch.include, fetch.fields)
        except NotFoundError as exc:
            # Deleted meanwhile: no wait brings it back, and it must not cost the others.
            logger.warning("job %s vanished (404); waiting for the others", Shown(key[1]))
            self._vanished[key] = exc
            self._pending.pop(key, None)
            self._missing.pop(key, None)
            return
        except KlaviyoError as exc:
            if not transient(exc, None):
                raise
            logger.warning("job %s not polled this round: %s", Shown(key[1]), Shown(exc))
            return
        self._update(key, job, done)

    def _walk(
        self,
        name: str,
        status: str | None,
        on_page: Callable[[Page[BulkJob]], bool],
        used: Counter[str],
        fields: Fields,
    ) -> Flow[bool]:
        """Walk a list until its end or until `on_page` says stop: True. A transient failure
        or a broken cursor ends it early: False."""
        walk = PageWalk(None)
        while True:
            cursor = walk.cursor
            try:
                if not walk.proceed():  # raises PaginationError past an unusable next link
                    return True
                yield from self._pacer.pace(name, used)
                page = yield from self._core.list_page(
                    name, status=status, cursor=cursor, fields=fields
                )
            except KlaviyoError as exc:
                if not transient(exc, cursor):
                    raise
                logger.warning("%s (status %s) broke off this round: %s", name, status, Shown(exc))
                return False
            walk.advance(page)
            if on_page(page):
                return True

    def _update(self, key: Key, job: BulkJob, done: Done, *, listed: bool = False) -> None:
        """Record a job's latest state; one seen done joins `done`, once. One a list showed
        done is confirmed by its GET first where the list cannot have carried everything: its
        included resources, or errors it failed with (a list may leave them out)."""
        if key not in self._pending or key in done:
            return  # reported once, in the first state that showed it done
        self._latest[key] = job
        lacking = self._fetch[key].include or (job.failed_count > 0 and not job.errors)
        if job.is_done and listed and lacking and key[0] in GET_OPERATION:
            self._confirm.add(key)
        elif job.is_done:
            done[key] = job
        else:
            self._pending[key] = job

    def _report(self) -> None:
        """Tell `on_progress` where the wait stands."""
        if self._on_progress is not None:
            self._on_progress(self.progress())


def wait_for_job(
    core: Core,
    job: BulkJob | str,
    schedule: Schedule,
    *,
    kind: str | None = None,
    on_progress: Callable[[BulkJob], object] | None,
    include: Iterable[str] | None,
    fields: Fields,
) -> Flow[BulkJob]:
    """One job, through the same machinery as many; `on_progress` gets each state of it. A job
    given by id (with its kind) is fetched first, at once."""
    if isinstance(job, str):
        name = GET_OPERATION.get(str(kind))
        if name is None:
            raise InvalidRequestError(
                f"wait_for_job({job!r:.60}) needs the job's kind=, one of: {', '.join(KINDS)}"
            )
        job = yield from core.get_job(name, job, include, fields)
    elif not isinstance(job, BulkJob):
        raise InvalidRequestError(
            f"wait_for_job takes a BulkJob, or a job id with kind=, not {job!r:.60}"
        )
    elif kind is not None and kind != job.kind:
        raise InvalidRequestError(f"kind={kind!r:.40} given for a {job.kind} job")
    wait = JobsWait(core, [job], schedule, include=include, fields=fields)
    if on_progress is not None:
        on_progress(job)  # the starting state too, so that a display starts at once
    if job.is_done:
        return job
    while True:
        done = yield from wait.next_round()  # each call polls once: the job was not done
        latest = done[0] if done else wait.latest(job)
        if on_progress is not None:
            on_progress(latest)
        if done:
            return latest
