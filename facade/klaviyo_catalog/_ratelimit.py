"""Client-side rate limiting that holds at any network distance, per (account, operation).

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
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence

from ._limits import (
    DEFAULT_MARGIN,
    HINT_RECHECK,
    MAX_BUDGET,
    MAX_WAIT,
    RESET_GRANULARITY,
    Observation,
    Rate,
    RateLimiter,
    Ticket,
    Wait,
    account_key,
    budget_hint,
    check_rates,
    merge_hint,
    validate_pause,
)
from .errors import ConfigurationError

__all__ = [
    "DEFAULT_MARGIN",
    "HINT_RECHECK",
    "MAX_BUDGET",
    "MAX_WAIT",
    "RESET_GRANULARITY",
    "MemoryRateLimiter",
    "Observation",
    "Rate",
    "RateLimiter",
    "Ticket",
    "Wait",
    "account_key",
    "budget_hint",
    "default_limiter",
    "merge_hint",
]

# The vocabulary both limiters share (Rate, Ticket, Wait, Observation, the RateLimiter
# protocol, the budget hint) is in `_limits`; re-exported here, where they were first defined.


class _Log:
    """One (account, operation): requests in flight, recent completions, and the server's
    budget hint."""

    __slots__ = ("done", "hint", "in_flight", "plan", "rates", "seq")

    def __init__(self, rates: tuple[Rate, ...], margin: float) -> None:
        self.rates = rates
        # (count, window) per rate, the window including the margin, longest last.
        self.plan = tuple(sorted(((r.count, r.per_seconds + margin) for r in rates), key=_window))
        self.in_flight = 0
        # Completion times, ascending (one clock, read under the lock), none older than the
        # longest window.
        self.done = _Completions()
        self.seq = 0
        self.hint: tuple[int, int, float] | None = None

    def longest(self) -> float:
        """The longest window, margin included: how long a completion still counts."""
        return self.plan[-1][1]

    def idle(self, now: float) -> bool:
        """Whether the log holds nothing that still matters at `now` (no request in flight, no
        completion or hint still in a window), so it can be dropped."""
        return (
            self.in_flight == 0
            and (not self.done or self.done.newest() + self.longest() <= now)
            and (self.hint is None or self.hint[2] <= now)
        )


class _Completions:
    """Ascending completion times: a list read from `start`, the expired ones before it
    dropped in bulk. A deque's indexing is linear, which made each bisection cost ~15 us once
    a long window held a few hundred thousand completions."""

    __slots__ = ("start", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.start = 0

    def __len__(self) -> int:
        return len(self.times) - self.start

    def append(self, at: float) -> None:
        self.times.append(at)

    def extend(self, times: Sequence[float]) -> None:
        self.times.extend(times)

    def expire(self, before: float) -> None:
        """Forget the completions at or before `before`."""
        times = self.times
        self.start = start = bisect.bisect_right(times, before, self.start)
        if start > 1024 and start * 2 > len(times):  # amortized: each time is moved once
            del times[:start]
            self.start = 0

    def since(self, at: float) -> int:
        """How many completed after `at`."""
        return len(self.times) - bisect.bisect_right(self.times, at, self.start)

    def newest(self, k: int = 1) -> float:
        """The k-th newest completion time (1: the newest)."""
        return self.times[-k]


def _window(plan_entry: tuple[int, float]) -> float:
    """A plan entry's window length, to sort the plan by."""
    return plan_entry[1]


_INSTANCES: weakref.WeakSet[MemoryRateLimiter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """Reset every live limiter in a forked child (see MemoryRateLimiter._after_fork)."""
    for limiter in list(_INSTANCES):
        limiter._after_fork()


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
        if not (math.isfinite(margin) and margin >= 0):
            raise ConfigurationError(f"margin must be finite and >= 0, got {margin!r}")
        if not (math.isfinite(prune_every) and prune_every > 0):
            raise ConfigurationError(f"prune_every must be finite and > 0, got {prune_every!r}")
        self._margin = margin
        # Injectable for tests; must be monotonic, and is called once per call, under the lock.
        self._clock = clock
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str], _Log] = {}
        self._paused_until: dict[str, float] = {}
        self._prune_every = prune_every
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
                log = self._reset_rates(key, log, rates)
            done, in_flight = log.done, log.in_flight
            done.expire(now - log.longest())
            wait = 0.0
            for count, window in log.plan:
                if in_flight >= count:
                    # No slot frees before a window after the first of them completes.
                    w = window
                else:
                    if in_flight + done.since(now - window) < count:
                        continue
                    # The slot frees when enough of the oldest completions have left.
                    w = done.newest(count - in_flight) + window - now
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
        seconds = validate_pause(seconds)
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
        for key in [key for key, log in self._logs.items() if log.idle(now)]:
            del self._logs[key]
        for account in [a for a, until in self._paused_until.items() if until <= now]:
            del self._paused_until[account]

    def _reset_rates(self, key: tuple[str, str], log: _Log | None, rates: Sequence[Rate]) -> _Log:
        """A log for new rates of a key, keeping the old one's requests in flight, history and
        hint: the same requests still count against the new rates."""
        check_rates(rates)
        new = _Log(tuple(rates), self._margin)
        if log is not None:  # new rates, same requests: keep what is in flight and the history
            new.in_flight, new.done, new.seq, new.hint = log.in_flight, log.done, log.seq, log.hint
        self._logs[key] = new
        return new

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock, and the requests in flight counted as completed now,
        since their answers go to the parent."""
        # The lock may have been held by a thread that does not exist in the child.
        self._lock = threading.Lock()
        now = self._clock()
        for log in self._logs.values():
            log.done.extend([now] * log.in_flight)  # their answers go to the parent
            log.in_flight = 0


_DEFAULT_LIMITER = MemoryRateLimiter()


def default_limiter() -> MemoryRateLimiter:
    """The process-wide limiter: clients built with the same account share one budget."""
    return _DEFAULT_LIMITER


def _replace_default_limiter(limiter: MemoryRateLimiter) -> MemoryRateLimiter:
    """Make `limiter` the process-wide default; return the one it replaces. For test isolation
    (the `fake_klaviyo` fixture): clients built afterwards use the new one."""
    global _DEFAULT_LIMITER
    previous, _DEFAULT_LIMITER = _DEFAULT_LIMITER, limiter
    return previous
