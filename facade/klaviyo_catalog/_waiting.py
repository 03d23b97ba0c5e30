"""Waiting for bulk jobs, one or hundreds, within a share of each operation's quota (sans-I/O).

`JobsWait` is one more flow of the shared core: each `next_round()` sleeps until the round is
due, polls, and returns the jobs it saw finish. Both clients only drive it.

A round costs little, whatever the number of jobs. Each kind (its single-job GET and its list:
all nine kinds have both, at every revision so far) is polled through its list, filtered by
status: one request per 100 *running* jobs of the account, or a GET per job when a kind has
fewer jobs than its lists have pages. A tracked job missing from those lists is a candidate:
it may have finished, but a list is no proof (a cursor may skip it), so it is confirmed by a
search of the finished lists (`complete`, then `cancelled`) or, when that is cheaper or the
job carries included resources, by its single-job GET. Only a response that shows a job done
reports it, and a job a list shows done with failures but without their errors is fetched by
its GET first, so that it is reported with them. A job whose GET answers 404 (deleted
meanwhile) is set aside; the others go on, and the wait raises NotFoundError naming it
(`vanished`) once they are all reported.

Every request passes the wait's own sliding log, which holds it to `quota_share` of each
operation's limits (the app's own calls keep the rest); the interval to the next round is
backed off, and lengthened when a round's requests would need more than that share.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable

import attrs
from klaviyo_catalog_api.catalog_spec import KINDS
from klaviyo_catalog_api.methods import KIND_OPERATIONS
from klaviyo_catalog_api.views import KIND_TYPES

from ._core import Core
from ._flow import Flow, Sleep
from ._models import BulkJob, JobStatus
from ._operations import operation
from ._pages import Fields, PageWalk
from ._polling import (
    Fetch,
    Schedule,
    WaitProgress,
    fetch_of,
    timeout_error,
    transient,
    vanished_error,
)
from ._ratelimit import MemoryRateLimiter, Rate, Ticket
from ._text import Shown
from .errors import (
    InvalidRequestError,
    KlaviyoError,
    NotFoundError,
)

logger = logging.getLogger("klaviyo_catalog")

FINISHED = (JobStatus.COMPLETE.value, JobStatus.CANCELLED.value)
# A job seen in no list is searched for again after this many intervals, doubling each time.
MISSING_RECHECK_CAP = 16
# Jobs per page of a list, as Klaviyo serves them. Not a spec fact: no parameter or schema
# states it (the published descriptions say "100" in prose, and there is no page[size]); it
# only sizes the estimate of how many pages a round will read, never what is read.
PAGE_SIZE = 100
# Each interval between rounds is this many times the one before, up to max_poll_interval.
BACKOFF = 1.5
# The key of a wait's own sliding log (private to each wait, so any name does).
WAIT_ACCOUNT = "wait"


Key = tuple[str, str]  # (kind, id): ids are unique per kind only
Done = dict[Key, BulkJob]  # the jobs a round saw finish


def _key(job: BulkJob) -> Key:
    """A job's key in a wait: (kind, id), since ids are unique per kind only."""
    return (job.kind, job.id)


class OutOfTime(Exception):
    """The wait's deadline falls inside this round: end it with what it found."""


