"""The one core both clients share, written sans-I/O.

Each public call is a generator ("flow") that yields what it needs done, `Send(request)`,
`Sleep(seconds)` or `Call(function)`, and receives the outcome. The flow owns everything that
is not I/O: request building and validation, the rate-limit gate before every attempt, retry
decisions, the call's deadline, the bounds on a response body, parsing, pagination state and
polling. `CatalogJobs` drives flows with `httpx.Client` and `time.sleep`, `AsyncCatalogJobs`
with `httpx.AsyncClient` and `asyncio.sleep`; nothing else differs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import time
import traceback
import zlib
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs
import httpx

from . import _jsonapi as jsonapi
from ._admission import Admission
from ._auth import Credential
from ._header_numbers import rate_limit_observation
from ._models import BulkJob, Page, ResponseInfo
from ._operations import Operation, RequestParts, operation
from ._ratelimit import Observation, Rate, RateLimiter, Ticket
from ._retry import RetryPolicy, retry_after_seconds
from ._revisions import MOVE_ON
from ._text import Shown
from .errors import (
    APIError,
    DeadlineExceededError,
    InvalidRequestError,
    InvalidResponseError,
    KlaviyoError,
    PageLimitExceededError,
    PaginationError,
    RateLimitError,
    RevisionRetiredError,
    TransportError,
    error_class,
)

logger = logging.getLogger("klaviyo_catalog")

T = TypeVar("T")


#: The default `deadline` of one call, retries and waits included: room for a full wait on
#: the 60 s steady window (or a 60 s Retry-After) plus a few attempts.
DEFAULT_DEADLINE = 120.0
#: The default cap on a response body, decoded: four times Klaviyo's largest document here, a
#: page of 100 jobs that each failed on all of their 100 resources (every error with its
#: pointer and meta, every resource's linkage), which is 3.9 MB; a job's included resources
#: stay near the 5 MB payload a bulk job may carry. A 13.7 MiB job with 2,000 included items
#: reads in about 40 ms of CPU; the 44.6 MiB the earlier 50 MiB cap let through took 7 s.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: A response body at least this long is parsed in a worker thread rather than inline: what
#: parsing one costs in Python (not json.loads: see `_bounds`) then never holds an async
#: client's event loop, and the call's deadline holds. A 100-item job is about 60 KB; a body
#: under 256 KiB costs at most some 40 ms inline (thousands of minimal errors), and the hop
#: to a thread about 80 µs of CPU (async; 20 µs sync).
PARSE_OFF_LOOP_BYTES = 256 * 1024
#: The loop guard of a walk keeps a digest of this many bytes per cursor, not the cursor: a
#: server handing out a new 16 KB cursor per page costs 16 bytes (plus the set's slot) each.
CURSOR_DIGEST_BYTES = 16


@attrs.define
class Deadline:
    """When the current call must be over, on the flow's clock; `budget` None: no deadline."""

    clock: Callable[[], float]
    budget: float | None
    at: float = math.inf
    # The failure of the last attempt, if one failed: what a DeadlineExceededError reports.
    last_error: KlaviyoError | None = None

    @classmethod
    def start(cls, clock: Callable[[], float], budget: float | None) -> Deadline:
        """A deadline `budget` seconds from now on `clock` (None: no deadline)."""
        return cls(clock, budget, math.inf if budget is None else clock() + budget)

    def remaining(self) -> float:
        """Seconds left (inf without a deadline); zero or less once it has passed."""
        return math.inf if self.budget is None else self.at - self.clock()

    def left(self) -> float | None:
        """Seconds left, for an action that takes a timeout (None: no limit)."""
        return None if self.budget is None else self.at - self.clock()

    def exceeded(self, what: str) -> DeadlineExceededError:
        """The error for a call that ran out of time, naming what it was doing."""
        assert self.budget is not None
        last_error = self.last_error
        error = DeadlineExceededError(
            f"{what}: the {self.budget:g}s deadline of the call ran out"
            + (f"; the last attempt failed with: {last_error}" if last_error else ""),
            deadline=self.budget,
            last_error=last_error,
        )
        error.__cause__ = last_error
        return error


