"""FakeKlaviyo: a stateful stand-in for the catalog bulk-job GETs of a curated spec, served over
HTTP. This module holds what a test controls (jobs, faults, limits, credentials); how it answers
one request is `_serving`.
"""

from __future__ import annotations

import copy
import math
import random
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Self, TypedDict, Unpack
from urllib.parse import quote

from ._faults import Fault
from ._http import HttpServer
from ._jobs import Job, new_job, timestamp
from ._model import Shape, SpecSource, default_shape, load_spec, valid_revision
from ._pages import Pager
from ._ratelimit import DEFAULT_RATE_LIMITS, Limits, Quotas
from ._serving import RandomFaults, RequestRecord, Serving

DEFAULT_API_KEY = "pk_fake_0123456789abcdef0123456789ab"
PAGE_SIZE = 100
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class JobOptions(TypedDict, total=False):
    """Keyword arguments of `FakeKlaviyo.add_job` shared with `add_jobs`."""

    status: str
    total: int | None
    items: Sequence[Mapping[str, Any]] | int | None
    failed: int
    polls_to_complete: int | None
    errors: Sequence[Mapping[str, Any]] | None
    created_at: str | datetime | None
    completed_at: str | datetime | None
    expires_at: str | datetime | None


class FakeKlaviyo(Serving):
    """A fake Klaviyo on 127.0.0.1. Use as a context manager, or call start() and stop().

    It serves the shape of one curated spec: by default the one the generated client was made
    from (so the fake and the client always agree), or `spec` (a parsed curated spec, or the
    path of one as JSON). Its paths, media type, job kinds, fields and attributes all come from
    that spec; any valid `revision` header is accepted. `revision` is what `headers()` sends
    (default: the spec's). Lists are served oldest first, in insertion order, `page_size` jobs
    per page.
    By default each operation has the rate limits the spec publishes for it.
    It accepts `api_key` as `Authorization: Klaviyo-API-Key`, and each of `access_tokens` as
    `Authorization: Bearer` (an OAuth app's tokens; see `add_access_token`).
    `retire_revisions_on=date(...)` answers 410 Gone, as Klaviyo does, to every revision
    retired by that day (two years after its date); off by default, so old shapes stay testable.
    `host` may be any loopback address (on Linux all of 127/8), e.g. "127.0.0.2" for a second
    origin; with `ssl_context` (a server-side `ssl.SSLContext` holding a certificate) it
    serves HTTPS, to test a client's certificate checks.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        access_tokens: Iterable[str] = (),
        spec: SpecSource = None,
        revision: str | None = None,
        rate_limits: Limits | Mapping[str, Limits] | None = DEFAULT_RATE_LIMITS,
        page_size: int = PAGE_SIZE,
        host: str = "127.0.0.1",
        port: int = 0,
        retire_revisions_on: date | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.shape = default_shape() if spec is None else Shape.from_spec(load_spec(spec))
        revision = self.shape.revision if revision is None else revision
        if not valid_revision(revision):
            raise ValueError(f"{revision!r} is not a revision (YYYY-MM-DD, 2022-10-17 or later)")
        self.api_key = api_key
        self._access_tokens = set(access_tokens)
        self.revision = revision
        self.retire_revisions_on = retire_revisions_on
        self._address = (host, port)
        self._ssl_context = ssl_context
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: HttpServer | None = None
        self._links_base = ""
        if rate_limits is DEFAULT_RATE_LIMITS:
            rate_limits = self.shape.rate_limits  # the served spec's, which may be another's
        self._limiter = self._quotas(rate_limits)
        self._jobs: dict[str, Job] = {}  # insertion order is list order
        self._seq = 0
        self._ids = random.Random(0)  # reproducible job ids
        self._faults: list[Fault] = []
        self._random_faults: RandomFaults | None = None
        self._pager = Pager(page_size)
        self._log: list[RequestRecord] = []
        self.internal_errors: list[BaseException] = []  # bugs in the fake, surfaced as 500s

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving on 127.0.0.1 (a free port unless `port=` was given); returns self."""
        if self._server is not None:
            raise RuntimeError("FakeKlaviyo is already running")
        self._stopping.clear()
        self._server = HttpServer(*self._address, self._handle, self._ssl_context)
        # What served documents link to; kept past stop(), which can overtake a request that
        # is still being answered (it is cut off, and must not count as the fake's failure).
        self._links_base = self.base_url
        return self

    def stop(self) -> None:
        """Stop serving; requests in flight are cut off. Calling it twice is harmless."""
        server, self._server = self._server, None
        if server is not None:
            self._stopping.set()  # ends injected delays at once
            server.stop()

    def __enter__(self) -> Self:
        """Start the fake (`with FakeKlaviyo() as fake:`); it stops at the end of the block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>` (https with `ssl_context`), to pass as a client's
        `base_url`; only while running."""
        if self._server is None:
            raise RuntimeError("FakeKlaviyo is not running; call start() first")
        host, port = self._server.address
        scheme = "http" if self._ssl_context is None else "https"
        return f"{scheme}://{host}:{port}"

    @property
    def connections(self) -> int:
        """TCP connections accepted since `start()`: how well a client reuses its pool."""
        if self._server is None:
            raise RuntimeError("FakeKlaviyo is not running; call start() first")
        return self._server.connections

    def headers(self, revision: str | None = None) -> dict[str, str]:
        """The headers a correct client sends: the API key and a revision."""
        return {
            "Authorization": f"Klaviyo-API-Key {self.api_key}",
            "revision": revision or self.revision,
        }

    def url(self, kind: str, job_id: str | None = None) -> str:
        """Absolute URL of one job (with job_id) or of a kind's job list."""
        job_kind = self.shape.find_kind(kind)
        shape = self.shape
        if job_id is None:
            return self.base_url + shape.path(job_kind.collection)
        return self.base_url + shape.path(job_kind.collection, quote(job_id, safe=""))

    # --- jobs ------------------------------------------------------------------------------

    def add_job(
        self,
        kind: str,
        *,
        status: str = "queued",
        total: int | None = None,
        items: Sequence[Mapping[str, Any]] | int | None = None,
        failed: int = 0,
        polls_to_complete: int | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        job_id: str | None = None,
        created_at: str | datetime | None = None,
        completed_at: str | datetime | None = None,
        expires_at: str | datetime | None = None,
    ) -> str:
        """Add a job and return its id.

        kind: a job type ("catalog-item-bulk-update-job") or short name ("item-update",
        "variant-update", "category-update", "item-create"). items: the related resources, as
        dicts of "id" and attributes (missing ones generated), or a count to generate; by
        default `total` (default 10) are generated. failed: operations failing by completion;
        with errors=None their errors are generated in the minimal live shape, errors=() means
        none. polls_to_complete=N: the job advances each time it is served (queued on the
        first, processing between, complete on the Nth). Datetimes given as strings are served
        verbatim (so naive ones stay naive); the default created_at is now, in UTC.
        """
        with self._lock:
            if job_id is None:
                job_id = self._new_id()
            elif job_id in self._jobs:
                raise ValueError(f"a job with id {job_id!r} exists already")
            self._seq += 1
            job_kind = self.shape.find_kind(kind)
            self._jobs[job_id] = new_job(
                job_kind,
                job_id,
                self._seq,
                schemas=self.shape.resources[job_kind.related_type],
                job_schemas=self.shape.job_schemas,
                status=status,
                total=total,
                items=items,
                failed=failed,
                polls_to_complete=polls_to_complete,
                errors=errors,
                created_at=created_at,
                completed_at=completed_at,
                expires_at=expires_at,
            )
            return job_id

    def add_jobs(self, kind: str, n: int, **options: Unpack[JobOptions]) -> list[str]:
        """Add n jobs alike (with generated ids); return their ids in list order."""
        with self._lock:
            return [self.add_job(kind, **options) for _ in range(n)]

    def set_job(self, job_id: str, **attributes: Any) -> None:
        """Overwrite served attributes, with any JSON value (datetimes are formatted as given).

        Wrong types and nulls are served as set, for robustness tests. The job stops
        progressing, so a status set here sticks.
        """
        unknown = set(attributes) - set(self.shape.job_attributes)
        if unknown:
            raise ValueError(f"jobs have no attribute(s) {sorted(unknown)}")
        with self._lock:
            job = self._job(job_id)
            for name, value in attributes.items():
                job.attributes[name] = timestamp(value) if isinstance(value, datetime) else value
            job.polls_to_complete = job.finish_when_seen = None
            job.finishes_at = job.scheduled_at = None
            if "errors" in attributes:
                job.auto_errors = False

    def finish_in(self, job_id: str, seconds: float) -> float:
        """Let a job progress on its own: processing now, its counts growing in proportion,
        and complete `seconds` from now. Returns that moment, in `time.monotonic()` terms."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
        with self._lock:
            job = self._job(job_id)
            now = time.monotonic()
            job.polls_to_complete = job.finish_when_seen = None  # time drives it now
            job.scheduled_at, job.finishes_at = now, now + seconds
            job.advance(now)
            return job.finishes_at if job.finishes_at is not None else now

    def finish_randomly(
        self, within: float, *, seed: int | None = 0, job_ids: Iterable[str] | None = None
    ) -> dict[str, float]:
        """Each running (queued or processing) job, or each of `job_ids`, finishes on its own
        at a random moment within the next `within` seconds (uniformly; reproducible with
        `seed`), as other apps' jobs do on a live account; see `finish_in`. Returns each job's
        moment of completion (`time.monotonic()`), to measure how soon a client noticed.
        """
        rng = random.Random(seed)
        with self._lock:
            if job_ids is None:
                ids = [
                    j.id
                    for j in self._jobs.values()
                    if j.attributes.get("status") in ("queued", "processing")
                ]
            else:
                ids = list(job_ids)
            return {job_id: self.finish_in(job_id, rng.uniform(0, within)) for job_id in ids}

    def finish_when_seen(
        self, within: float, *, seed: int | None = 0, job_ids: Iterable[str] | None = None
    ) -> dict[str, float]:
        """As `finish_randomly`, but each job's clock starts the first time it is served
        (listed or fetched), not now: a client that finds a job running sees it finish within
        `within` seconds, however long after this call it comes. Until then a job stays as it
        is, and then goes on from the progress it shows. Returns each job's delay in seconds.
        """
        if not (math.isfinite(within) and within >= 0):
            raise ValueError(f"within must be finite and >= 0, got {within!r}")
        rng = random.Random(seed)
        with self._lock:
            if job_ids is None:
                jobs = [
                    j
                    for j in self._jobs.values()
                    if j.attributes.get("status") in ("queued", "processing")
                ]
            else:
                jobs = [self._job(job_id) for job_id in job_ids]
            delays = {}
            for job in jobs:
                job.polls_to_complete = job.finishes_at = job.scheduled_at = None
                job.finish_when_seen = delays[job.id] = rng.uniform(0, within)
            return delays

    def add_access_token(self, token: str) -> None:
        """Accept `Authorization: Bearer <token>` from now on, as an OAuth app's token."""
        with self._lock:
            self._access_tokens.add(token)

    def revoke_access_token(self, token: str) -> None:
        """Answer 401 to this token from now on, as Klaviyo does once a token expires."""
        with self._lock:
            self._access_tokens.discard(token)

    def job_attributes(self, job_id: str) -> dict[str, Any]:
        """A copy of what the job's attributes are now (without advancing it)."""
        with self._lock:
            return copy.deepcopy(self._job(job_id).attributes)

    def remove_job(self, job_id: str) -> None:
        """Delete a job: it then answers 404 and leaves the lists. KeyError if there is none."""
        with self._lock:
            self._job(job_id)
            del self._jobs[job_id]

    def _job(self, job_id: str) -> Job:
        """The job with this id, or a KeyError that names it (for the public job methods)."""
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"no job with id {job_id!r}") from None

    def _new_id(self) -> str:
        """A fresh job id in Klaviyo's ULID-like form, reproducible across runs (seeded) and
        unique in this fake."""
        while True:  # ULID-like, as Klaviyo's job ids look
            job_id = "01J" + "".join(self._ids.choice(_CROCKFORD) for _ in range(23))
            if job_id not in self._jobs:
                return job_id

    # --- faults, limits, log ---------------------------------------------------------------

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Queue a fault for each of the next `times` requests (after those queued before)."""
        if times < 0:
            raise ValueError("times must not be negative")
        with self._lock:
            self._faults.extend([fault] * times)

    def inject_random(
        self, probability: float, faults: Iterable[Fault], seed: int | None = None
    ) -> None:
        """While no fault is queued, answer each request with a random fault at `probability`."""
        with self._lock:
            choices = tuple(faults)
            self._random_faults = (
                RandomFaults(probability, choices, random.Random(seed))
                if probability > 0 and choices
                else None
            )

    def clear_faults(self) -> None:
        """Drop the queued faults and stop `inject_random`."""
        with self._lock:
            self._faults.clear()
            self._random_faults = None

    def set_rate_limits(self, rate_limits: Limits | Mapping[str, Limits] | None) -> None:
        """Replace the limits (None disables them); the windows start afresh.

        A mapping gives each operation (e.g. "get_item_update_job") its own windows, as
        Klaviyo counts them; a sequence of (count, seconds) is one set shared by every operation.
        """
        with self._lock:
            self._limiter = self._quotas(rate_limits)

    def _quotas(self, rate_limits: Limits | Mapping[str, Limits] | None) -> Quotas | None:
        """The rate limiter for `rate_limits` over the served operations; None for no limits."""
        operations = [endpoint.operation for endpoint in self.shape.endpoints]
        return Quotas(rate_limits, operations) if rate_limits else None

    @property
    def request_log(self) -> list[RequestRecord]:
        """A copy of every request served so far, oldest first, as `RequestRecord`s."""
        with self._lock:
            return list(self._log)

    def reset_log(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._log.clear()
