"""`Settings`: everything a client was configured with, checked (by `_checks`) and frozen.

A client's flows read it; `with_options()` makes a changed copy. It also answers the two
questions every request asks of the configuration: its headers, and the limits its
operation is held to.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence

import attrs
import httpx
from klaviyo_catalog_api.catalog_spec import MEDIA_TYPE

from ._auth import Credential
from ._body import ACCEPT_ENCODING, DEFAULT_MAX_RESPONSE_BYTES
from ._checks import RateLimits
from ._operations import Operation
from ._ratelimit import Rate, RateLimiter
from ._retry import RetryPolicy


@attrs.frozen
class Settings:
    """Everything a client was configured with. The key stays out of repr."""

    credential: Credential = attrs.field(repr=False)
    account: str  # what the limiter is keyed by: named by the app, or a hash of the credential
    revision: str
    base_url: str
    timeout: httpx.Timeout
    retry: RetryPolicy
    limiter: RateLimiter
    rate_limits: RateLimits
    user_agent: str
    clock: Callable[[], float] = time.monotonic
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def headers(self, op: Operation) -> dict[str, str]:
        """Every request's headers, the credential's included."""
        return {
            "Authorization": self.credential.authorization(),
            "Accept": MEDIA_TYPE,  # the generated revision's
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": self.user_agent,
            "revision": self.revision,
        }

    def secrets(self) -> tuple[str, ...]:
        """The credentials, to keep out of anything shown (response headers echoed back)."""
        return self.credential.secrets()

    def rates(self, op: Operation) -> Sequence[Rate]:
        """The limits this operation is held to: the app's override, else the spec's."""
        limits = self.rate_limits
        if isinstance(limits, Mapping):
            limits = limits.get(op.name)
        return _spec_rates(op.spec.rate_limits) if limits is None else limits


@functools.cache
def _spec_rates(rate_limits: tuple[tuple[int, float], ...]) -> tuple[Rate, ...]:
    """The spec's limits of an operation as Rates, made once: the limiter knows a tuple it has
    seen by its identity, where a new list each call cost a comparison of every Rate."""
    return tuple(Rate(count, seconds) for count, seconds in rate_limits)
