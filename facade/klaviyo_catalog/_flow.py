"""What a flow asks of its driver, and the one step of every driver's loop.

Each public call is a generator (a "flow") that yields an action, `Send(request)`,
`Sleep(seconds)` or `Call(function)`, and receives its outcome; it does no I/O itself. A
driver (`CatalogJobs` blocking, `AsyncCatalogJobs` awaiting, a test on a virtual clock)
performs each action and hands the outcome back with `step`, until the flow is `Done`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

import attrs
import httpx

from ._body import DEFAULT_MAX_RESPONSE_BYTES, bounded
from ._deadline import Deadline

T = TypeVar("T")


@attrs.frozen
class Send:
    """Send `request` and read its response's body into it within the bounds (`read`), all
    within `timeout` seconds (None: no deadline). The outcome is that `httpx.Response`, the one
    the transport returned, or the exception raised: an `httpx.HTTPError`, a `KlaviyoError`
    from the Body, or a `TimeoutError` when the driver's timer (or the wait for an app client's
    exchange) ran out."""

    request: httpx.Request
    timeout: float | None = None
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    deadline: Deadline = attrs.field(factory=lambda: Deadline(time.monotonic, None))
    what: str = "request"

    def read(self, response: httpx.Response) -> httpx.Response:
        """`response` (its headers have arrived) with its body read in, decoded and bounded
        (`_body.bounded`); closed, its connection free, either way."""
        try:
            bounded(response, self.max_bytes, self.deadline, self.what)
            response.read()
        finally:
            response.close()
        return response

    async def aread(self, response: httpx.Response) -> httpx.Response:
        """`read`, for an async response."""
        try:
            bounded(response, self.max_bytes, self.deadline, self.what)
            await response.aread()
        finally:
            await response.aclose()
        return response


@attrs.frozen
class Sleep:
    """Wait this long (the driver's time.sleep or asyncio.sleep, or a test's virtual clock)."""

    seconds: float


@attrs.frozen
class Call:
    """Run a function that does blocking I/O (a Redis round trip), giving up after `timeout`
    seconds (None: no limit). The drivers run it in a worker thread, so the event loop never
    waits on it and a stalled server cannot hold a call past its deadline."""

    function: Callable[[], Any]
    timeout: float | None = None


Action = Send | Sleep | Call
# What a flow receives back: after a Send, the httpx.Response or the exception (see Send);
# after a Call, its result or the exception it raised (a TimeoutError if it did not finish in
# time); after a Sleep, None.
Flow = Generator[Action, Any, T]


@attrs.frozen
class Done(Generic[T]):
    """A flow has returned `value`: what `step` gives instead of a next action."""

    value: T


def step(flow: Flow[T], outcome: Any) -> Action | Done[T]:
    """Hand the last action's outcome to `flow` (None to start it); its next action, or its
    result. Each driver's loop is only this and how it performs the action, sync or async:
    `with closing(flow): ... while not isinstance(s, Done): s = step(flow, perform(s))`."""
    try:
        return flow.send(outcome)
    except StopIteration as done:
        return Done(done.value)
