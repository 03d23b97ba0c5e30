"""The one core both clients share, written sans-I/O.

Each public call is a generator ("flow") that yields what it needs done, `Send(request)` or
`Sleep(seconds)`, and receives the outcome. The flow owns everything that is not I/O: request
building and validation, the rate-limit gate before every attempt, retry decisions, parsing,
pagination state and polling. `CatalogJobs` drives flows with `httpx.Client` and `time.sleep`,
`AsyncCatalogJobs` with `httpx.AsyncClient` and `asyncio.sleep`; nothing else differs.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import httpx

from . import _jsonapi as jsonapi
from ._auth import Credential
from ._models import BulkJob, Page, ResponseInfo
from ._operations import Operation, RequestParts, operation
from ._ratelimit import Observation, Rate, RateLimiter, Ticket
from ._retry import RetryPolicy, retry_after_seconds
from ._revisions import MOVE_ON
from .errors import (
    APIError,
    InvalidResponseError,
    KlaviyoError,
    PaginationError,
    RateLimitError,
    RevisionRetiredError,
    TransportError,
    error_class,
)

logger = logging.getLogger("klaviyo_catalog")

T = TypeVar("T")


@attrs.frozen
class Send:
    request: httpx.Request


@attrs.frozen
class Sleep:
    seconds: float


@attrs.frozen
class Call:
    """Run a function that does blocking I/O (a Redis round trip): the async driver runs it in
    a worker thread, so the event loop never waits on it."""

    function: Callable[[], Any]


Action = Send | Sleep | Call
REDACTED = "[redacted]"
# What a flow receives back: after a Send, the httpx.Response or the httpx.HTTPError the send
# raised; after a Call, its result or the exception it raised; after a Sleep, None.
Flow = Generator[Action, Any, T]
Fields = Mapping[str, Sequence[str]] | None
RateLimits = Sequence[Rate] | Mapping[str, Sequence[Rate]] | None


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

    def headers(self, op: Operation) -> dict[str, str]:
        return {
            "Authorization": self.credential.authorization(),
            "Accept": op.accept,
            "User-Agent": self.user_agent,
            "revision": self.revision,
        }

    def secrets(self) -> tuple[str, ...]:
        """The credentials, to keep out of anything shown (response headers echoed back)."""
        return self.credential.secrets()

    def rates(self, op: Operation) -> Sequence[Rate]:
        if self.rate_limits is None:
            return [Rate(count, seconds) for count, seconds in op.spec.rate_limits]
        if isinstance(self.rate_limits, Mapping):
            if op.name in self.rate_limits:
                return self.rate_limits[op.name]
            return [Rate(count, seconds) for count, seconds in op.spec.rate_limits]
        return self.rate_limits


@attrs.define
class PageWalk:
    """Where a listing is: the cursor to request next, and the cursors already seen.

    Drivers loop `while walk.proceed(): page = <list_page(walk.cursor)>; walk.advance(page);
    <yield the page's jobs>`. A page whose next link is unusable, or repeats a cursor, still
    yields its jobs: the walk stops only when asked to go past it, with `PaginationError`
    carrying that page's cursor, so an app can resume instead of ending silently short.
    """

    cursor: str | None
    done: bool = False
    seen: set[str] = attrs.field(factory=set)
    stopped: PaginationError | None = None

    def proceed(self) -> bool:
        """True while another page is to be requested; raises what stopped the walk."""
        if self.stopped is not None:
            raise self.stopped
        return not self.done

    def advance(self, page: Page[Any]) -> None:
        try:
            next_cursor = page.next_cursor
        except PaginationError as exc:
            self.stopped = exc
            return
        if next_cursor is None:
            self.done = True
            return
        if next_cursor == self.cursor or next_cursor in self.seen:
            self.stopped = PaginationError(
                f"the server returned cursor {next_cursor!r:.60} again; stopping to avoid a loop",
                cursor=self.cursor,
            )
            return
        if self.cursor is not None:
            self.seen.add(self.cursor)
        self.cursor = next_cursor


class Core:
    def __init__(self, settings: Settings, build_request: Callable[..., httpx.Request]) -> None:
        self.settings = settings
        self._build_request = build_request

    # --- the public calls ----------------------------------------------------------------------

    def get_job(
        self, name: str, job_id: str, include: Iterable[str] | None, fields: Fields
    ) -> Flow[BulkJob]:
        op = operation(name)
        parts, included = op.build(
            revision=self.settings.revision, job_id=job_id, include=include, fields=fields
        )
        response, info = yield from self._exchange(op, parts)
        return self._parse(
            op, response, lambda doc: jsonapi.job_document(doc, op.spec.job_type, included, info)
        )

    def list_page(
        self, name: str, *, status: str | None, cursor: str | None, fields: Fields
    ) -> Flow[Page[BulkJob]]:
        try:
            op = operation(name)
            parts, _ = op.build(
                revision=self.settings.revision, status=status, cursor=cursor, fields=fields
            )
            response, info = yield from self._exchange(op, parts)
            return self._parse(
                op,
                response,
                lambda doc: jsonapi.job_collection(doc, op.spec.job_type, info, cursor=cursor),
            )
        except KlaviyoError as exc:
            exc.cursor = cursor  # so that the caller can resume from this page
            raise

    # --- one request, with the rate-limit gate and retries ---------------------------------------

    def _exchange(
        self, op: Operation, parts: RequestParts
    ) -> Flow[tuple[httpx.Response, ResponseInfo]]:
        s = self.settings
        started = s.clock()
        rates = s.rates(op)
        url = s.base_url + parts.target
        retries = 0
        refreshed = False
        while True:
            # Every attempt, retries included, passes the limiter, and holds its ticket until
            # the outcome has arrived: completed on every path, or the slot would stay taken.
            ticket = yield from self._admit(op, rates, started)
            try:
                request = self._build_request(
                    parts.method, url, headers={**s.headers(op), **parts.headers}, timeout=s.timeout
                )
                sent_at = s.clock()
                try:
                    result = yield Send(request)
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
                # httpcore's own copy of the request, key included, hides in the spent stream,
                # and a redirect's follow-up request copies the headers.
                result.stream = httpx.ByteStream(result.content)
                result.next_request = None
            elapsed = s.clock() - sent_at
            request_id = _log_attempt(parts, result, retries + 1, elapsed)
            if isinstance(result, httpx.Response) and result.is_success:
                yield from self._complete(ticket, _observation(result))
                return result, self._info(result, request_id, elapsed, retries + 1)
            yield from self._complete(ticket, None)
            if (
                isinstance(result, httpx.Response)
                and result.status_code == 401
                and s.credential.refreshable
                and not refreshed
            ):
                # An OAuth token expires: get a fresh one, once, and try again (not counted as
                # a retry). A second 401 is the app's to handle.
                refreshed = True
                outcome = yield Call(s.credential.refresh)
                if isinstance(outcome, Exception):
                    raise outcome
                continue
            error, retry_wait = self._failure(op, result, retries + 1)
            if retry_wait is None or retries >= s.retry.max_retries:
                raise error from error.__cause__
            self._check_deadline(op, started, retry_wait, error)
            if isinstance(error, RateLimitError):
                # A wait this call honours: every request of the account waits it out too.
                yield from self._limit(s.limiter.pause, s.account, retry_wait)
            retries += 1
            logger.info(
                "retry %d of %d in %.2fs (request id %s): %s",
                retries,
                s.retry.max_retries,
                retry_wait,
                request_id or "none",
                error,
            )
            yield Sleep(retry_wait)

    def _admit(self, op: Operation, rates: Sequence[Rate], started: float) -> Flow[Ticket]:
        """Wait until the limiter admits one request; return its ticket."""
        s = self.settings
        paused = 0.0
        while True:
            grant = yield from self._limit(s.limiter.try_acquire, s.account, op.name, rates)
            if isinstance(grant, Ticket):
                if paused:
                    logger.warning(
                        "%s waited %.2fs: the account is paused after a 429", op.name, paused
                    )
                return grant
            self._check_deadline(op, started, grant.seconds, None)
            if grant.paused:
                paused += grant.seconds
            yield Sleep(grant.seconds)

    def _complete(self, ticket: Ticket, observation: Observation | None) -> Flow[None]:
        try:
            yield from self._limit(self.settings.limiter.complete, ticket, observation)
        except TransportError as exc:
            # The outcome is here and stands; the slot stays taken until the limiter gives up on
            # it (RedisRateLimiter's stale_after), which only slows us down.
            logger.warning("%s", exc)

    def _complete_now(self, ticket: Ticket) -> None:
        """Complete without yielding: a closing generator must not yield."""
        try:
            self.settings.limiter.complete(ticket)
        except Exception as exc:
            logger.warning("the rate limiter failed to complete a request: %r", exc)

    def _limit(self, method: Callable[..., T], *args: Any) -> Flow[T]:
        """Call the rate limiter: inline, or as a Call when it does blocking I/O. Its own
        failures (say, Redis unreachable) become TransportError too."""
        try:
            if self.settings.limiter.blocking_io:
                result = yield Call(functools.partial(method, *args))
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

    def _check_deadline(
        self, op: Operation, started: float, wait: float, error: KlaviyoError | None
    ) -> None:
        deadline = self.settings.retry.deadline
        if deadline is not None and self.settings.clock() - started + wait > deadline:
            if error is not None:
                raise error
            raise TransportError(
                f"{op.name}: the rate limit wait would pass the {deadline:g}s deadline"
            )

    def _info(
        self, response: httpx.Response, request_id: str | None, elapsed: float, attempts: int
    ) -> ResponseInfo:
        secrets = self.settings.secrets()
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in response.headers.raw
            if name.lower() not in SECRET_HEADERS
            and not any(secret in value.decode("latin-1") for secret in secrets)
        }
        return ResponseInfo(
            request_id=request_id,
            status_code=response.status_code,
            headers=headers,
            elapsed=max(0.0, elapsed),
            attempts=attempts,
        )

    def _parse(self, op: Operation, response: httpx.Response, parse: Callable[[Any], T]) -> T:
        document = jsonapi.decode(response, op.name)
        try:
            return parse(document)
        except jsonapi.Invalid as exc:
            raise jsonapi.invalid(response, op.name, str(exc)) from exc


def _observation(response: httpx.Response) -> Observation | None:
    """The RateLimit-* headers of a success, for the limiter's budget hint."""
    headers = response.headers
    try:
        return Observation(
            int(headers["ratelimit-limit"]),
            int(headers["ratelimit-remaining"]),
            float(headers["ratelimit-reset"]),
        )
    except (KeyError, ValueError):
        return None


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
            parts.path,
            status,
            request_id or "none",
            attempt,
            elapsed,
        )
    return request_id
