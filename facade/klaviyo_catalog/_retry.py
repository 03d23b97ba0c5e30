"""When to retry, and how long to wait. Pure functions: the request loop does the waiting.

One retry layer only (the official SDK stacks two, turning one persistent 429 into 12
requests). Everything here is a GET, so retrying is always safe. A small loop of our own is
used rather than a retry library: the decision needs the response (Retry-After, status), the
waits must go through the rate limiter and be shared by the sync and async clients, and the
loop is a dozen lines.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping

import attrs

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


#: A Retry-After beyond this (a year) is not a wait but garbage, and is treated as absent.
ABSURD_RETRY_AFTER = 366 * 86400.0


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """`Retry-After` in seconds, given as a number or as an HTTP-date; None if absent, or if it
    is not a finite, non-negative number of seconds within a year (`nan`, `1e308`, `-5`)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            import email.utils  # rare (an HTTP-date), and costly to import at start-up

            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:
            return None
        # A date already past means "now".
        seconds = max(0.0, when.timestamp() - (time.time() if now is None else now))
    if not (math.isfinite(seconds) and 0 <= seconds <= ABSURD_RETRY_AFTER):
        return None
    return seconds


@attrs.frozen
class RetryPolicy:
    """`max_retries` extra attempts; capped exponential backoff with full jitter.

    `deadline` (seconds) caps the total time of one call, waits included. A 429 asking for
    more than `max_retry_after` seconds is not waited for: the call raises `RateLimitError`
    at once.
    """

    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    deadline: float | None = None
    max_retry_after: float = 60.0
    # A 429's Retry-After is the earliest useful moment; the jitter spreads clients after it.
    retry_after_jitter: float = 0.25
    rng: random.Random = attrs.field(factory=random.Random, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not (math.isfinite(self.backoff_base) and self.backoff_base > 0):
            raise ValueError("retry_backoff must be finite and positive")
        if self.deadline is not None and not (math.isfinite(self.deadline) and self.deadline > 0):
            raise ValueError("deadline must be finite and positive")
        if not (math.isfinite(self.max_retry_after) and self.max_retry_after >= 0):
            raise ValueError("max_retry_after must be finite and >= 0")

    def backoff(self, retry_number: int) -> float:
        """The wait before retry number `retry_number` (1-based) of a 5xx or transport error."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (retry_number - 1))
        return self.rng.uniform(0, ceiling)

    def wait_after_429(self, retry_after: float | None, retry_number: int) -> float:
        """The wait before retrying a 429: its Retry-After plus jitter, else at least 1 s."""
        if retry_after is None:
            return max(1.0, self.backoff(retry_number))
        return retry_after + self.rng.uniform(0, self.retry_after_jitter)

    def should_retry_status(self, status_code: int) -> bool:
        """Whether an answer with this status is worth another attempt (429 and 5xx)."""
        return status_code in RETRYABLE_STATUSES
