"""What every rate limiter speaks: `Rate`, `Ticket`, `Wait`, `Observation`, the `RateLimiter`
protocol, and the server's budget hint (`budget_hint`, `merge_hint`), shared by the in-memory
limiter (`_ratelimit`) and the Redis one (`_redis_ratelimit`). No I/O, no state.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from .errors import ConfigurationError

#: Seconds added to every window. Counting in-flight requests makes the guarantee independent
#: of latency; the margin only absorbs the server's clock running a little fast against ours.
DEFAULT_MARGIN = 0.001

#: The resolution of the RateLimit-Reset header (whole seconds, rounded up).
RESET_GRANULARITY = 1.0

#: No pause or budget hint lasts longer than this (a year), whoever asks for it. What a response
#: says is capped far lower, at the client's `max_retry_after`, where the headers are read; this
#: is the limiters' own ceiling for what reaches them otherwise (an app's own `Observation`),
#: and it keeps the Redis scripts' arithmetic in µs exact (Lua numbers are doubles).
MAX_WAIT = 366 * 86400.0

#: The largest request count a budget hint takes from the server: the biggest published tier is
#: 3,500 a minute; a billion is past any quota, and keeps the admission numbers small.
MAX_BUDGET = 10**9

#: While our own requests are in flight, a budget the server reported may be lifted by their
#: answers (see `budget_hint`), so a wait on it is re-checked this often.
HINT_RECHECK = 0.05


@attrs.frozen
class Rate:
    """At most `count` requests in any `per_seconds`-long window."""

    count: int
    per_seconds: float = attrs.field(converter=float)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count <= 0:
            raise ConfigurationError(f"Rate.count must be a positive int, got {self.count!r}")
        if not (math.isfinite(self.per_seconds) and self.per_seconds > 0):
            raise ConfigurationError(
                f"Rate.per_seconds must be positive and finite, got {self.per_seconds!r}"
            )


@attrs.frozen
class Ticket:
    """An admitted request. Hand it to `RateLimiter.complete` when its response or error has
    arrived (or the attempt was abandoned): until then it occupies a slot in every window."""

    account: str
    operation: str
    seq: int  # the admission's number within its (account, operation)
    admitted_at: float  # the limiter's clock (the Redis server's, in seconds, for Redis)
    token: str = ""  # the Redis member naming the request; "" in memory


@attrs.frozen
class Wait:
    """Not admitted: try again after `seconds`. `paused`: the account is paused after a 429."""

    seconds: float
    paused: bool = False


@attrs.frozen
class Observation:
    """The RateLimit-Limit/-Remaining/-Reset headers of a success: the account's steady window
    as the server counts it, everyone's usage included. The client reads them per their
    grammar, and caps `reset_seconds` at its `max_retry_after`; a limiter ignores figures that
    make no sense and holds no hint longer than `MAX_WAIT`."""

    limit: int
    remaining: int
    reset_seconds: float


@runtime_checkable
class RateLimiter(Protocol):
    """What the request loop needs from a limiter. Implementations never sleep."""

    #: True if calls do blocking I/O (a network round trip): the async client then makes them
    #: in a worker thread.
    blocking_io: bool

    def try_acquire(self, account: str, operation: str, rates: Sequence[Rate]) -> Ticket | Wait:
        """Admit one request now and return its `Ticket`; or admit nothing and return how long
        to wait before trying again (also while the account is paused after a 429)."""
        ...

    def complete(self, ticket: Ticket, observation: Observation | None = None) -> None:
        """The ticket's response or error has arrived (now): from here it occupies its slots
        for one window more. `observation`: the response's RateLimit-* headers, if any."""
        ...

    def pause(self, account: str, seconds: float) -> None:
        """After a 429: every operation of this account waits until now+seconds (a later pause
        extends, an earlier one never shortens)."""
        ...


def account_key(api_key: str) -> str:
    """A short, stable name for an account: the first 16 hex digits of the key's SHA-256.

    Limiter keys (and Redis key names) use this, so an API key never appears in key names,
    logs or `repr`s. 64 bits make accidental collisions between accounts negligible.
    """
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def validate_pause(seconds: float) -> float:
    """A pause must be finite and not negative: an infinite one would stop the account for good.
    The seconds to pause for: at most `MAX_WAIT`."""
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ConfigurationError(f"pause seconds must be finite and >= 0, got {seconds!r}")
    return min(seconds, MAX_WAIT)


def check_rates(rates: Sequence[Rate]) -> None:
    """An operation needs at least one rate: with none, nothing would bound it."""
    if not rates:
        raise ConfigurationError("rates must not be empty")


def budget_hint(ticket: Ticket, observation: Observation) -> tuple[int, float] | None:
    """The highest admission number the server's figures allow, and for how many seconds (until
    its window resets, at most `MAX_WAIT`); None for figures that make no sense (they come from
    the network, so they are ignored). Never raises, whatever the observation holds.

    The server counted `limit - remaining` requests in its steady window when this ticket's
    request arrived: everyone's, ours and other integrations' on the account alike, against a
    limit that may be lower than the spec's. So whatever we admit after this ticket, up to
    `remaining` more, fits; requests of ours admitted after it but counted before it are
    counted twice, which errs on the safe side. Requests of ours admitted *before* it and still
    in flight may not have been counted yet: the figure can be that many too generous, and a
    429 then pauses the account. Both limiters store the result as they are, with `merge_hint`.
    """
    limit, remaining, reset = observation.limit, observation.remaining, observation.reset_seconds
    if not (_is_int(limit) and _is_int(remaining) and limit > 0):
        return None
    if isinstance(reset, bool) or not isinstance(reset, int | float):
        return None
    if isinstance(reset, float) and not math.isfinite(reset):
        return None
    if reset > MAX_WAIT:  # before any float(): an int past the float range would overflow
        seconds = MAX_WAIT
    elif reset > 0:  # False for nan
        seconds = float(reset)
    else:
        return None
    return ticket.seq + min(max(remaining, 0), limit, MAX_BUDGET), seconds


def _is_int(value: object) -> bool:
    """An int and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def merge_hint(
    old: tuple[int, int, float] | None, seq: int, max_seq: int, until: float, now: float
) -> tuple[int, int, float] | None:
    """The budget to keep, as (ticket seq it came from, highest admission allowed, until).

    The answer to the newest admission wins; an older one (overtaken in flight) is stale. Within
    one server window, whose end every observation overestimates by less than a second (the
    header is rounded up), the earliest end seen is the closest. The Redis script does the same.
    """
    if old is not None and now < old[2]:
        if seq < old[0]:
            return old
        if until < old[2] + RESET_GRANULARITY:
            until = min(until, old[2])
    return seq, max_seq, until