class Body:
    """A response body as it arrives, sans-I/O: decoded (gzip or deflate) as it is fed, and
    refused as soon as it passes `max_bytes` decoded or the deadline passes.

    A driver feeds it the raw chunks of a streamed response (`feed`), then takes the finished
    response (`response`). So a gzip bomb costs at most `max_bytes` of memory, and a body that
    trickles in a byte at a time stops at the deadline, whatever the per-read timeout.
    """

    __slots__ = (
        "_chunks",
        "_deadline",
        "_decoder",
        "_max",
        "_raw_deflate",
        "_size",
        "_source",
        "_what",
    )

    def __init__(
        self, source: httpx.Response, max_bytes: int, deadline: Deadline, what: str
    ) -> None:
        self._source = source
        self._max = max_bytes
        self._deadline = deadline
        self._what = what
        self._size = 0
        self._chunks: list[bytes] = []
        self._raw_deflate = False
        codings = [
            c.strip().lower()
            for c in source.headers.get("content-encoding", "").split(",")
            if c.strip() and c.strip().lower() != "identity"
        ]
        self._decoder: Any = None
        if len(codings) > 1 or (codings and codings[0] not in _WBITS):
            raise self._invalid(
                f"the response has Content-Encoding {', '.join(codings)!r:.60}, "
                "which was not asked for (Accept-Encoding: gzip, deflate)"
            )
        if codings:
            self._decoder = zlib.decompressobj(_WBITS[codings[0]])
            self._raw_deflate = codings[0] == "deflate"
        else:
            declared = source.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise self._too_large()  # refused before reading any of it

    def feed(self, chunk: bytes) -> None:
        """Take the next raw chunk; raises InvalidResponseError or DeadlineExceededError."""
        if self._decoder is None:
            self._add(chunk)
        else:
            self._decode(chunk)
        if self._deadline.remaining() <= 0:
            raise self._deadline.exceeded(f"{self._what}: reading the response body")

    def response(self) -> httpx.Response:
        """The response, with its whole decoded body in `.content`."""
        source = self._source
        content = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        headers = source.headers
        if self._decoder is not None:
            # Decoded already: without its Content-Encoding, httpx will not decode it again.
            headers = httpx.Headers(
                [(k, v) for k, v in headers.raw if k.lower() not in _ENCODING_HEADERS]
            )
        return httpx.Response(
            source.status_code,
            headers=headers,
            content=content,
            request=source.request,
            # Not the network stream: an error keeps its response, and needs no socket.
            extensions={k: v for k, v in source.extensions.items() if k in _KEPT_EXTENSIONS},
        )

    def _decode(self, data: bytes) -> None:
        """Decompress `data` into the body, never more than one byte past the cap however well it
        compresses."""
        decoder = self._decoder
        while True:
            step = min(self._max - self._size + 1, _DECODE_STEP)
            try:
                # Never more than one byte past the cap, however well the data compresses, and
                # in steps of at most 1 MiB (zlib grows one output buffer by doubling).
                out = decoder.decompress(data, step)
            except zlib.error:
                if self._raw_deflate and self._size == 0:
                    # "deflate" is sometimes sent without its zlib wrapper.
                    self._raw_deflate = False
                    self._decoder = decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise self._invalid("the response body is not valid compressed data") from None
            self._raw_deflate = False
            self._add(out)
            if decoder.eof:
                return  # what follows the end of the stream is ignored, as httpx does
            data = decoder.unconsumed_tail
            if not data and len(out) < step:
                return  # all input consumed and all of its output taken

    def _add(self, data: bytes) -> None:
        """Keep a chunk of the decoded body, or stop at the first byte over max_response_bytes."""
        if data:
            self._size += len(data)
            if self._size > self._max:
                raise self._too_large()
            self._chunks.append(data)

    def _too_large(self) -> InvalidResponseError:
        """The error for a body over max_response_bytes."""
        return self._invalid(
            f"the response body is larger than max_response_bytes={self._max}; stopped reading"
        )

    def _invalid(self, problem: str) -> InvalidResponseError:
        """An InvalidResponseError about this response's body, naming the operation and the
        status."""
        return InvalidResponseError(
            f"{self._what}: HTTP {self._source.status_code}: {problem}",
            status_code=self._source.status_code,
        )


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_DECODE_STEP = 1 << 20
_KEPT_EXTENSIONS = frozenset({"http_version", "reason_phrase"})
_ENCODING_HEADERS = frozenset({b"content-encoding", b"content-length"})
ACCEPT_ENCODING = "gzip, deflate"  # the codings Body decodes; nothing else is asked for


