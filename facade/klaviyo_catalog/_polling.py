"""How a wait polls and what it reports (sans-I/O): what each job is fetched with, when rounds
fall, how fast, and what a failed poll or the end of the wait means.

- `fetch_of`: the include and sparse fields a job is polled with, so that its final state
  keeps what the app fetched it with.
- `Schedule`: the call's intervals, timeout and quota share, checked before any request.
- `Pacer`: a private sliding log holding one wait to `quota_share` of each operation's limits
  (from the spec's `x-klaviyo-ratelimit`, or the client's `rate_limits`), so the app's own
  calls keep the rest; and the interval to the next round, backed off, and lengthened when a
  round's requests would need more than that share at the requested pace.
- `WaitProgress`, what `on_progress` is told; `transient`, which failures only cost a round;
  the errors that end a wait (`timeout_error`, `vanished_error`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs
from klaviyo_catalog_api.catalog_spec import KINDS, RELATIONSHIPS

from . import _checks as checks
from ._flow import Flow, Sleep
from ._models import BulkJob
from ._operations import OPERATIONS, operation
from ._pages import Fields
from ._ratelimit import MemoryRateLimiter, Rate, Ticket
from .errors import (
    BadRequestError,
    DeadlineExceededError,
    InvalidRequestError,
    InvalidResponseError,
    KlaviyoError,
    NotFoundError,
    PaginationError,
    RateLimitError,
    ServerError,
    TransportError,
    WaitTimeoutError,
)

__all__ = [
    "GET_OPERATION",
    "LIST_OPERATION",
    "Fetch",
    "OutOfTime",
    "Pacer",
    "Schedule",
    "WaitProgress",
    "fetch_of",
    "timeout_error",
    "transient",
    "vanished_error",
]

# Each kind's list and single-job operation, from the generated table.
LIST_OPERATION = {name: kind.list_operation for name, kind in KINDS.items() if kind.list_operation}
GET_OPERATION = {name: kind.get_operation for name, kind in KINDS.items() if kind.get_operation}
# The key of a wait's own sliding log (private to each wait, so any name does).
WAIT_ACCOUNT = "wait"


@attrs.frozen
class Fetch:
    """How one job is fetched by its single-job GET: the include and fields it was given."""

    include: tuple[str, ...] = ()
    fields: Mapping[str, tuple[str, ...]] | None = None


def fetch_of(job: BulkJob, include: Iterable[str] | None, fields: Fields) -> Fetch:
    """The include and fields to poll `job` with: the given ones, else those the job holds.

    A job holds the relationships it was fetched with (`job.include`), and its included
    resources and attributes show the sparse fields it was fetched with; a job's own fieldset
    always keeps `errors`, so that a finished job is reported with them.
    """
    name = GET_OPERATION.get(job.kind)
    if name is None:
        if include or fields:
            raise InvalidRequestError(
                f"{job.kind} jobs are polled through their list, which takes no include or fields"
            )
        return Fetch()
    spec = OPERATIONS[name]
    if include is not None or fields is not None:
        # Validated now, so that a mistake is raised before any wait.
        operation(name).build(revision="", job_id=job.id, include=include, fields=fields)
        frozen = None if fields is None else {t: tuple(f) for t, f in fields.items()}
        held = () if include is None else (include,) if isinstance(include, str) else include
        return Fetch(tuple(dict.fromkeys(held)), frozen)
    held_include = tuple(rel for rel in spec.include if rel in job.include)
    inferred: dict[str, tuple[str, ...]] = {}
    for rel in held_include:
        related_type = RELATIONSHIPS.get(rel)
        allowed = spec.fields.get(related_type or "", ())
        seen: dict[str, None] = {}
        for resource in getattr(job, rel) or ():
            attributes = getattr(resource, "attributes", None)
            if isinstance(attributes, Mapping):
                seen.update(dict.fromkeys(a for a in attributes if a in allowed))
        names = tuple(a for a in allowed if a in seen)
        if related_type and names and set(names) != set(allowed) - {"id"}:
            inferred[related_type] = names
    attributes = job.raw.get("attributes") if isinstance(job.raw, Mapping) else None
    job_allowed = spec.fields.get(job.type, ())
    if isinstance(attributes, Mapping) and attributes:
        names = tuple(a for a in job_allowed if a in attributes or a == "errors")
        # The job's id is no sparse field: `attributes.job_id` (before 2023-12-15) is always
        # there, and must not make a job fetched whole look like a sparse one.
        ids = {"id", "job_id"}
        if names and set(names) - ids != set(job_allowed) - ids:
            inferred[job.type] = names
    return Fetch(held_include, inferred or None)


@attrs.frozen
class Schedule:
    """When a wait polls, and for how long; checked when the call is made, before any request.

    The first round comes `poll_interval` seconds in, and each interval is `backoff` (1.5) times
    the one before, up to `max_poll_interval` (None: `poll_interval`, a fixed interval). The wait
    gives up after `timeout` seconds, and uses at most `quota_share` of each rate limit.
    """

    poll_interval: float
    max_poll_interval: float | None
    timeout: float
    quota_share: float = 0.5
    backoff: float = 1.5

    def __attrs_post_init__(self) -> None:
        # What a call is given: InvalidRequestError (see `_checks`).
        checks.seconds(self.poll_interval, "poll_interval", refusal=InvalidRequestError)
        checks.max_poll_interval(self.max_poll_interval, self.poll_interval)
        checks.wait_timeout(self.timeout)
        checks.quota_share(self.quota_share)

    @property
    def ceiling(self) -> float:
        """The longest interval between rounds."""
        return float(
            self.poll_interval if self.max_poll_interval is None else self.max_poll_interval
        )


class OutOfTime(Exception):
    """The wait's deadline falls inside this round: end it with what it found."""


