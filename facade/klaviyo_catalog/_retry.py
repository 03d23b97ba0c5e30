"""When to retry, and how long to wait: `RetryPolicy` and the Retry-After header. Pure
functions: the request loop (`_exchange.Exchange`) does the waiting.

One retry layer only (the official SDK stacks two, turning one persistent 429 into 12
requests). Everything here is a GET, so retrying is always safe. A loop of our own is used
rather than a retry library: the decision needs the response (Retry-After, status), the waits
must pass the rate limiter (a 429 pauses the whole account) and fit the call's deadline, an
expired OAuth token is refreshed once without counting as a retry, and the sync and async
clients share it as one sans-I/O flow.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

import attrs

from . import _checks as checks
from ._header_numbers import http_date, read_digits

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """`Retry-After` in seconds, per RFC 9110: `delay-seconds` (ASCII digits only: not "2.5",
    "5_0", "1e3" or "+5", which Python's float() would take) or an HTTP-date (`now`: the wall
    clock to count from, time.time() by default; a date past means 0). None if absent, if it
    is neither, or if it is more than a year away."""
    value = headers.get("retry-after", "")
    seconds: float | None = read_digits(value)
    if seconds is None:
        when = http_date(value)
        if when is None:
            return None
        seconds = max(0.0, when.timestamp() - (time.time() if now is None else now))
    # Beyond a year (the largest `max_retry_after`), not a wait but garbage: as if absent.
    return float(seconds) if seconds <= checks.MAX_RETRY_AFTER else None


@attrs.frozen
class RetryPolicy:
    """`max_retries` extra attempts; capped exponential backoff with full jitter.

    `deadline` (seconds) caps the total time of one call, waits included. A 429 asking for
    more than `max_retry_after` seconds is not waited for: the call raises `RateLimitError`
    at once. `max_retry_after` also caps a success's `RateLimit-Reset`: a budget the server
    says is spent holds the account's later calls no longer than that. It is at most a year,
    beyond which no Retry-After is believed anyway. A field out of
    range is a ConfigurationError.
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
        # What configures a client: ConfigurationError (see `_checks`).
        checks.retries(self.max_retries)
        checks.seconds(self.backoff_base, "backoff_base")
        checks.seconds(self.backoff_cap, "backoff_cap")
        checks.seconds(self.retry_after_jitter, "retry_after_jitter", zero=True)
        checks.optional_seconds(self.deadline, "deadline")
        checks.retry_after_ceiling(self.max_retry_after)

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