@attrs.frozen
class Send:
    """Send `request` and read its response into a `Body` (from `receive`), all within
    `timeout` seconds (None: no deadline). The outcome is the finished `httpx.Response`, or the
    exception raised: an `httpx.HTTPError`, a `KlaviyoError` from the Body, or a `TimeoutError`
    when the driver's own timer ran out."""

    request: httpx.Request
    timeout: float | None = None
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    deadline: Deadline = attrs.field(factory=lambda: Deadline(time.monotonic, None))
    what: str = "request"

    def receive(self, response: httpx.Response) -> Body:
        """The Body to feed the raw chunks of `response` (its headers have arrived)."""
        return Body(response, self.max_bytes, self.deadline, self.what)


@attrs.frozen
class Sleep:
    """Wait this long (the driver's time.sleep or asyncio.sleep, or a test's virtual clock)."""

    seconds: float


@attrs.frozen
class Call:
    """Run a function that does blocking I/O (a Redis round trip), giving up after `timeout`
    seconds (None: no limit). The drivers run it in a worker thread, so the event loop never
    waits on it and a stalled server cannot hold a call past its deadline."""

    function: Callable[[], Any]
    timeout: float | None = None


Action = Send | Sleep | Call
REDACTED = "[redacted]"
# What a flow receives back: after a Send, the httpx.Response or the exception (see Send);
# after a Call, its result or the exception it raised (a TimeoutError if it did not finish in
# time); after a Sleep, None.
Flow = Generator[Action, Any, T]
Fields = Mapping[str, Iterable[str]] | None
RateLimits = Sequence[Rate] | Mapping[str, Sequence[Rate]] | None


@attrs.frozen
class Done(Generic[T]):
    """A flow has returned `value`: what `step` gives instead of a next action."""

    value: T


def step(flow: Flow[T], outcome: Any) -> Action | Done[T]:
    """Hand the last action's outcome to `flow` (None to start it); its next action, or its
    result. Each driver's loop is only this and how it performs the action, sync or async:
    `with closing(flow): ... while not isinstance(s, Done): s = step(flow, perform(s))`."""
    try:
        return flow.send(outcome)
    except StopIteration as done:
        return Done(done.value)


@attrs.frozen
class Settings:
    """Everything a client was configured with. The key stays out of repr."""

    credential: Credential = attrs.field(repr=False)
    account: str  # what the limiter is keyed by: named by the app, or a hash of the credential
    revision: str
    base_url: str
    timeout: httpx.Timeout
    retry: RetryPolicy
    limiter: RateLimiter
    rate_limits: RateLimits
    user_agent: str
    clock: Callable[[], float] = time.monotonic
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def headers(self, op: Operation) -> dict[str, str]:
        """Every request's headers, the credential's included."""
        return {
            "Authorization": self.credential.authorization(),
            "Accept": op.accept,
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": self.user_agent,
            "revision": self.revision,
        }

    def secrets(self) -> tuple[str, ...]:
        """The credentials, to keep out of anything shown (response headers echoed back)."""
        return self.credential.secrets()

    def rates(self, op: Operation) -> Sequence[Rate]:
        """The limits this operation is held to: the app's override, else the spec's."""
        if self.rate_limits is None:
            return _spec_rates(op.spec.rate_limits)
        if isinstance(self.rate_limits, Mapping):
            if op.name in self.rate_limits:
                return self.rate_limits[op.name]
            return _spec_rates(op.spec.rate_limits)
        return self.rate_limits


@functools.cache
def _spec_rates(rate_limits: tuple[tuple[int, float], ...]) -> tuple[Rate, ...]:
    """The spec's limits of an operation as Rates, made once: the limiter knows a tuple it has
    seen by its identity, where a new list each call cost a comparison of every Rate."""
    return tuple(Rate(count, seconds) for count, seconds in rate_limits)


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


def _materialised(fields: Fields) -> Fields:
    """`fields` with each value read into a tuple once, so that an iterator given as a value
    serves every page of a walk (and validation does not consume it)."""
    if fields is None or not isinstance(fields, Mapping):
        return fields  # Operation.build refuses a non-mapping with InvalidRequestError
    return {
        key: tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else value
        for key, value in fields.items()
    }


