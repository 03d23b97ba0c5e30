"""The deadline of one call, and what it makes of an attempt's timeouts.

A call's `deadline` covers every attempt, rate-limit wait, backoff, limiter round trip and the
reading of the body. `Deadline` says how much of it is left, in the two forms its users need:
`seconds_left()` to compare with a wait (inf without a deadline), `timeout()` to hand to an
action that takes a timeout (None without one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import attrs
import httpx

from .errors import DeadlineExceededError, KlaviyoError

#: The default `deadline` of one call, retries and waits included: room for a full wait on
#: the 60 s steady window (or a 60 s Retry-After) plus a few attempts.
DEFAULT_DEADLINE = 120.0
# A timer may fire a hair before the instant it was set for; this much counts as on time.
CLOCK_SLACK = 0.005


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

    def seconds_left(self) -> float:
        """Seconds left, to compare with a wait: inf without a deadline; zero or less once it
        has passed."""
        return math.inf if self.budget is None else self.at - self.clock()

    def timeout(self) -> float | None:
        """Seconds left, for an action that takes a timeout: None without a deadline (no
        limit); zero or less once it has passed."""
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


_TIMEOUT_PHASES: Mapping[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "connect",
    httpx.ReadTimeout: "read",
    httpx.WriteTimeout: "write",
    httpx.PoolTimeout: "pool",
}


def within(timeout: httpx.Timeout, remaining: float | None) -> dict[str, float | None]:
    """`timeout` with every phase shortened to the time the deadline leaves, as the request
    extension httpx makes of it (`Timeout.as_dict()`); a phase without a limit (None) gets the
    deadline's."""
    phases = timeout.as_dict()
    if remaining is None:
        return phases
    return {
        name: remaining if phase is None else min(phase, remaining)
        for name, phase in phases.items()
    }


def cut_short(result: object, timeout: httpx.Timeout, remaining: float | None) -> bool:
    """Whether an attempt timed out because the deadline shortened its timeout."""
    if remaining is None or not isinstance(result, httpx.TimeoutException):
        return False
    phase = getattr(timeout, _TIMEOUT_PHASES.get(type(result), "read"))
    return phase is None or remaining < phase
