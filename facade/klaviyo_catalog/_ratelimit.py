"""Client-side rate limiting: an exact sliding log per (account, operation).

Klaviyo checks two fixed windows per account and operation at once (a 1 s burst and a 60 s
steady window). A sliding log of admission times keeps every window of each rate's length at
or under its count, so it satisfies any fixed window however the server aligns it. A token
bucket or GCRA tuned to the same figures can admit twice the burst inside one fixed window.

The limiter never sleeps and never blocks beyond a short lock: `try_acquire` either admits a
request now or says how long to wait, and the request loop (sync or async) does the waiting.
The Redis variant, sharing one budget between processes and hosts, is in `_redis_ratelimit`.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import attrs

__all__ = [
    "DEFAULT_MARGIN",
    "MemoryRateLimiter",
    "Rate",
    "RateLimiter",
    "account_key",
    "default_limiter",
]

#: Seconds added to every window. The limiter's clock is not the server's: a request admitted at
#: t reaches Klaviyo at t + latency, and latency varies, so two admissions exactly one window
#: apart here can land a few ms less than a window apart there (measured: 351 in a 350/s window
#: with no margin). The cost is throughput: count per (per_seconds + margin) instead of
#: count per per_seconds, i.e. 0.5 % of a 1 s burst window and under 0.01 % of a 60 s window.
#: Raise it if the network path to Klaviyo jitters more than a few ms.
DEFAULT_MARGIN = 0.005

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_UNITS |= {"h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_RATE_TEXT = re.compile(r"\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+)\s*")


@attrs.frozen
class Rate:
    """At most `count` requests in any `per_seconds`-long window."""

    count: int
    per_seconds: float = attrs.field(converter=float)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count <= 0:
            raise ValueError(f"Rate.count must be a positive int, got {self.count!r}")
        if not (math.isfinite(self.per_seconds) and self.per_seconds > 0):
            raise ValueError(
                f"Rate.per_seconds must be positive and finite, got {self.per_seconds!r}"
            )

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse Klaviyo's `x-klaviyo-ratelimit` notation: "350/s", "3500/m", "10/5s"."""
        match = _RATE_TEXT.fullmatch(text.lower())
        if match is None or match.group(3) not in _UNITS:
            raise ValueError(f"not a rate: {text!r} (expected e.g. '350/s' or '3500/m')")
        multiple = float(match.group(2)) if match.group(2) else 1.0
        return cls(int(match.group(1)), multiple * _UNITS[match.group(3)])


@runtime_checkable
class RateLimiter(Protocol):
    """What the request loop needs from a limiter. Implementations never sleep."""

    def try_acquire(self, account: str, operation: str, rates: Sequence[Rate]) -> float:
        """Admit one request now (record it in every window) and return 0.0; or admit nothing
        and return the seconds to wait before trying again. Also returns a positive wait while
        the account is paused after a 429."""
        ...

    def pause(self, account: str, seconds: float) -> None:
        """After a 429: every operation of this account waits until now+seconds (a later pause
        extends, an earlier one never shortens)."""
        ...

    def observe(
        self, account: str, operation: str, limit: int, remaining: int, reset_seconds: float
    ) -> None:
        """Feedback from the RateLimit-* headers of a success, for adaptive slowing."""
        ...


RESET_GRANULARITY = 1.0  # seconds: the resolution of the RateLimit-Reset header


def account_key(api_key: str) -> str:
    """A short, stable name for an account: the first 16 hex digits of the key's SHA-256.

    Limiter keys (and Redis key names) use this, so an API key never appears in key names,
    logs or `repr`s. 64 bits make accidental collisions between accounts negligible.
    """
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def _validate_pause(seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"pause seconds must be finite and >= 0, got {seconds!r}")


def _steady_index(rates: Sequence[Rate]) -> int:
    """The longest window: the one RateLimit-* headers describe (ties: the smaller count)."""
    return max(range(len(rates)), key=lambda i: (rates[i].per_seconds, -rates[i].count))


def _check_rates(rates: Sequence[Rate]) -> None:
    if not rates:
        raise ValueError("rates must not be empty")


class _Log:
    """One (account, operation): the ring of admission times and the adaptive hint."""

    __slots__ = (
        "hint_cap",
        "hint_foreign",
        "hint_limit",
        "hint_until",
        "plan",
        "rates",
        "steady",
        "times",
    )

    def __init__(self, rates: tuple[Rate, ...]) -> None:
        self.times: deque[float] = deque(maxlen=max(r.count for r in rates))
        self.rates = rates
        # (count, window) per rate, the window including the margin; set by the limiter.
        self.plan: tuple[tuple[int, float], ...] = ()
        self.steady = _steady_index(rates)
        self.hint_limit = 0  # 0: no hint
        self.hint_foreign = 0
        self.hint_until = 0.0
        self.hint_cap = 0  # min(steady count, hint_limit) - hint_foreign

    def steady_per(self) -> float:
        return self.rates[self.steady].per_seconds


