"""A virtual clock that drives the sans-I/O core: many calls at once, network latency and a
server that counts arrivals, in simulated time. No sockets, no real sleeps, fully seeded."""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import httpx
from klaviyo_catalog import CatalogJobs
from klaviyo_catalog._core import Call, Core, Flow, Send, Sleep
from klaviyo_catalog._ratelimit import RateLimiter
from klaviyo_catalog.testing._ratelimit import FixedWindows

from tests import documents

API_KEY = "pk_virtual_0123456789abcdef"


class VirtualClock:
    """The time the simulation has reached; pass it as a limiter's and a core's clock."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def make_core(clock: VirtualClock, limiter: RateLimiter, **options: Any) -> Core:
    """The core a `CatalogJobs` built with these options would run, on the virtual clock."""
    kc = CatalogJobs(API_KEY, rate_limiter=limiter, **options)
    kc.close()  # only its request builder is used, which does no I/O
    return Core(attrs.evolve(kc._settings, clock=clock), kc._http.build_request)


@attrs.define
class Task:
    """One flow in the simulation: its result or error once done, and the sleeps it asked for."""

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
    shape = documents.OLD if request.headers["revision"] < "2023-12-15" else documents.NEW
    body = json.dumps(documents.single(documents.job(job_id, shape=shape))).encode()
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
            body = json.dumps(documents.error(429, "Request was throttled.")).encode()
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
