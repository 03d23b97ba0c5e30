"""One call's request to Klaviyo, in small named steps: admit, attempt, classify the outcome,
refresh, pause, back off.

`Exchange.run()` is the loop, and reads as the list: every attempt is admitted by the rate
limiter (`Gate`) and holds its ticket until its outcome has arrived; a success goes back with
its ResponseInfo; a failure is classified (`_outcome`), and is retried after a wait while the
retry policy and the call's deadline allow. A 401 with a refreshable OAuth token gets one
fresh token first, and a 429 that is waited out pauses the whole account.
"""

from __future__ import annotations

import logging

import httpx

from ._deadline import CLOCK_SLACK, Deadline, cut_short, within
from ._flow import Call, Flow, Send, Sleep
from ._gate import Gate
from ._header_numbers import rate_limit_observation
from ._models import ResponseInfo
from ._operations import Operation, RequestParts
from ._outcome import classify, log_attempt, response_info, without_locals
from ._ratelimit import Ticket
from ._settings import Settings
from ._text import Shown
from .errors import (
    InvalidRequestError,
    KlaviyoError,
    RateLimitError,
    TransportError,
)

logger = logging.getLogger("klaviyo_catalog")

# What a sent request's Authorization header becomes (see `_attempt`).
REDACTED = "[redacted]"
# What an attempt gives back: its outcome (a response, or the exception a driver returned),
# the seconds its timeouts were cut to (None: no deadline), and the seconds it took.
Attempt = tuple[object, float | None, float]


