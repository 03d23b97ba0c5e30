"""Test isolation for the client's process-wide rate-limit state."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .. import _ratelimit
from .._ratelimit import MemoryRateLimiter


@contextlib.contextmanager
def isolated_rate_limits() -> Iterator[MemoryRateLimiter]:
    """Within the block, clients built with the default limiter share a fresh, empty one.

    The default limiter is process-wide (clients of one account share one budget), so without
    this a 429's pause or a spent budget in one test would slow the next. The previous
    limiter is restored on exit. The `fake_klaviyo` fixtures use it for every test:

        with isolated_rate_limits(), FakeKlaviyo() as fake:
            ...
    """
    fresh = MemoryRateLimiter()
    # `default_limiter()` hands it to the clients built from here on.
    previous, _ratelimit._DEFAULT_LIMITER = _ratelimit._DEFAULT_LIMITER, fresh
    try:
        yield fresh
    finally:
        _ratelimit._DEFAULT_LIMITER = previous