class MemoryRateLimiter:
    """An exact sliding-log limiter for one process; thread-safe, shared by sync and async code.

    Per (account, operation) it keeps the last max(count) admission times (`time.monotonic`) in
    a ring buffer. A request is admitted only if, for every rate, fewer than `count` of them
    are newer than now - (per_seconds + margin); otherwise the wait is until the oldest
    relevant admission leaves its window. Check and record happen under one lock, held for
    about a microsecond and never while anyone waits, so concurrent callers cannot both take
    the last slot, and a waiting key never holds up another key.

    Adaptive slowing (`observe`): RateLimit-Limit/Remaining/Reset describe the account's steady
    window on the server, used by everyone on the account. Whatever the server counts there
    beyond our own logged admissions since that window began, `(limit - remaining) - ours`, is
    taken as foreign usage, and until the window resets our steady count becomes
    `min(count, limit) - foreign`: we leave room for the other integrations instead of running
    into 429s, and a limit lowered on the server (Klaviyo changes them without a new revision)
    takes effect at once. Within one server window the largest foreign figure seen wins, as a
    response that was overtaken in flight reports stale, lower usage. Our requests still in
    flight count as ours, so foreign usage is if anything underestimated; the burst window
    has no headers, and a 429 there is handled by `pause`.

    State grows with the (account, operation) keys seen: up to max(count) timestamps each,
    about 110 KB at 3500.
    """

    def __init__(
        self, *, margin: float = DEFAULT_MARGIN, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"margin must be finite and >= 0, got {margin!r}")
        self._margin = margin
        # Injectable for tests; must be monotonic, and is called exactly once per try_acquire.
        self._clock = clock
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str], _Log] = {}
        self._paused_until: dict[str, float] = {}

    @property
    def margin(self) -> float:
        return self._margin

    def try_acquire(self, account: str, operation: str, rates: Sequence[Rate]) -> float:
        key = (account, operation)
        with self._lock:
            now = self._clock()
            if self._paused_until:
                paused = self._paused_until.get(account)
                if paused is not None:
                    if now < paused:
                        return paused - now
                    del self._paused_until[account]
            log = self._logs.get(key)
            # Identity first: callers normally pass the same tuple every time.
            if log is None or (rates is not log.rates and tuple(rates) != log.rates):
                log = self._reset_rates(key, log, rates)
            if log.hint_limit and now >= log.hint_until:
                self._clear_hint(log)
            times = log.times
            n = len(times)
            wait = 0.0
            for count, window in log.plan:
                if n >= count:
                    w = times[-count] + window - now
                    if w > wait:
                        wait = w
            if log.hint_limit:
                # The capped steady count holds only until the server window resets.
                cap = log.hint_cap
                if cap <= 0 or n >= cap:
                    w = log.hint_until - now
                    if cap > 0:
                        w = min(w, times[-cap] + log.plan[log.steady][1] - now)
                    if w > wait:
                        wait = w
            if wait > 0.0:
                return wait
            times.append(now)
            return 0.0

    def pause(self, account: str, seconds: float) -> None:
        _validate_pause(seconds)
        with self._lock:
            until = self._clock() + seconds
            if until > self._paused_until.get(account, -math.inf):
                self._paused_until[account] = until

    def observe(
        self, account: str, operation: str, limit: int, remaining: int, reset_seconds: float
    ) -> None:
        # Odd header values are ignored rather than raised: they come from the network.
        if limit <= 0 or not (math.isfinite(reset_seconds) and reset_seconds > 0):
            return
        remaining = min(max(remaining, 0), limit)
        with self._lock:
            log = self._logs.get((account, operation))
            if log is None:
                return  # no rates known yet, hence no window to adapt
            now = self._clock()
            count, per = log.rates[log.steady].count, log.steady_per()
            until = now + reset_seconds
            # RateLimit-Reset is whole seconds, rounded up: the server window may have begun up
            # to a second earlier. Counting our admissions from then on errs towards treating
            # usage as ours; the other way our own burst looked foreign and cost 10 % of quota.
            start = max(until - per - RESET_GRANULARITY, now - per)
            ours = len(log.times) - bisect.bisect_right(log.times, start)
            foreign = max(0, limit - remaining - ours)
            if log.hint_limit and now < log.hint_until and abs(until - log.hint_until) < per / 2:
                # The same server window: usage there only grows, so keep the largest figure.
                foreign = max(foreign, log.hint_foreign)
                limit = min(limit, log.hint_limit)
                until = max(until, log.hint_until)
            if foreign == 0 and limit >= count:
                self._clear_hint(log)
                return
            log.hint_limit, log.hint_foreign, log.hint_until = limit, foreign, until
            log.hint_cap = min(count, limit) - foreign

    def _reset_rates(self, key: tuple[str, str], log: _Log | None, rates: Sequence[Rate]) -> _Log:
        _check_rates(rates)
        new = _Log(tuple(rates))
        if log is not None:
            # Keep the history; it can only be as long as the old ring was.
            if (log.times.maxlen or 0) >= (new.times.maxlen or 0):
                new.times = log.times
            else:
                new.times.extend(log.times)
            if log.hint_limit and log.steady_per() == new.steady_per():
                new.hint_limit, new.hint_foreign = log.hint_limit, log.hint_foreign
                new.hint_until = log.hint_until
                new.hint_cap = min(new.rates[new.steady].count, new.hint_limit) - new.hint_foreign
        new.plan = tuple((r.count, r.per_seconds + self._margin) for r in new.rates)
        self._logs[key] = new
        return new

    @staticmethod
    def _clear_hint(log: _Log) -> None:
        log.hint_limit = log.hint_foreign = log.hint_cap = 0
        log.hint_until = 0.0


_DEFAULT_LIMITER = MemoryRateLimiter()


def default_limiter() -> MemoryRateLimiter:
    """The process-wide limiter: clients built with the same account share one budget."""
    return _DEFAULT_LIMITER
