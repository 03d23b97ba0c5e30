"""The one virtual clock of the tests, and the drivers that run the sans-I/O core on it.

Time passes only when the test or the simulation says so: no sockets, no real sleeps.

- `VirtualClock`: the library's (`klaviyo_catalog.testing`); pass it as a limiter's clock, and
  `attach` it to a client to run the client on it.
- `virtual_core(clock, ...)`: the `Core` a real `CatalogJobs` would run, on that clock.
- `VirtualDriver.run(flow)`: one flow against a scripted server, as the real sync driver runs
  it: `Sleep` advances the clock; `Send` asks the test's `server` for a `Served` (a delay,
  then a status and body chunks each after its own delay, or an exception) and plays it out,
  honouring the request's read timeout per read, as a socket does, and the Send's deadline, as
  the client's own sockets do; `Call` asks the test's `calls` (or just runs the function).
- `Simulation`: many flows at once, with network latency each way, against a server that sees
  each request at its arrival time (`WindowServer` counts arrivals in fixed windows).
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import httpx
from klaviyo_catalog import CatalogJobs, MemoryRateLimiter, Rate, RateLimiter
from klaviyo_catalog._core import Core
from klaviyo_catalog._flow import Call, Flow, Send, Sleep
from klaviyo_catalog.testing import VirtualClock
from klaviyo_catalog.testing._clock import core_on_clock
from klaviyo_catalog.testing._ratelimit import FixedWindows

from tests.support import documents as docs

API_KEY = "pk_virtual_0123456789abcdef"
# Rate limits that never make a flow wait, for tests whose subject is not the limiter.
UNLIMITED = (Rate(1_000_000, 1.0),)


def virtual_core(
    clock: VirtualClock, *, limiter: RateLimiter | None = None, **options: Any
) -> Core:
    """The core of a `CatalogJobs` built with `options`, on `clock`: the flows it would run.

    The limiter is a fresh `MemoryRateLimiter` on the clock unless one is given; the rate
    limits are `UNLIMITED` unless `rate_limits=` says otherwise (None: the spec's).
    """
    options.setdefault("rate_limits", list(UNLIMITED))
    client = CatalogJobs(
        options.pop("api_key", API_KEY),
        base_url=options.pop("base_url", "http://127.0.0.1:9"),
        rate_limiter=limiter if limiter is not None else MemoryRateLimiter(clock=clock),
        **options,
    )
    client.close()  # only its flows are used, driven here
    return core_on_clock(client, clock)


# --- one flow, a scripted server ---------------------------------------------------------------


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
        """A 200 with the document of job `job_id`, after `delay`."""
        return cls.body(docs.single(docs.job(job_id)), delay=delay)

    @classmethod
    def body(cls, document: Any, status: int = 200, delay: float = 0.0) -> Served:
        """`document` as JSON, in one chunk, after `delay`."""
        return cls(status=status, chunks=[(0.0, json.dumps(document).encode())], delay=delay)


@attrs.define
class VirtualDriver:
    """Runs one flow to its end on `clock`, with `server` answering each Send."""

    clock: VirtualClock
    server: Callable[[Send], Served]
    calls: Callable[[Call, VirtualClock], Any] | None = None
    keep_sends: bool = True  # False for long runs whose memory is measured
    sends: list[Send] = attrs.field(factory=list)
    sleeps: list[float] = attrs.field(factory=list)
    call_timeouts: list[float | None] = attrs.field(factory=list)

    def run(self, flow: Flow[Any]) -> Any:
        """The flow's result (or its exception, raised)."""
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
                left = deadline - self.clock.now
                limit = min(limit, left) if limit else left
            if limit is not None and seconds > limit:
                self.clock.advance(max(limit, 0.0))
                return False
            self.clock.advance(seconds)
            return True

        def chunks() -> Iterator[bytes]:
            for delay, chunk in served.chunks:
                if not wait(delay):
                    raise httpx.ReadTimeout("timed out", request=send.request)
                yield chunk

        try:
            if not wait(served.delay):
                raise httpx.ReadTimeout("timed out", request=send.request)
            if served.error is not None:
                raise served.error("injected", request=send.request)
            response = httpx.Response(
                served.status,
                headers=list(served.headers),
                stream=Played(chunks()),
                request=send.request,
            )
            return send.read(response)
        except Exception as exc:  # the same as the real drivers: the flow types it
            return exc


class Played(httpx.SyncByteStream):
    """A served body's chunks, played out as they are read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks


# --- many flows at once, with latency ----------------------------------------------------------


@attrs.define
class Task:
    """One flow in a simulation: its result or error once done, and the sleeps it asked for."""

    flow: Flow[Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = False
    finished_at: float | None = None
    sleeps: list[float] = attrs.field(factory=list)


Server = Callable[[httpx.Request, float], "httpx.Response | httpx.HTTPError"]


class Simulation:
    """Runs flows concurrently on a virtual clock. Each Send reaches `server` after `uplink()`
    seconds, and its answer reaches the flow `downlink()` seconds after that."""

    def __init__(
        self,
        clock: VirtualClock,
        server: Server,
        *,
        uplink: Callable[[], float] = lambda: 0.0,
        downlink: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.clock = clock
        self.server = server
        self.uplink = uplink
        self.downlink = downlink
        self._events: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._order = itertools.count()

    def start(self, flow: Flow[Any], at: float | None = None) -> Task:
        """Schedule `flow` to start at `at` (default: now)."""
        task = Task(flow)
        self._at(self.clock.now if at is None else at, self._step, task, None)
        return task

    def run(self, until: float | None = None) -> None:
        """Process events in time order, until none is left (or the clock would pass `until`)."""
        while self._events and (until is None or self._events[0][0] <= until):
            when, _, callback, args = heapq.heappop(self._events)
            self.clock.now = max(self.clock.now, when)
            callback(*args)
        if until is not None:
            self.clock.now = max(self.clock.now, until)

    def _at(self, when: float, callback: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._events, (when, next(self._order), callback, args))

    def _step(self, task: Task, outcome: Any) -> None:
        try:
            action = task.flow.send(outcome)
        except StopIteration as stop:
            task.result, task.done, task.finished_at = stop.value, True, self.clock.now
            return
        except Exception as exc:
            task.error, task.done, task.finished_at = exc, True, self.clock.now
            return
        now = self.clock.now
        if isinstance(action, Sleep):
            task.sleeps.append(action.seconds)
            self._at(now + action.seconds, self._step, task, None)
        elif isinstance(action, Call):
            try:
                result = action.function()
            except Exception as exc:
                result = exc
            self._at(now, self._step, task, result)
        elif isinstance(action, Send):
            self._at(now + self.uplink(), self._serve, task, action.request)
        else:
            raise AssertionError(f"unknown action {action!r}")

    def _serve(self, task: Task, request: httpx.Request) -> None:
        response = self.server(request, self.clock.now)
        self._at(self.clock.now + self.downlink(), self._step, task, response)


def job_response(request: httpx.Request, headers: Sequence[tuple[str, str]] = ()) -> httpx.Response:
    """A 200 with a job document shaped for the request's revision."""
    job_id = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    shape = docs.OLD if request.headers["revision"] < "2023-12-15" else docs.NEW
    body = json.dumps(docs.single(docs.job(job_id, shape=shape))).encode()
    headers = [("Content-Type", request.headers["accept"]), *headers]
    return httpx.Response(200, content=body, headers=headers, request=request)


class WindowServer:
    """Klaviyo's rate limiting by arrival time: fixed windows (as FakeKlaviyo counts them), with
    RateLimit-* on a success and Retry-After on a 429. Records every arrival and status."""

    def __init__(self, limits: Sequence[tuple[int, float]]) -> None:
        self.windows = FixedWindows(limits)
        self.arrivals: list[float] = []  # of the requests it admitted
        self.statuses: list[int] = []

    def __call__(self, request: httpx.Request, now: float) -> httpx.Response:
        decision = self.windows.acquire(now)
        if not decision.admitted:
            self.statuses.append(429)
            body = json.dumps(docs.error(429, "Request was throttled.")).encode()
            return httpx.Response(429, content=body, headers=decision.headers, request=request)
        self.arrivals.append(now)
        self.statuses.append(200)
        return job_response(request, decision.headers)


def max_in_window(times: Sequence[float], seconds: float) -> int:
    """The most of `times` inside any half-open window [t, t + seconds): sliding, so every
    fixed window however aligned is covered too."""
    ordered = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= seconds:
            first += 1
        best = max(best, last - first + 1)
    return best
