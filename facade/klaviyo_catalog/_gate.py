"""The rate limiter as one call's requests pass it: admit, complete, pause the account.

Every attempt waits here for the limiter to admit it, holds its ticket until its outcome has
arrived, and hands it back with what the response said of the server's budget. A limiter that
does blocking I/O (RedisRateLimiter) is called through a `Call`, so its round trips run off the
event loop and within the call's deadline; its own failures become TransportError.

Such a limiter admits a request in a worker thread. If the flow stops waiting for it (its
deadline passed, its task was cancelled), the ticket the round trip still brings back would
reach nobody, and its slot would stay taken until the limiter gives up on it
(RedisRateLimiter's `stale_after`, ten minutes by default). So exactly one of the two sides
hands it back (`Admission`): the flow, if the ticket had arrived, else the round trip.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ._deadline import CLOCK_SLACK, Deadline
from ._flow import Call, Flow, Sleep
from ._operations import Operation
from ._ratelimit import Observation, Ticket, Wait
from ._settings import Settings
from ._text import Shown
from .errors import DeadlineExceededError, KlaviyoError, TransportError

logger = logging.getLogger("klaviyo_catalog")

T = TypeVar("T")


class Gate:
    """The client's rate limiter, for the requests of one call of operation `op`."""

    def __init__(self, settings: Settings, op: Operation, deadline: Deadline) -> None:
        self.settings = settings
        self.op = op
        self.deadline = deadline
        self.rates = settings.rates(op)

    def admit(self) -> Flow[Ticket]:
        """Wait until the limiter admits one request; return its ticket. A wait the deadline
        cannot fit fails at once, rather than sleeping into a lost cause."""
        op, deadline = self.op, self.deadline
        paused = 0.0
        while True:
            admission = Admission(self)
            try:
                grant = yield from self._limit(admission)
            except BaseException:  # a deadline, a closed flow: a ticket on its way goes back
                admission.abandon()
                raise
            if isinstance(grant, Ticket):
                if paused:
                    logger.warning(
                        "%s waited %.2fs: the account is paused after a 429", op.name, paused
                    )
                return grant
            if grant.seconds >= deadline.seconds_left():
                raise deadline.exceeded(
                    f"{op.name}: waiting {grant.seconds:.2f}s for the rate limit"
                )
            if grant.paused:
                paused += grant.seconds
            yield Sleep(grant.seconds)

    def complete(self, ticket: Ticket, observation: Observation | None) -> Flow[None]:
        """Hand a ticket back to the limiter with what the response said of the server's budget;
        a limiter that fails or is too slow costs the call nothing."""
        try:
            yield from self._limit(
                self.settings.limiter.complete, ticket, observation, cleanup=True
            )
        except DeadlineExceededError:
            # The round trip goes on in its worker thread; the call need not wait for it.
            logger.debug("%s: the rate limiter round trip goes on past the deadline", self.op.name)
        except TransportError as exc:
            # The outcome is here and stands; the slot stays taken until the limiter gives up on
            # it (RedisRateLimiter's stale_after), which only slows us down.
            logger.warning("%s", Shown(exc))

    def complete_now(self, ticket: Ticket) -> None:
        """Complete without yielding: a closing generator must not yield."""
        try:
            self.settings.limiter.complete(ticket)
        except Exception as exc:
            logger.warning("the rate limiter failed to complete a request: %r", Shown(exc))

    def pause_account(self, seconds: float) -> Flow[None]:
        """A 429's wait that this call honours: every request of the account waits it out too.
        The pause is made even when the deadline has no time left for it (it goes on in the
        background)."""
        s = self.settings
        with contextlib.suppress(DeadlineExceededError):
            yield from self._limit(s.limiter.pause, s.account, seconds, cleanup=True)

    def _limit(self, method: Callable[..., T], *args: Any, cleanup: bool = False) -> Flow[T]:
        """Call the rate limiter: inline, or as a Call when it does blocking I/O, given the
        time the deadline leaves (a `cleanup` call is made even when none is left). Its own
        failures (say, Redis unreachable) become TransportError; a round trip that outlasts
        the deadline, DeadlineExceededError."""
        deadline, name = self.deadline, self.op.name
        try:
            if self.settings.limiter.blocking_io:
                remaining = deadline.timeout()
                if remaining is not None and remaining <= 0:
                    if not cleanup:
                        raise deadline.exceeded(f"{name}: before a rate limiter round trip")
                    remaining = 0.0
                result = yield Call(functools.partial(method, *args), remaining)
                if isinstance(result, TimeoutError) and deadline.seconds_left() <= CLOCK_SLACK:
                    raise deadline.exceeded(f"{name}: waiting for the rate limiter")
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


class Admission:
    """The gate's `limiter.try_acquire`, called once, maybe in a worker thread; a ticket nobody
    will use goes back through `Gate.complete_now` (see the module docstring)."""

    __slots__ = ("_abandoned", "_gate", "_grant", "_lock")

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._lock = threading.Lock()
        self._grant: Ticket | Wait | None = None
        self._abandoned = False

    def __call__(self) -> Ticket | Wait:
        gate = self._gate
        grant = gate.settings.limiter.try_acquire(gate.settings.account, gate.op.name, gate.rates)
        with self._lock:
            given_up = self._abandoned
            self._grant = grant
        if given_up and isinstance(grant, Ticket):
            gate.complete_now(grant)  # in the worker thread: nobody waits for it
        return grant

    def abandon(self) -> None:
        """The flow will not take the grant: a ticket that has arrived is handed back now, one
        still on its way when it arrives."""
        with self._lock:
            self._abandoned = True
            grant = self._grant
        if isinstance(grant, Ticket):
            self._gate.complete_now(grant)
