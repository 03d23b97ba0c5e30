"""Client-side rate limiting that holds at any network distance, per (account, operation): what
every limiter speaks (`Rate`, `Ticket`, `Wait`, `Observation`, the `RateLimiter` protocol, the
server's budget hint), and the in-memory limiter.

Klaviyo counts requests in fixed windows (a 1 s burst and a 60 s steady window) by the time
they *arrive*; a client only knows when it sent a request and when the answer came back. So a
request counts against its windows from its admission until one window after its response
(or error) arrived: in flight, it occupies a slot; completed at c, it holds the slot until
c + window. A request is admitted only while, for every rate, fewer than `count` requests of
the (account, operation) occupy a slot. The server saw each of those arrive between their
admission and their completion, hence:

    arrival(k) >= admission(k) >= completion(j) + window >= arrival(j) + window

for at least one of any `count` earlier requests j: no window of that length, sliding or fixed,
however aligned and whatever the latency, ever holds more than `count` arrivals. The cost is
the latency itself: a slot turns over every window + round trip instead of every window.

The limiter never sleeps and never blocks beyond a short lock: `try_acquire` either admits a
request now (a `Ticket`) or says how long to wait (a `Wait`); the request loop (sync or async)
does the waiting and hands the ticket back to `complete` when the response arrives. The Redis
variant, sharing one budget between processes and hosts, is in `_redis_ratelimit`.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
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


def checked_seconds(value: float, name: str, *, zero: bool = False) -> float:
    """A limiter's number of seconds: finite and > 0 (>= 0 with `zero`); else
    ConfigurationError (what configures a client, see `_checks`)."""
    if not (math.isfinite(value) and (value > 0 or (zero and value == 0))):
        raise ConfigurationError(
            f"{name} must be finite and {'>=' if zero else '>'} 0, got {value!r}"
        )
    return value


@attrs.frozen
class Rate:
    """At most `count` requests in any `per_seconds`-long window."""

    count: int
    per_seconds: float = attrs.field(converter=float)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count <= 0:
            raise ConfigurationError(f"Rate.count must be a positive int, got {self.count!r}")
        checked_seconds(self.per_seconds, "Rate.per_seconds")


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


def pause_seconds(seconds: float) -> float:
    """The seconds a pause lasts: at most `MAX_WAIT`; finite and not negative, or an infinite
    one would stop the account for good (ConfigurationError)."""
    return min(checked_seconds(seconds, "pause seconds", zero=True), MAX_WAIT)


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
    # Exact comparisons, never float(): an int past the float range would overflow. nan fails.
    if not (_is_int(reset) or isinstance(reset, float)) or not 0 < reset < math.inf:
        return None
    return ticket.seq + min(max(remaining, 0), limit, MAX_BUDGET), float(min(reset, MAX_WAIT))


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


@attrs.define
class _Log:
    """One (account, operation): its rates, requests in flight, recent completions, and the
    server's budget hint."""

    rates: tuple[Rate, ...] = ()
    # (window, count) per rate, the window including the margin, longest last.
    plan: list[tuple[float, int]] = attrs.Factory(list)
    longest: float = 0.0  # the longest window: how long a completion still counts
    in_flight: int = 0
    # Completion times, ascending (one clock, read under the lock), read from `start`: the
    # expired ones before it are dropped in bulk. A deque's indexing is linear, which made
    # each bisection cost ~15 us once a long window held a few hundred thousand of them.
    done: list[float] = attrs.Factory(list)
    start: int = 0
    seq: int = 0
    hint: tuple[int, int, float] | None = None


