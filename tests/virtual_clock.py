"""Drive the sans-I/O core on a virtual clock: time passes only when the test says so.

`VirtualDriver.run(flow)` answers each action the way the real sync driver would, with time
simulated: `Sleep` advances the clock; `Send` asks the test's `server` for a `Served` (a delay,
then a status and body chunks each after its own delay, or an exception) and plays it out,
honouring the request's read timeout per read, as a socket does, and the Send's deadline, as
the client's own sockets do; `Call` asks the test's `calls` (or just runs the function).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import httpx
from klaviyo_catalog import CatalogJobs, Rate
from klaviyo_catalog._core import Call, Core, Flow, Send, Sleep
from klaviyo_catalog._ratelimit import MemoryRateLimiter, RateLimiter

from tests import documents as docs


class VirtualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


@attrs.frozen
class Served:
    """What the server does with one request: after `delay`, either raise `error` or answer
    `status` with `headers`, then each (delay, bytes) chunk of the body."""

    status: int = 200
    chunks: Sequence[tuple[float, bytes]] = ()
    headers: Sequence[tuple[str, str]] = (("Content-Type", "application/json"),)
    delay: float = 0.0
    error: type[httpx.TransportError] | None = None

    @classmethod
    def job(cls, job_id: str = "JOB1", delay: float = 0.0) -> Served:
        return cls.body(docs.single(docs.job(job_id)), delay=delay)

    @classmethod
    def body(cls, document: Any, status: int = 200, delay: float = 0.0) -> Served:
        import json

        return cls(status=status, chunks=[(0.0, json.dumps(document).encode())], delay=delay)


@attrs.define
class VirtualDriver:
    clock: VirtualClock
    server: Callable[[Send], Served]
    calls: Callable[[Call, VirtualClock], Any] | None = None
    keep_sends: bool = True  # False for long runs whose memory is measured
    sends: list[Send] = attrs.field(factory=list)
    sleeps: list[float] = attrs.field(factory=list)
    call_timeouts: list[float | None] = attrs.field(factory=list)

    def run(self, flow: Flow[Any]) -> Any:
        outcome: Any = None
        while True:
            try:
                action = flow.send(outcome)
            except StopIteration as done:
                return done.value
            if isinstance(action, Sleep):
                self.sleeps.append(action.seconds)
                self.clock.advance(action.seconds)
                outcome = None
            elif isinstance(action, Call):
                self.call_timeouts.append(action.timeout)
                try:
                    if self.calls is not None:
                        outcome = self.calls(action, self.clock)
                    else:
                        outcome = action.function()
                except Exception as exc:
                    outcome = exc
            else:
                if self.keep_sends:
                    self.sends.append(action)
                outcome = self._send(action)

    def _send(self, send: Send) -> Any:
        served = self.server(send)
        started = self.clock.now
        read_timeout = send.request.extensions["timeout"]["read"]
        deadline = started + send.timeout if send.timeout is not None else None

        def wait(seconds: float) -> bool:
            """Let `seconds` pass for one read; False if the read times out first."""
            limit = read_timeout
            if deadline is not None:
                limit = (
                    min(limit, deadline - self.clock.now) if limit else deadline - self.clock.now
                )
            if limit is not None and seconds > limit:
                self.clock.advance(max(limit, 0.0))
                return False
            self.clock.advance(seconds)
            return True

        try:
            if not wait(served.delay):
                raise httpx.ReadTimeout("timed out", request=send.request)
            if served.error is not None:
                raise served.error("injected", request=send.request)
            response = httpx.Response(
                served.status, headers=list(served.headers), request=send.request
            )
            body = send.receive(response)
            for delay, chunk in served.chunks:
                if not wait(delay):
                    raise httpx.ReadTimeout("timed out", request=send.request)
                body.feed(chunk)
            return body.response()
        except Exception as exc:  # the same as the real drivers: the flow types it
            return exc


def virtual_core(
    clock: VirtualClock,
    *,
    limiter: RateLimiter | None = None,
    rates: Sequence[Rate] = (Rate(1_000_000, 1.0),),
    **options: Any,
) -> Core:
    """The core of a real client, its clock replaced by `clock`."""
    client = CatalogJobs(
        "pk_virtual",
        base_url="http://127.0.0.1:9",
        rate_limiter=limiter if limiter is not None else MemoryRateLimiter(clock=clock),
        rate_limits=list(rates),
        **options,
    )
    client.close()
    return Core(attrs.evolve(client._settings, clock=clock), client._http.build_request)