class Core:
    """The flows of every public call, shared by the sync and the async client."""

    def __init__(self, settings: Settings, build_request: Callable[..., httpx.Request]) -> None:
        self.settings = settings
        self._build_request = build_request

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
        response, info = yield from self._exchange(op, parts, deadline)
        job = yield from self._parse(
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
        if max_pages is not None and (
            isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1
        ):
            raise InvalidRequestError(f"max_pages must be a positive int, got {max_pages!r:.40}")
        fields = _materialised(fields)
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
            response, info = yield from self._exchange(op, parts, deadline)
            return (
                yield from self._parse(
                    op,
                    response,
                    deadline,
                    lambda doc: jsonapi.job_collection(doc, op.spec.job_type, info, cursor=cursor),
                )
            )
        except KlaviyoError as exc:
            exc.cursor = cursor  # so that the caller can resume from this page
            raise

    # --- one request, with the rate-limit gate and retries ---------------------------------------

    def _exchange(
        self, op: Operation, parts: RequestParts, deadline: Deadline
    ) -> Flow[tuple[httpx.Response, ResponseInfo]]:
        """One call's request to Klaviyo: every attempt through the rate limiter, retried as the
        policy says, within the call's deadline; the successful response and its ResponseInfo."""
        s = self.settings
        rates = s.rates(op)
        url = s.base_url + parts.target
        retries = 0
        refreshed = False
        while True:
            # Every attempt, retries included, passes the limiter, and holds its ticket until
            # the outcome has arrived: completed on every path, or the slot would stay taken.
            ticket = yield from self._admit(op, rates, deadline)
            try:
                remaining = deadline.left()
                if remaining is not None and remaining <= 0:
                    raise deadline.exceeded(f"{op.name}: before attempt {retries + 1}")
                try:
                    request = self._build_request(
                        parts.method,
                        url,
                        headers={**s.headers(op), **parts.headers},
                        # httpx's own form of a timeout, which build_request takes as it is.
                        extensions={"timeout": _within(s.timeout, remaining)},
                    )
                except httpx.InvalidURL:
                    raise InvalidRequestError(
                        f"{op.name}: the request URL cannot be built"
                    ) from None
                sent_at = s.clock()
                try:
                    result = yield Send(request, remaining, s.max_response_bytes, deadline, op.name)
                finally:
                    # The response and any httpx error keep this request, and errors keep those:
                    # once sent, it never shows the key again (error trackers record them all).
                    request.headers["Authorization"] = REDACTED
            except BaseException:  # GeneratorExit (a cancelled task, a closed flow) included
                self._complete_now(ticket)
                raise
            if result is None:
                self._complete_now(ticket)
                raise RuntimeError("a flow driver must answer each Send")
            if isinstance(result, httpx.Response):
                # A redirect's follow-up request copies the headers. (The Body's response holds
                # its content only, not httpcore's stream and its copy of the request.)
                result.next_request = None
            elapsed = s.clock() - sent_at
            request_id = _log_attempt(parts, result, retries + 1, elapsed)
            if isinstance(result, httpx.Response) and result.is_success:
                yield from self._complete(
                    op, deadline, ticket, _observation(result, s.retry.max_retry_after)
                )
                return result, self._info(result, request_id, elapsed, retries + 1)
            yield from self._complete(op, deadline, ticket, None)
            if isinstance(result, KlaviyoError):
                raise result  # from the Body: too large, or the deadline passed mid-body
            if isinstance(result, TimeoutError) and remaining is None:
                raise TransportError(f"{op.name}: the request timed out")
            if isinstance(result, TimeoutError) or _cut_short(result, s.timeout, remaining):
                # The attempt had all the time the deadline left, and used it up.
                expired = deadline.exceeded(f"{op.name}: waiting for the response")
                if isinstance(result, httpx.HTTPError):
                    expired.__cause__ = _without_locals(result)
                raise expired
            if (
                isinstance(result, httpx.Response)
                and result.status_code == 401
                and s.credential.refreshable
                and not refreshed
            ):
                # An OAuth token expires: get a fresh one, once, and try again (not counted as
                # a retry). A second 401 is the app's to handle.
                refreshed = True
                outcome = yield Call(s.credential.refresh, deadline.left())
                if isinstance(outcome, TimeoutError) and deadline.remaining() <= _CLOCK_SLACK:
                    raise deadline.exceeded(f"{op.name}: refreshing the access token")
                if isinstance(outcome, Exception):
                    raise outcome
                continue
            error, retry_wait = self._failure(op, result, retries + 1)
            if retry_wait is None or retries >= s.retry.max_retries:
                raise error from error.__cause__
            if retry_wait >= deadline.remaining():
                # No time for the wait: the failure stands, as when the retries run out (a
                # RateLimitError keeps the server's retry_after for the app).
                logger.info(
                    "%s: no retry, the deadline leaves less than %.2fs", op.name, retry_wait
                )
                raise error from error.__cause__
            deadline.last_error = error
            if isinstance(error, RateLimitError):
                # A wait this call honours: every request of the account waits it out too.
                with contextlib.suppress(DeadlineExceededError):  # it goes on in the background
                    yield from self._limit(
                        op, deadline, s.limiter.pause, s.account, retry_wait, cleanup=True
                    )
            retries += 1
            logger.info(
                "retry %d of %d in %.2fs (request id %s): %s",
                retries,
                s.retry.max_retries,
                retry_wait,
                Shown(request_id or "none"),
                Shown(error),  # its message quotes the server's error detail
            )
            yield Sleep(retry_wait)

    def _admit(self, op: Operation, rates: Sequence[Rate], deadline: Deadline) -> Flow[Ticket]:
        """Wait until the limiter admits one request; return its ticket. A wait the deadline
        cannot fit fails at once, rather than sleeping into a lost cause."""
        s = self.settings
        paused = 0.0
        while True:
            admission = Admission(s.limiter, self._complete_now, s.account, op.name, rates)
            try:
                grant = yield from self._limit(op, deadline, admission)
            except BaseException:  # a deadline, a closed flow: a ticket on its way goes back
                admission.abandon()
                raise
            if isinstance(grant, Ticket):
                if paused:
                    logger.warning(
                        "%s waited %.2fs: the account is paused after a 429", op.name, paused
                    )
                return grant
            if grant.seconds >= deadline.remaining():
                raise deadline.exceeded(
                    f"{op.name}: waiting {grant.seconds:.2f}s for the rate limit"
                )
            if grant.paused:
                paused += grant.seconds
            yield Sleep(grant.seconds)

    def _complete(
        self, op: Operation, deadline: Deadline, ticket: Ticket, observation: Observation | None
    ) -> Flow[None]:
        """Hand a ticket back to the limiter with what the response said of the server's budget;
        a limiter that fails or is too slow costs the call nothing."""
        try:
            yield from self._limit(
                op, deadline, self.settings.limiter.complete, ticket, observation, cleanup=True
            )
        except DeadlineExceededError:
            # The round trip goes on in its worker thread; the call need not wait for it.
            logger.debug("%s: the rate limiter round trip goes on past the deadline", op.name)
        except TransportError as exc:
            # The outcome is here and stands; the slot stays taken until the limiter gives up on
            # it (RedisRateLimiter's stale_after), which only slows us down.
            logger.warning("%s", Shown(exc))

    def _complete_now(self, ticket: Ticket) -> None:
        """Complete without yielding: a closing generator must not yield."""
        try:
            self.settings.limiter.complete(ticket)
        except Exception as exc:
            logger.warning("the rate limiter failed to complete a request: %r", Shown(exc))

    def _limit(
        self,
        op: Operation,
        deadline: Deadline,
        method: Callable[..., T],
        *args: Any,
        cleanup: bool = False,
    ) -> Flow[T]:
        """Call the rate limiter: inline, or as a Call when it does blocking I/O, given the
        time the deadline leaves (a `cleanup` call is made even when none is left). Its own
        failures (say, Redis unreachable) become TransportError; a round trip that outlasts
        the deadline, DeadlineExceededError."""
        try:
            if self.settings.limiter.blocking_io:
                remaining = deadline.left()
                if remaining is not None and remaining <= 0:
                    if not cleanup:
                        raise deadline.exceeded(f"{op.name}: before a rate limiter round trip")
                    remaining = 0.0
                result = yield Call(functools.partial(method, *args), remaining)
                if isinstance(result, TimeoutError) and deadline.remaining() <= _CLOCK_SLACK:
                    raise deadline.exceeded(f"{op.name}: waiting for the rate limiter")
                if isinstance(result, Exception):
                    raise result
                return result  # type: ignore[no-any-return]
            return method(*args)
        except KlaviyoError:
            raise
        except Exception as exc:
            raise TransportError(
                f"the rate limiter failed: {type(exc).__name__}: {exc!s:.200}"
            ) from exc

    def _failure(
        self, op: Operation, result: httpx.Response | httpx.HTTPError, retry_number: int
    ) -> tuple[KlaviyoError, float | None]:
        """The error this outcome means, and the wait before a retry (None: do not retry)."""
        policy = self.settings.retry
        if isinstance(result, httpx.HTTPError):
            what = "timed out" if isinstance(result, httpx.TimeoutException) else "failed"
            # The message names the exception type only: httpx's own may quote the request.
            # Its detail (DNS, TLS, errno) stays on the httpx error, the __cause__.
            error = TransportError(f"{op.name}: the request {what} ({type(result).__name__})")
            error.__cause__ = _without_locals(result)
            return error, policy.backoff(retry_number)
        response = result
        if response.status_code == 429:
            retry_after = retry_after_seconds(response.headers)
            throttled = self._api_error(op, response, retry_after=retry_after)
            if retry_after is not None and retry_after > policy.max_retry_after:
                return throttled, None  # not worth waiting for: the caller decides, now
            return throttled, policy.wait_after_429(retry_after, retry_number)
        if response.status_code >= 400:
            if policy.should_retry_status(response.status_code):
                return self._api_error(op, response), policy.backoff(retry_number)
            return self._api_error(op, response), None
        # 1xx/3xx: redirects are not followed, so the Authorization header never leaves.
        return InvalidResponseError(
            f"{op.name}: unexpected HTTP {response.status_code}",
            status_code=response.status_code,
            excerpt=jsonapi.excerpt(response.content),
            response=response,
        ), None

    def _api_error(
        self, op: Operation, response: httpx.Response, retry_after: float | None = None
    ) -> APIError:
        """The APIError subclass for an error response, its message naming the operation, the
        status and Klaviyo's first error."""
        details = jsonapi.error_details(response)
        reason = response.reason_phrase or "error"
        summary = details[0].describe() if details else jsonapi.excerpt(response.content)
        message = f"{op.name}: HTTP {response.status_code} {reason}: {summary or 'empty body'}"
        request_id = request_id_of(response)
        kwargs: dict[str, Any] = {
            "status_code": response.status_code,
            "errors": details,
            "request_id": request_id,
            "excerpt": jsonapi.excerpt(response.content),
            "response": response,
        }
        cls = error_class(response.status_code)
        if cls is RevisionRetiredError:
            message += (
                f". Klaviyo no longer serves revision {self.settings.revision}; to {MOVE_ON}."
            )
        if cls is RateLimitError:
            return RateLimitError(message, retry_after=retry_after, **kwargs)
        return cls(message, **kwargs)

    def _info(
        self, response: httpx.Response, request_id: str | None, elapsed: float, attempts: int
    ) -> ResponseInfo:
        """The response's metadata for the app, without cookies or any header that carries the
        credential."""
        raw = response.headers.raw
        # One search of all the values for each credential; only one found somewhere is looked
        # for header by header. (A credential is printable ASCII: it cannot span the "\n".)
        values = b"\n".join(value for _, value in raw).decode("latin-1")
        secrets = [secret for secret in self.settings.secrets() if secret in values]
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in raw
            if name.lower() not in SECRET_HEADERS
            and not (secrets and any(secret in value.decode("latin-1") for secret in secrets))
        }
        return ResponseInfo(
            request_id=request_id,
            status_code=response.status_code,
            headers=headers,
            elapsed=max(0.0, elapsed),
            attempts=attempts,
        )

    def _parse(
        self,
        op: Operation,
        response: httpx.Response,
        deadline: Deadline,
        parse: Callable[[Any], T],
    ) -> Flow[T]:
        """A successful response's JSON read by `parse`, within the call's deadline; a body that
        is not the documented shape, or past the bounds of a document, is InvalidResponseError.

        A body of PARSE_OFF_LOOP_BYTES or more is read in a worker thread (a `Call`): the event
        loop of an async client runs meanwhile, and the deadline holds whatever the reading
        costs. (json.loads itself holds the GIL throughout; `_bounds` keeps that short.)
        """
        read = functools.partial(_read, op, response, parse)
        if len(response.content) < PARSE_OFF_LOOP_BYTES:
            return read()
        outcome = yield Call(read, deadline.left())
        if isinstance(outcome, TimeoutError) and deadline.remaining() <= _CLOCK_SLACK:
            raise deadline.exceeded(f"{op.name}: reading the response document")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]