class Pacer:
    """One wait's pace: its share of each operation's limits, and when its next round falls.

    `rates` gives an operation's limits (the client's settings); `deadline` is the wait's end on
    `clock`.
    """

    def __init__(
        self,
        schedule: Schedule,
        rates: Callable[[str], Sequence[Rate]],
        clock: Callable[[], float],
        deadline: float,
    ) -> None:
        self._schedule = schedule
        self._limits = rates
        self._clock = clock
        self._deadline = deadline
        self._log = MemoryRateLimiter(clock=clock)
        self._base_interval = float(schedule.poll_interval)  # backed off round by round
        self.interval = self._base_interval

    def rates(self, name: str) -> list[Rate]:
        """An operation's rate limits cut to this wait's quota share (at least one request per
        window)."""
        share = self._schedule.quota_share
        return [
            Rate(max(1, math.floor(r.count * share)), r.per_seconds) for r in self._limits(name)
        ]

    def pace(self, name: str, used: Counter[str]) -> Flow[None]:
        """Hold this wait to its share of the operation's limits; counts the request in `used`.
        Raises OutOfTime when the wait for room would pass the wait's deadline."""
        rates = self.rates(name)
        while True:
            admitted = self._log.try_acquire(WAIT_ACCOUNT, name, rates)
            if isinstance(admitted, Ticket):
                # Counted from admission: the client's own limiter counts the flight time.
                self._log.complete(admitted)
                used[name] += 1
                return
            wait = admitted.seconds
            if self._clock() + wait > self._deadline:
                raise OutOfTime
            yield Sleep(wait)

    def next_round_at(self, started: float, used: Counter[str]) -> float:
        """When the next round is due after one that started at `started` and made `used`
        requests: the interval backed off, and lengthened if those requests need more than the
        quota share allows."""
        schedule = self._schedule
        self._base_interval = min(self._base_interval * schedule.backoff, schedule.ceiling)
        interval = self._base_interval
        for name, count in used.items():
            for rate in self.rates(name):
                # The pace at which this round's requests stay within the share.
                interval = max(interval, count * rate.per_seconds / rate.count)
        self.interval = interval
        return started + interval


@attrs.frozen
class WaitProgress:
    """Where a `wait_for_jobs` call stands, passed to `on_progress` after each round.

    Job counts: `jobs` tracked in all, `done` of them finished, `running` still pending, of
    which `missing` were in no list the last time they were looked for (see
    `CatalogJobs.wait_for_jobs`). Item counts sum the latest state of every tracked job.
    `elapsed` is seconds since the wait began; `next_poll_in` the seconds until the next round,
    `rounds` the polling rounds so far, and `requests` the requests they made.
    """

    jobs: int
    done: int
    running: int
    missing: int
    total_items: int
    completed_items: int
    failed_items: int
    elapsed: float
    next_poll_in: float
    rounds: int
    requests: int

    @property
    def progress(self) -> float:
        """Processed (completed + failed) items over total items, in 0..1."""
        if self.total_items <= 0:
            return 1.0 if self.running == 0 else 0.0
        return min(1.0, (self.completed_items + self.failed_items) / self.total_items)


def transient(error: KlaviyoError, cursor: str | None) -> bool:
    """Worth another round: an outage that outlasted the retries or the call's deadline (the
    app's own calls may hold the rate limit), or a cursor that broke."""
    if isinstance(
        error,
        RateLimitError | ServerError | TransportError | PaginationError | DeadlineExceededError,
    ):
        return True
    return cursor is not None and isinstance(error, BadRequestError | InvalidResponseError)


def timeout_error(pending: Sequence[BulkJob], timeout: float) -> WaitTimeoutError:
    """The WaitTimeoutError for the jobs still pending, with the first one's progress when it
    is alone."""
    first = pending[0]
    if len(pending) == 1:
        message = (
            f"job {first.id} is still {first.status} after {timeout:g}s "
            f"({first.completed_count + first.failed_count}/{first.total_count} processed)"
        )
    else:
        message = f"{len(pending)} jobs are still running after {timeout:g}s"
    return WaitTimeoutError(message, job=first, pending=pending)


def vanished_error(
    vanished: dict[tuple[str, str], NotFoundError], latest: Mapping[tuple[str, str], BulkJob]
) -> NotFoundError:
    """The NotFoundError of the last job that vanished (its GET answered 404), naming every one
    (`vanished`, their last states seen); `vanished` is emptied, so it is raised once."""
    keys = list(vanished)
    error = vanished[keys[-1]]
    vanished.clear()
    error.vanished = tuple(latest[key] for key in keys)
    error.add_note(
        f"{len(keys)} job(s) vanished during the wait (404): "
        + ", ".join(f"{kind} {job_id}" for kind, job_id in keys[:10])
        + (" ..." if len(keys) > 10 else "")
    )
    return error
