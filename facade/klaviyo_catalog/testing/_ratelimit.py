"""Klaviyo-style rate limiting: several fixed windows (burst and steady) checked at once."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ._model import default_shape

Limits = Sequence[tuple[int, float]]
#: Per operation name, the (count, seconds) windows the generated revision publishes.
DEFAULT_RATE_LIMITS: Mapping[str, tuple[tuple[int, float], ...]] = default_shape().rate_limits


@dataclass
class _Window:
    """One fixed window: at most `limit` requests in `seconds`, counted from its first request."""

    limit: int
    seconds: float
    start: float = -math.inf
    count: int = 0

    def roll(self, now: float) -> None:
        """Open a new window if the current one has ended by `now`."""
        # A window opens at the first request after the previous one ended, so a test's
        # burst never straddles a boundary it did not choose.
        if now >= self.start + self.seconds:
            self.start, self.count = now, 0

    def reset_in(self, now: float) -> float:
        """Seconds from `now` until the window ends."""
        return self.start + self.seconds - now


@dataclass(frozen=True)
class Decision:
    """Whether a request is admitted, with the headers to send about it."""

    admitted: bool
    headers: tuple[tuple[str, str], ...]  # Retry-After on refusal, RateLimit-* on admission


class FixedWindows:
    """Admits a request only if every window has room; a refused request uses no quota.

    Not thread-safe on its own: the fake calls it under its state lock.
    """

    def __init__(self, limits: Sequence[tuple[int, float]]) -> None:
        if not limits or any(count < 1 or seconds <= 0 for count, seconds in limits):
            raise ValueError("rate limits are (count >= 1, seconds > 0) pairs")
        self._windows = [_Window(count, float(seconds)) for count, seconds in limits]
        # RateLimit-* headers describe the steady (longest) window, as Klaviyo's do.
        self._steady = max(self._windows, key=lambda w: w.seconds)

    def acquire(self, now: float) -> Decision:
        """Admit and count a request if every window has room; else refuse it with a Retry-After
        of the longest wait."""
        for window in self._windows:
            window.roll(now)
        full = [w for w in self._windows if w.count >= w.limit]
        if full:
            wait = max(w.reset_in(now) for w in full)
            return Decision(False, (("Retry-After", str(max(1, math.ceil(wait)))),))
        for window in self._windows:
            window.count += 1
        steady = self._steady
        return Decision(
            True,
            (
                ("RateLimit-Limit", self._limit_header()),
                ("RateLimit-Remaining", str(steady.limit - steady.count)),
                ("RateLimit-Reset", str(max(0, math.ceil(steady.reset_in(now))))),
            ),
        )

    def _limit_header(self) -> str:
        """`RateLimit-Limit` as Klaviyo sends it (the IETF draft's form, recorded from the
        live API): the shortest window's quota, then every window's as `quota;w=seconds`,
        e.g. "75, 75;w=1, 750;w=60". One window alone: its quota."""
        if len(self._windows) == 1:
            return str(self._windows[0].limit)
        ordered = sorted(self._windows, key=lambda w: w.seconds)
        # The draft gives a window in whole seconds: a shorter one (tests) is rounded up.
        windows = ", ".join(f"{w.limit};w={math.ceil(w.seconds)}" for w in ordered)
        return f"{ordered[0].limit}, {windows}"


class Quotas:
    """Windows per operation (a mapping), or one set shared by every operation (a sequence)."""

    def __init__(self, limits: Limits | Mapping[str, Limits], operations: Collection[str]) -> None:
        self._shared: FixedWindows | None = None
        self._per_operation: dict[str, FixedWindows] = {}
        if isinstance(limits, Mapping):
            unknown = sorted(set(limits) - set(operations))
            if unknown:
                raise ValueError(f"rate limits for no such operation: {', '.join(unknown)}")
            self._per_operation = {name: FixedWindows(w) for name, w in limits.items() if w}
        else:
            self._shared = FixedWindows(limits)

    def acquire(self, operation: str | None, now: float) -> Decision | None:
        """Admit a request to `operation` (None: no operation is served there); None: unlimited."""
        if self._shared is not None:
            return self._shared.acquire(now)
        windows = self._per_operation.get(operation) if operation else None
        return windows.acquire(now) if windows is not None else None