def _read(op: Operation, response: httpx.Response, parse: Callable[[Any], T]) -> T:
    """`parse` of a successful response's JSON (see `Core._parse`), bounded and checked."""
    document = jsonapi.decode(response, op.name)
    try:
        jsonapi.check_counts(document, op.spec.is_list)
        return parse(document)
    except jsonapi.Invalid as exc:
        raise jsonapi.invalid(response, op.name, str(exc)) from exc


def _observation(response: httpx.Response, max_reset: float) -> Observation | None:
    """The RateLimit-* headers of a success, for the limiter's budget hint; None unless all
    three read per their grammar. The reset is capped at `max_reset`, the client's
    `max_retry_after`, so that no response holds the account's calls longer than a 429 may."""
    return rate_limit_observation(response.headers, max_reset)


def _without_locals(error: BaseException) -> BaseException:
    """`error` and the exceptions chained to it, with the locals of their finished frames
    cleared: httpx's and httpcore's frames hold the request headers, key included, as bytes.
    Types, messages and line numbers stay."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        todo += [current.__cause__, current.__context__]
    return error


# Response headers never copied into ResponseInfo: they may carry session or credential data.
SECRET_HEADERS = frozenset(
    {b"set-cookie", b"set-cookie2", b"cookie", b"authorization", b"proxy-authorization"}
)


def request_id_of(response: httpx.Response) -> str | None:
    """Klaviyo's request id (`X-Klaviyo-Req-Id`); `X-Request-Id` from a proxy in front."""
    found: str | None = response.headers.get("x-klaviyo-req-id") or response.headers.get(
        "x-request-id"
    )
    return found