@attrs.define
class KindLists:
    """What the last rounds learnt of one kind's lists, to poll it the cheapest way."""

    running_pages: int = 1  # pages of its running lists
    search_pages: int = 1  # pages the last search of its complete list took
    finished_pages: int | None = None  # pages of its whole complete list, once read to its end
    finishing: bool = False  # jobs left the running lists in the last round
    recheck_at: float = -math.inf  # when to look again for the jobs in no list


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
        self._on_progress = on_progress
        self._log = MemoryRateLimiter(clock=self._clock)  # this wait's share of the limits
        self._base_interval = self._interval = float(schedule.poll_interval)
        self._latest: dict[Key, BulkJob] = {}  # every tracked job's latest state
        self._pending: dict[Key, None] = {}  # in the order given
        self._fetch: dict[Key, Fetch] = {}
        self._ready: list[BulkJob] = []  # done, not handed out yet
        self._confirm: set[Key] = set()  # seen done in a list, to be fetched by their GET
        self._vanished: dict[Key, NotFoundError] = {}  # their GET answered 404
        self._missing: dict[Key, int] = {}  # -> how many searches missed it
        self._lists: dict[str, KindLists] = {kind: KindLists() for kind in KINDS}
        self._done: Done = {}  # this round's: the jobs it saw finish
        self._used: Counter[str] = Counter()  # this round's: requests by operation
        self._next_round_at = self._started + schedule.poll_interval
        self._rounds = 0
        self._requests = 0
        self._announced = False
        for job in jobs:
            if not isinstance(job, BulkJob):
                raise InvalidRequestError(f"wait_for_jobs takes BulkJob objects, not {job!r:.60}")
            if job.kind not in KIND_OPERATIONS:
                raise InvalidRequestError(f"no GET and list to poll {job.kind!r} jobs with")
            key = _key(job)
            if key in self._latest:
                continue  # the same job twice is waited for, and reported, once
            self._fetch[key] = fetch_of(job, include, fields)
            self._latest[key] = job
            if job.is_done:
                self._ready.append(job)
            else:
                self._pending[key] = None

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
            pending = tuple(self._latest[key] for key in self._pending)
            raise timeout_error(pending, self._schedule.timeout)
        wait = self._next_round_at - now
        if wait > 0:
            yield Sleep(min(wait, self._deadline - now))
        started = self._clock()
        self._done, self._used = {}, Counter()
        try:
            for kind in sorted({key[0] for key in self._pending}):
                yield from self._poll_kind(kind)
            for key in sorted(self._confirm):
                if key in self._pending and key not in self._done:
                    yield from self._get(key)
        except OutOfTime:
            pass  # what was found is kept; the next call raises WaitTimeoutError
        self._confirm.clear()
        for key in self._done:
            self._pending.pop(key, None)
            self._missing.pop(key, None)
        self._rounds += 1
        self._requests += sum(self._used.values())
        # The interval backed off, and lengthened to the pace at which this round's requests
        # stay within the quota share.
        schedule = self._schedule
        ceiling = schedule.max_poll_interval or schedule.poll_interval
        self._base_interval = min(self._base_interval * BACKOFF, ceiling)
        self._interval = self._base_interval
        for name, count in self._used.items():
            for rate in self._rates(name):
                self._interval = max(self._interval, count * rate.per_seconds / rate.count)
        self._next_round_at = started + self._interval
        self._report()
        return list(self._done.values())

    # --- one round ----------------------------------------------------------------------------

    def _poll_kind(self, kind: str) -> Flow[None]:
        """One of three ways, whichever costs fewest requests by the last round's counts:
        a GET per job (a few jobs), the finished lists only (while jobs keep finishing and the
        running list is the longer walk), or the running lists and a search for the jobs that
        left them (which also updates the running jobs' counts)."""
        lists, done = self._lists[kind], self._done
        tracked = {k for k in self._pending if k[0] == kind}
        if len(tracked) <= lists.running_pages:
            for key in sorted(tracked):
                yield from self._get(key)
            return
        # The finished lists alone cost their whole length and the cancelled list; the other
        # way, the running lists and (while jobs leave them) a search that stops when it has
        # found them.
        searched = lists.search_pages if lists.finishing else 0
        whole = lists.finished_pages
        if whole is not None and whole + 1 < lists.running_pages + searched:
            before = len(done)
            yield from self._search(kind, tracked)
            lists.finishing = len(done) > before
            left = sum(1 for k in tracked if k not in done)
            lists.running_pages = max(1, math.ceil(left / PAGE_SIZE))
            return
        # Queued first: a job moving from queued to processing meanwhile is then in the
        # second list. No tracked job queued (or of an unknown status): no queued walk.
        statuses = [JobStatus.PROCESSING.value]
        if any(self._latest[k].status != JobStatus.PROCESSING for k in tracked):
            statuses.insert(0, JobStatus.QUEUED.value)
        seen: set[Key] = set()
        pages = 0
        complete = True
        for status in statuses:
            walked, ended = yield from self._walk(kind, status, tracked, seen)
            pages += walked
            complete = complete and ended
        for key in seen:
            self._missing.pop(key, None)
        if not complete:
            return  # a broken walk proves nothing about the jobs it did not reach
        lists.running_pages = max(1, pages)
        candidates = [k for k in tracked if k not in seen and k in self._pending]
        lists.finishing = any(k not in self._missing for k in candidates)
        if not lists.finishing and self._clock() < lists.recheck_at:
            return  # only jobs missed before, and not yet time to look for them again
        # A job with included resources is confirmed by its GET (a list would lose them); the
        # others by a search of the finished lists when that costs fewer requests, and by
        # their GETs when it did not find them.
        rest = {k for k in candidates if not self._fetch[k].include}
        if len(rest) > lists.search_pages:
            yield from self._search(kind, rest)
        for key in candidates:
            if self._unconfirmed(key):
                yield from self._get(key)
        missed = [k for k in candidates if self._unconfirmed(k)]
        for key in missed:
            self._missing[key] = self._missing.get(key, 0) + 1
        # In no list, and not done: a status this client does not know. Look again, less and
        # less often, so that one such job does not cost requests every round.
        times = min([MISSING_RECHECK_CAP] + [2 ** self._missing[k] for k in missed])
        lists.recheck_at = self._clock() + times * self._interval if missed else -math.inf

    def _unconfirmed(self, key: Key) -> bool:
        """Still pending after this round's look, and not about to be confirmed by its GET."""
        return key in self._pending and key not in self._done and key not in self._confirm

    def _search(self, kind: str, keys: set[Key]) -> Flow[None]:
        """Look for `keys` in the finished lists, complete then cancelled, each until all are
        found; the jobs found there are done."""
        found: set[Key] = set()
        for status in FINISHED:
            pages, ended = yield from self._walk(kind, status, keys, found, search=True)
            if status == JobStatus.COMPLETE:
                self._lists[kind].search_pages = max(1, pages)
                if ended:  # read to its last page: the list's length, in pages
                    self._lists[kind].finished_pages = pages
            if found >= keys:
                break

    def _get(self, key: Key) -> Flow[None]:
        """Poll one job by its GET; a transient failure skips it this round, a 404 sets it
        aside (reported once the others are done)."""
        name = KIND_OPERATIONS[key[0]][0]
        yield from self._pace(name)
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
        self._update(key, job)

    def _walk(
        self, kind: str, status: str, wanted: set[Key], seen: set[Key], search: bool = False
    ) -> Flow[tuple[int, bool]]:
        """Walk a kind's list of jobs in `status`, recording each job of `wanted` it shows (and
        adding it to `seen`), to its end; a `search` of a finished list, until all are seen.
        Returns the pages read, and whether the walk reached the list's end. A transient
        failure or a broken cursor ends it early."""
        name = KIND_OPERATIONS[kind][1]
        # A running list's jobs with their status and counts only (errors do not come with it).
        fields = None if search else {KIND_TYPES[kind]: ["status"]}
        walk = PageWalk(None, name, status, fields)
        while not (search and seen >= wanted):
            try:
                if not walk.proceed():  # raises PaginationError past an unusable next link
                    break
                yield from self._pace(name)
                page = yield from self._core.next_page(walk)
            except KlaviyoError as exc:
                if not transient(exc, walk.cursor):  # the cursor of the page that failed
                    raise
                logger.warning("%s (status %s) broke off this round: %s", name, status, Shown(exc))
                break
            for job in page:
                if (key := _key(job)) in wanted:
                    seen.add(key)
                    self._update(key, job, listed=True)
        return walk.pages, walk.done

    def _rates(self, name: str) -> list[Rate]:
        """An operation's rate limits cut to this wait's quota share (at least one request per
        window): the spec's `x-klaviyo-ratelimit`, or the client's `rate_limits`."""
        share = self._schedule.quota_share
        limits = self._core.settings.rates(operation(name))
        return [Rate(max(1, math.floor(r.count * share)), r.per_seconds) for r in limits]

    def _pace(self, name: str) -> Flow[None]:
        """Hold this wait to its share of the operation's limits, so that the app's own calls
        keep the rest; counts the request in the round's. Raises OutOfTime when the wait for room
        would pass the wait's deadline."""
        rates = self._rates(name)
        while True:
            admitted = self._log.try_acquire(WAIT_ACCOUNT, name, rates)
            if isinstance(admitted, Ticket):
                # Counted from admission: the client's own limiter counts the flight time.
                self._log.complete(admitted)
                self._used[name] += 1
                return
            if self._clock() + admitted.seconds > self._deadline:
                raise OutOfTime
            yield Sleep(admitted.seconds)

    def _update(self, key: Key, job: BulkJob, *, listed: bool = False) -> None:
        """Record a job's latest state; one seen done joins the round's done jobs, once. One a
        list showed done is confirmed by its GET first where the list cannot have carried
        everything: its included resources, or errors it failed with (a list may leave them
        out)."""
        if key not in self._pending or key in self._done:
            return  # reported once, in the first state that showed it done
        self._latest[key] = job
        lacking = self._fetch[key].include or (job.failed_count > 0 and not job.errors)
        if job.is_done and listed and lacking:
            self._confirm.add(key)
        elif job.is_done:
            self._done[key] = job

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
        operations = KIND_OPERATIONS.get(str(kind))
        if operations is None:
            raise InvalidRequestError(
                f"wait_for_job({job!r:.60}) needs the job's kind=, one of: {', '.join(KINDS)}"
            )
        job = yield from core.get_job(operations[0], job, include, fields)
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