class Exchange:
    """The request of one call of `op`, retried as the policy says within `deadline`."""

    def __init__(
        self,
        settings: Settings,
        op: Operation,
        parts: RequestParts,
        deadline: Deadline,
    ) -> None:
        self.settings = settings
        self.op = op
        self.parts = parts
        self.deadline = deadline
        self.gate = Gate(settings, op, deadline)
        self.retries = 0
        self.refreshed = False

    def run(self) -> Flow[tuple[httpx.Response, ResponseInfo]]:
        """Every attempt through the rate limiter, retried as the policy says, within the
        call's deadline; the successful response and its ResponseInfo."""
        s = self.settings
        while True:
            # Every attempt, retries included, passes the limiter, and holds its ticket until
            # the outcome has arrived: completed on every path, or the slot would stay taken.
            ticket = yield from self.gate.admit()
            result, remaining, elapsed = yield from self._attempt(ticket)
            request_id = log_attempt(self.parts, result, self.retries + 1, elapsed)
            if isinstance(result, httpx.Response) and result.is_success:
                # Its RateLimit-* figures, capped at max_retry_after: no response holds the
                # account's calls longer than a 429 may.
                budget = rate_limit_observation(result.headers, s.retry.max_retry_after)
                yield from self.gate.complete(ticket, budget)
                info = response_info(result, request_id, elapsed, self.retries + 1, s.secrets())
                return result, info
            yield from self.gate.complete(ticket, None)
            failed = self._unless_final(result, remaining)
            if (
                isinstance(failed, httpx.Response)
                and failed.status_code == 401
                and s.credential.refreshable
                and not self.refreshed
            ):
                yield from self._refresh()
                continue
            error, retry_wait = classify(self.op, failed, self.retries + 1, s.retry, s.revision)
            yield from self._back_off(error, retry_wait, request_id)

    def _attempt(self, ticket: Ticket) -> Flow[Attempt]:
        """Build the request and send it, within what the deadline leaves; the ticket is
        completed here if the flow stops on the way (a deadline, a cancelled task)."""
        s, op, parts, deadline = self.settings, self.op, self.parts, self.deadline
        url = s.base_url + parts.target
        try:
            remaining = deadline.timeout()
            if remaining is not None and remaining <= 0:
                raise deadline.exceeded(f"{op.name}: before attempt {self.retries + 1}")
            try:
                # The whole request, made here: the transport below sends it as it is (the
                # client's own adds its cookies, an app's client its defaults).
                request = httpx.Request(
                    parts.method,
                    url,
                    headers={**s.headers(op), **parts.headers},
                    # httpx's own form of a timeout, which its transports read.
                    extensions={"timeout": within(s.timeout, remaining)},
                )
            except httpx.InvalidURL:
                raise InvalidRequestError(f"{op.name}: the request URL cannot be built") from None
            sent_at = s.clock()
            try:
                result = yield Send(request, remaining, s.max_response_bytes, deadline, op.name)
            finally:
                # The response and any httpx error keep this request, and errors keep those:
                # once sent, it never shows the key again (error trackers record them all).
                request.headers["Authorization"] = REDACTED
        except BaseException:  # GeneratorExit (a cancelled task, a closed flow) included
            self.gate.complete_now(ticket)
            raise
        if result is None:
            self.gate.complete_now(ticket)
            raise RuntimeError("a flow driver must answer each Send")
        if isinstance(result, httpx.Response):
            # An app's client makes a redirect's follow-up request, the key in its headers.
            result.next_request = None
        return result, remaining, s.clock() - sent_at

    def _unless_final(
        self, result: object, remaining: float | None
    ) -> httpx.Response | httpx.HTTPError:
        """A failed attempt's outcome, to classify; raises for one no retry can mend: the Body
        refused the response, or the attempt had all the time the deadline left and used it
        up."""
        op, deadline = self.op, self.deadline
        if isinstance(result, KlaviyoError):
            raise result  # from the Body: too large, or the deadline passed mid-body
        if isinstance(result, TimeoutError) and remaining is None:
            raise TransportError(f"{op.name}: the request timed out")
        if isinstance(result, TimeoutError) or cut_short(result, self.settings.timeout, remaining):
            expired = deadline.exceeded(f"{op.name}: waiting for the response")
            if isinstance(result, httpx.HTTPError):
                expired.__cause__ = without_locals(result)
            raise expired
        if not isinstance(result, httpx.Response | httpx.HTTPError):
            raise RuntimeError(f"a flow driver answered a Send with {type(result).__name__}")
        return result

    def _refresh(self) -> Flow[None]:
        """An OAuth token expired (a 401, and a token function to call): get a fresh one, once
        a call, and try again (not counted as a retry). A second 401 is the app's to handle."""
        deadline = self.deadline
        self.refreshed = True
        outcome = yield Call(self.settings.credential.refresh, deadline.timeout())
        if isinstance(outcome, TimeoutError) and deadline.seconds_left() <= CLOCK_SLACK:
            raise deadline.exceeded(f"{self.op.name}: refreshing the access token")
        if isinstance(outcome, Exception):
            raise outcome

    def _back_off(
        self, error: KlaviyoError, retry_wait: float | None, request_id: str | None
    ) -> Flow[None]:
        """Wait before the next attempt, or raise `error` when there is none: not retryable,
        the retries used up, or no time left for the wait."""
        s, op, deadline = self.settings, self.op, self.deadline
        if retry_wait is None or self.retries >= s.retry.max_retries:
            raise error from error.__cause__
        if retry_wait >= deadline.seconds_left():
            # No time for the wait: the failure stands, as when the retries run out (a
            # RateLimitError keeps the server's retry_after for the app).
            logger.info("%s: no retry, the deadline leaves less than %.2fs", op.name, retry_wait)
            raise error from error.__cause__
        deadline.last_error = error
        if isinstance(error, RateLimitError):
            yield from self.gate.pause_account(retry_wait)
        self.retries += 1
        logger.info(
            "retry %d of %d in %.2fs (request id %s): %s",
            self.retries,
            s.retry.max_retries,
            retry_wait,
            Shown(request_id or "none"),
            Shown(error),  # its message quotes the server's error detail
        )
        yield Sleep(retry_wait)