def _log_attempt(
    parts: RequestParts, result: httpx.Response | httpx.HTTPError, attempt: int, elapsed: float
) -> str | None:
    """Log one attempt at DEBUG (never its headers: they carry the credential); return the
    response's request id."""
    if isinstance(result, httpx.Response):
        request_id = request_id_of(result)
        status: object = result.status_code
    else:
        request_id, status = None, type(result).__name__
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s -> %s (request id %s, attempt %d, %.3fs)",
            parts.method,
            Shown(parts.path),  # it holds the job id
            status,
            Shown(request_id or "none"),  # X-Klaviyo-Req-Id, or a proxy's X-Request-Id
            attempt,
            elapsed,
        )
    return request_id


# A timer may fire a hair before the instant it was set for; this much counts as on time.
_CLOCK_SLACK = 0.005
_TIMEOUT_PHASES: Mapping[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "connect",
    httpx.ReadTimeout: "read",
    httpx.WriteTimeout: "write",
    httpx.PoolTimeout: "pool",
}


def _within(timeout: httpx.Timeout, remaining: float | None) -> dict[str, float | None]:
    """`timeout` with every phase shortened to the time the deadline leaves, as the request
    extension httpx makes of it (`Timeout.as_dict()`)."""
    if remaining is None:
        return timeout.as_dict()
    return {
        "connect": _shorter(timeout.connect, remaining),
        "read": _shorter(timeout.read, remaining),
        "write": _shorter(timeout.write, remaining),
        "pool": _shorter(timeout.pool, remaining),
    }


def _shorter(phase: float | None, remaining: float) -> float:
    """A timeout phase cut to the seconds the deadline leaves (None: no limit but the deadline)."""
    return remaining if phase is None else min(phase, remaining)


def _cut_short(result: object, timeout: httpx.Timeout, remaining: float | None) -> bool:
    """Whether an attempt timed out because the deadline shortened its timeout."""
    if remaining is None or not isinstance(result, httpx.TimeoutException):
        return False
    phase = getattr(timeout, _TIMEOUT_PHASES.get(type(result), "read"))
    return phase is None or remaining < phase
