"""How a wait polls and what it reports (sans-I/O): what each job is fetched with, when rounds
fall, and what a failed poll or the end of the wait means.

- `fetch_of`: the include and sparse fields a job is polled with, so that its final state
  keeps what the app fetched it with.
- `Schedule`: the call's intervals, timeout and quota share, checked before any request.
- `WaitProgress`, what `on_progress` is told; `transient`, which failures only cost a round;
  the errors that end a wait (`timeout_error`, `vanished_error`).

The wait's pace (its share of each operation's limits, the interval to the next round) is kept
by the wait itself (`_waiting.JobsWait`), which holds the clock and the deadline it needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs
from klaviyo_catalog_api.catalog_spec import RELATIONSHIPS
from klaviyo_catalog_api.methods import KIND_OPERATIONS

from . import _checks as checks
from ._models import BulkJob
from ._operations import OPERATIONS, operation
from ._pages import Fields, materialised
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


@attrs.frozen
class Fetch:
    """How one job is fetched by its single-job GET: the include and fields it was given."""

    include: tuple[str, ...] = ()
    fields: Fields = None


def fetch_of(job: BulkJob, include: Iterable[str] | None, fields: Fields) -> Fetch:
    """The include and fields to poll `job` with: the given ones, else those the job holds.

    A job holds the relationships it was fetched with (`job.include`), and its included
    resources and attributes show the sparse fields it was fetched with; a job's own fieldset
    always keeps `errors`, so that a finished job is reported with them.
    """
    name = KIND_OPERATIONS[job.kind][0]
    if include is not None or fields is not None:
        # Validated now, so that a mistake is raised before any wait; an iterator is read once.
        fields = materialised(fields)
        _, included = operation(name).build(
            revision="", job_id=job.id, include=include, fields=fields
        )
        return Fetch(included, fields)
    spec = OPERATIONS[name]
    held_include = tuple(rel for rel in spec.include if rel in job.include)
    inferred: dict[str, tuple[str, ...]] = {}
    for rel in held_include:
        related_type = RELATIONSHIPS[rel]
        allowed = spec.fields.get(related_type, ())
        # The attributes of its included resources (a ResourceRef has none).
        seen = {a for r in getattr(job, rel) or () for a in getattr(r, "attributes", None) or ()}
        names = tuple(a for a in allowed if a in seen)
        if names and set(names) != set(allowed) - {"id"}:
            inferred[related_type] = names
    attributes = job.raw.get("attributes")
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

    The first round comes `poll_interval` seconds in, and each interval is 1.5 times the one
    before, up to `max_poll_interval` (None: `poll_interval`, a fixed interval). The wait gives
    up after `timeout` seconds, and uses at most `quota_share` of each rate limit.
    """

    poll_interval: float
    max_poll_interval: float | None
    timeout: float
    quota_share: float = 0.5

    def __attrs_post_init__(self) -> None:
        # What a call is given: InvalidRequestError (see `_checks`).
        checks.seconds(self.poll_interval, "poll_interval", refusal=InvalidRequestError)
        checks.max_poll_interval(self.max_poll_interval, self.poll_interval)
        checks.wait_timeout(self.timeout)
        checks.quota_share(self.quota_share)


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
