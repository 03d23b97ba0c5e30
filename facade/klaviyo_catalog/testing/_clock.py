"""`VirtualClock`: a client's time for an app's tests, passing only when the client waits."""

from __future__ import annotations

import math
from typing import Any

import attrs

from .._client import AsyncCatalogJobs, CatalogJobs
from .._core import Core
from .._flow import Action, Sleep
from ..errors import ConfigurationError, InvalidRequestError


class VirtualClock:
    """Virtual monotonic time: it moves only by `advance`, or by a client's waits once attached.

        clock = VirtualClock()
        limiter = MemoryRateLimiter(clock=clock)  # the budget counted on the same time
        with FakeKlaviyo() as fake, CatalogJobs(
            fake.api_key, base_url=fake.base_url, rate_limiter=limiter
        ) as kc:
            clock.attach(kc)
            job_id = fake.add_job("item-update", status="processing", polls_to_complete=3)
            kc.wait_for_job(job_id, kind="item-update", poll_interval=60, timeout=3600)
            assert clock.now - 1000.0 >= 120  # two polls' waits, taken at once

    Attached to a client (`attach`), it is that client's time: each call's deadline, retry
    backoffs, `Retry-After` and rate-limit waits, and the waits' polling read it, and every
    wait the client would sleep advances it instead, at once. Requests still go over the
    client's transport: FakeKlaviyo (whose jobs finish after `polls_to_complete` polls), or an
    `httpx.MockTransport` given as `http_client`. A `MemoryRateLimiter(clock=clock)` counts the
    budget on it too; the default limiter reads the real clock.

    `now` is the time reached, in seconds, from an arbitrary start (as `time.monotonic()`'s
    is); calling the clock returns it, so it can be given wherever a clock is taken.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = _seconds(start, "start", ConfigurationError)

    def __call__(self) -> float:
        return self.now

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now!r})"

    def advance(self, seconds: float) -> None:
        """Let `seconds` (finite, >= 0) pass; anything else raises InvalidRequestError."""
        passed = _seconds(seconds, "seconds", InvalidRequestError)
        if passed < 0:
            raise InvalidRequestError(
                f"seconds must be >= 0 (time does not go back), got {seconds!r}"
            )
        self.now += passed

    def attach(self, client: CatalogJobs | AsyncCatalogJobs) -> None:
        """Make `client` run on this clock (see the class docstring), from its next call on;
        clients it makes with `with_options()` afterwards run on it too."""
        if not isinstance(client, CatalogJobs | AsyncCatalogJobs):
            raise ConfigurationError(
                f"attach takes a CatalogJobs or an AsyncCatalogJobs, got {type(client).__name__}"
            )
        core_on_clock(client, self)
        # The one place a client waits is its driver's `_perform(Sleep)`: a Sleep advances the
        # clock instead; any other action is performed as the client's class does. The client
        # is bound here once: a with_options() copy, which shares its pool, may use it.
        if isinstance(client, CatalogJobs):
            perform = type(client)._perform
            sync_client = client

            def on_clock(action: Action) -> Any:
                if isinstance(action, Sleep):
                    return self.advance(action.seconds)
                return perform(sync_client, action)

            client._perform = on_clock  # type: ignore[method-assign]
        else:
            perform_async = type(client)._perform
            async_client = client

            async def on_clock_async(action: Action) -> Any:
                if isinstance(action, Sleep):
                    return self.advance(action.seconds)
                return await perform_async(async_client, action)

            client._perform = on_clock_async  # type: ignore[method-assign]


def core_on_clock(client: CatalogJobs | AsyncCatalogJobs, clock: VirtualClock) -> Core:
    """Make `client`'s deadlines, retries and waits read `clock` (not its sleeps: `attach`
    does that too), and return its core: the flows the project's tests of the sans-I/O core
    drive themselves."""
    settings = attrs.evolve(client._settings, clock=clock)
    client._settings = settings
    client._core = Core(settings)
    return client._core


def _seconds(value: object, name: str, error: type[ValueError]) -> float:
    """`value` as seconds: a finite int or float (not a bool), else `error`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise error(f"{name} must be a finite number of seconds, got {value!r:.40}")
    return float(value)