_INSTANCES: weakref.WeakSet[MemoryRateLimiter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """In a forked child, every live limiter gets a fresh lock, and its requests in flight
    count as completed now, since their answers go to the parent."""
    for limiter in list(_INSTANCES):
        # The lock may have been held by a thread that does not exist in the child.
        limiter._lock = threading.Lock()
        now = limiter._clock()
        for log in limiter._logs.values():
            log.done.extend([now] * log.in_flight)
            log.in_flight = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class MemoryRateLimiter:
    """The in-flight-counting limiter for one process; thread-safe, shared by sync and async code.

    Per (account, operation) it keeps the number of requests in flight and the completion times
    of the last window (the longest rate's). Check and record happen under one lock, held for
    about a microsecond and never while anyone waits, so concurrent callers cannot both take
    the last slot, and a waiting key never holds up another key. A key whose newest entry is
    older than its longest window is dropped (checked every `prune_every` seconds, or by
    `prune()`), so memory for a key that went quiet returns to zero.

    The budget is this process's: after `os.fork()` the child gets a fresh lock and the
    parent's history (its requests then in flight counted as completed at the fork), and from
    then on each process keeps its own budget. Processes that share an account must share a
    `RedisRateLimiter` instead.

    RateLimit-* headers (`Observation`) describe the account's steady window on the server,
    used by everyone on the account: see `budget_hint`. Until that window resets, admissions
    stop where the server's remaining budget runs out, so the client leaves room for other
    integrations instead of running into 429s, and a limit lowered on the server (Klaviyo
    changes them without a new revision) takes effect at once.
    """

    blocking_io = False

    def __init__(
        self,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        prune_every: float = 10.0,
    ) -> None:
        self._margin = checked_seconds(margin, "margin", zero=True)
        # Injectable for tests; must be monotonic, and is called once per call, under the lock.
        self._clock = clock
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str], _Log] = {}
        self._paused_until: dict[str, float] = {}
        self._prune_every = checked_seconds(prune_every, "prune_every")
        self._next_prune = -math.inf
        _INSTANCES.add(self)

    @property
    def margin(self) -> float:
        """Seconds added to every window."""
        return self._margin

    def __len__(self) -> int:
        """The number of (account, operation) keys held in memory."""
        return len(self._logs)

    def try_acquire(self, account: str, operation: str, rates: Sequence[Rate]) -> Ticket | Wait:
        """See `RateLimiter.try_acquire`."""
        key = (account, operation)
        with self._lock:
            now = self._clock()
            if now >= self._next_prune:
                self._prune(now)
            if self._paused_until:
                paused = self._paused_until.get(account)
                if paused is not None:
                    if now < paused:
                        return Wait(paused - now, paused=True)
                    del self._paused_until[account]
            log = self._logs.get(key)
            # Identity first: callers normally pass the same tuple every time.
            if log is None or (rates is not log.rates and tuple(rates) != log.rates):
                check_rates(rates)
                # New rates of a key keep its requests in flight, history and hint: the same
                # requests still count against the new rates.
                log = self._logs.setdefault(key, _Log())
                log.rates = tuple(rates)
                log.plan = sorted((r.per_seconds + self._margin, r.count) for r in rates)
                log.longest = log.plan[-1][0]
            done, in_flight = log.done, log.in_flight
            # Forget the completions older than the longest window; amortized, each time is
            # moved once.
            start = log.start = bisect.bisect_right(done, now - log.longest, log.start)
            if start > 1024 and start * 2 > len(done):
                del done[:start]
                start = log.start = 0
            wait = 0.0
            for window, count in log.plan:
                if in_flight >= count:
                    # No slot frees before a window after the first of them completes.
                    w = window
                else:
                    if (
                        in_flight + len(done) - bisect.bisect_right(done, now - window, start)
                        < count
                    ):
                        continue
                    # The slot frees when enough of the oldest completions have left.
                    w = done[in_flight - count] + window - now
                if w > wait:
                    wait = w
            hint = log.hint
            if hint is not None:
                if now >= hint[2]:
                    log.hint = None
                elif log.seq >= hint[1]:
                    w = hint[2] - now
                    if in_flight:
                        w = min(w, HINT_RECHECK)
                    if w > wait:
                        wait = w
            if wait > 0.0:
                return Wait(wait)
            log.seq += 1
            log.in_flight = in_flight + 1
            return Ticket(account, operation, log.seq, now)

    def complete(self, ticket: Ticket, observation: Observation | None = None) -> None:
        """See `RateLimiter.complete`."""
        with self._lock:
            log = self._logs.get((ticket.account, ticket.operation))
            if log is None or log.in_flight <= 0:
                return  # not ours: issued before a fork, or never admitted here
            now = self._clock()
            log.in_flight -= 1
            log.done.append(now)
            hint = None if observation is None else budget_hint(ticket, observation)
            if hint is not None:
                max_seq, seconds = hint
                log.hint = merge_hint(log.hint, ticket.seq, max_seq, now + seconds, now)

    def pause(self, account: str, seconds: float) -> None:
        """See `RateLimiter.pause`."""
        seconds = pause_seconds(seconds)
        with self._lock:
            until = self._clock() + seconds
            if until > self._paused_until.get(account, -math.inf):
                self._paused_until[account] = until

    def prune(self) -> None:
        """Drop every key whose newest entry is older than its longest window, and every pause
        that has ended. Also done every `prune_every` seconds by `try_acquire`."""
        with self._lock:
            self._prune(self._clock())

    def _prune(self, now: float) -> None:
        """Drop the idle logs and the ended pauses, and schedule the next pruning; under the
        lock."""
        self._next_prune = now + self._prune_every
        for key, log in list(self._logs.items()):
            # Nothing in it still matters: no request in flight, no completion or hint still
            # in a window.
            if (
                log.in_flight == 0
                and (not log.done or log.done[-1] + log.longest <= now)
                and (log.hint is None or log.hint[2] <= now)
            ):
                del self._logs[key]
        for account in [a for a, until in self._paused_until.items() if until <= now]:
            del self._paused_until[account]


_DEFAULT_LIMITER = MemoryRateLimiter()


def default_limiter() -> MemoryRateLimiter:
    """The process-wide limiter: clients built with the same account share one budget."""
    return _DEFAULT_LIMITER
