"""A rate limiter's admission that the flow may give up on while a worker thread makes it.

A limiter behind a network round trip (RedisRateLimiter) admits a request in a worker thread.
If the flow stops waiting for it (its deadline passed, its task was cancelled), the ticket
the round trip still brings back would reach nobody, and its slot would stay taken until the
limiter gives up on it (RedisRateLimiter's `stale_after`, ten minutes by default). So exactly
one of the two sides hands it back: the flow, if the ticket had arrived, else the round trip.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ._ratelimit import Rate, RateLimiter, Ticket, Wait


class Admission:
    """`limiter.try_acquire(account, operation, rates)`, called once; `complete` hands back a
    ticket nobody will use."""

    __slots__ = ("_abandoned", "_args", "_complete", "_grant", "_limiter", "_lock")

    def __init__(
        self,
        limiter: RateLimiter,
        complete: Callable[[Ticket], None],
        account: str,
        operation: str,
        rates: Sequence[Rate],
    ) -> None:
        self._limiter = limiter
        self._complete = complete
        self._args = (account, operation, rates)
        self._lock = threading.Lock()
        self._grant: Ticket | Wait | None = None
        self._abandoned = False

    def __call__(self) -> Ticket | Wait:
        grant = self._limiter.try_acquire(*self._args)
        with self._lock:
            given_up = self._abandoned
            self._grant = grant
        if given_up and isinstance(grant, Ticket):
            self._complete(grant)  # in the worker thread: nobody waits for it
        return grant

    def abandon(self) -> None:
        """The flow will not take the grant: a ticket that has arrived is handed back now, one
        still on its way when it arrives."""
        with self._lock:
            self._abandoned = True
            grant = self._grant
        if isinstance(grant, Ticket):
            self._complete(grant)
