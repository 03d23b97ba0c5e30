"""Shared helpers of the tests: the one sync/async runner (`use`, `call`, `Loop`, `run_async`),
which can take an app-supplied httpx client, and transports that make real connections fail.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Literal, TypeVar

import httpx
from hypothesis import HealthCheck, settings
from klaviyo_catalog import AsyncCatalogJobs, CatalogJobs, MemoryRateLimiter, Rate
from klaviyo_catalog.testing import Fault, VirtualClock

# Hypothesis profiles of the hardening tests: "ci" by default, "fuzz" for `make fuzz`. Applied
# per test (`@PROFILE`) rather than with load_profile, so that no other test module is affected.
_COMMON: dict[str, Any] = {
    "deadline": None,  # loopback HTTP has the odd slow example; only the total matters
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=100, **_COMMON)  # make fuzz: 50x as many
settings.register_profile("fuzz", max_examples=5000, **_COMMON)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

T = TypeVar("T")
Mode = Literal["sync", "async"]
MODES: tuple[Mode, ...] = ("sync", "async")
# Distinctive, so that a search for it in logs or tracebacks cannot match anything else.
SECRET_KEY = "pk_hardening_5ecret_9f3a1c7e2b4d6f80a1b2c3d4"
FAST_RATES = [Rate(100_000, 1.0)]  # the fuzz loops must never wait on the client's limiter

# Builds the app's own httpx client for a mode; called inside the event loop for "async".
HttpFactory = Callable[[Mode], httpx.Client | httpx.AsyncClient]


def app_http_client(mode: Mode) -> httpx.Client | httpx.AsyncClient:
    """An app's own httpx client, with httpx's defaults (an `HttpFactory`)."""
    return httpx.Client() if mode == "sync" else httpx.AsyncClient()


def options(base_url: str, api_key: str, **overrides: Any) -> dict[str, Any]:
    """Client options with tiny retry waits and a rate-limit budget of the test's own."""
    return {
        "api_key": api_key,
        "base_url": base_url,
        "retry_backoff": 0.01,
        "rate_limiter": MemoryRateLimiter(),
        **overrides,
    }


class Loop:
    """The one event loop runner of the tests: every coroutine a test runs goes through one.

    `with Loop() as loop:` keeps one loop for a whole test, so that an async client made in one
    step is used in the next; `run_async(coro)` is a loop of its own for one coroutine, as
    `asyncio.run` (each closes its loop, and the async client's connections with it).
    """

    def __init__(self) -> None:
        self._runner = asyncio.Runner()

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Cancel what is left on the loop and close it."""
        self._runner.close()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run `awaitable` to its end on this loop."""

        async def main() -> T:
            return await awaitable

        return self._runner.run(main())

    def settle(self, result: Any) -> Any:
        """What a call of either client returned, finished: an awaitable awaited, an async
        iterator or an iterator collected into a list, anything else as it is."""
        if inspect.isawaitable(result) or hasattr(result, "__aiter__"):
            return self.run(_settled(result))
        return _collected(result)


def _collected(result: Any) -> Any:
    return list(result) if isinstance(result, Iterator) else result


async def _settled(result: Any) -> Any:
    if hasattr(result, "__aiter__"):
        return [item async for item in result]
    if inspect.isawaitable(result):
        return await result
    return _collected(result)


def run_async(awaitable: Awaitable[T]) -> T:
    """Run `awaitable` on a fresh event loop, closed after it (what `asyncio.run` does)."""
    with Loop() as loop:
        return loop.run(awaitable)


def use(
    mode: Mode,
    client_options: dict[str, Any],
    work: Callable[[Any], Any],
    *,
    http: HttpFactory | None = None,
    clock: VirtualClock | None = None,
) -> Any:
    """`work(kc)` on a fresh CatalogJobs or AsyncCatalogJobs, per `mode`, closed after it.

    What `work` returns is settled (`Loop.settle`): awaited, or collected if an iterator, so
    `lambda kc: kc.iter_item_create_jobs()` gives a list in either mode. A `work` that needs
    its own async code returns a coroutine (e.g. of an inner `async def`) when `kc` is async.
    `http`, if given, makes the app's own httpx client for the mode, closed after the call.
    `clock`, if given, is attached to the client (`VirtualClock.attach`): its deadline, retries
    and waits run on it, taking no real time, while the wire stays real.
    """
    if mode == "sync":
        app_client = http("sync") if http is not None else None
        extra: dict[str, Any] = {"http_client": app_client} if app_client is not None else {}
        try:
            with CatalogJobs(**client_options, **extra) as kc:
                if clock is not None:
                    clock.attach(kc)
                return _collected(work(kc))
        finally:
            if isinstance(app_client, httpx.Client):
                app_client.close()

    async def main() -> Any:
        # Built inside the loop: an async client belongs to the loop it is first used on.
        app_client = http("async") if http is not None else None
        extra: dict[str, Any] = {"http_client": app_client} if app_client is not None else {}
        try:
            async with AsyncCatalogJobs(**client_options, **extra) as kc:
                if clock is not None:
                    clock.attach(kc)
                return await _settled(work(kc))
        finally:
            if isinstance(app_client, httpx.AsyncClient):
                await app_client.aclose()

    return run_async(main())


def consume(items: Iterator[T] | AsyncIterator[T], each: Callable[[T], object]) -> Any:
    """`each(item)` for every item of a sync or async iterator (e.g. an `iter_*` walk of either
    client), as they come: for `use`, whose `work` it finishes. An error ends it after the
    items before it were handed over, so a test sees how far a walk got."""
    if isinstance(items, Iterator):
        for item in items:
            each(item)
        return None

    async def each_async() -> None:
        async for item in items:
            each(item)

    return each_async()


def call(
    mode: Mode,
    client_options: dict[str, Any],
    name: str,
    *args: Any,
    http: HttpFactory | None = None,
    clock: VirtualClock | None = None,
    **kwargs: Any,
) -> Any:
    """Run `name(*args, **kwargs)` on a fresh sync or async client; `iter_*` are collected."""
    return use(
        mode, client_options, lambda kc: getattr(kc, name)(*args, **kwargs), http=http, clock=clock
    )


def json_body(document: Any, status: int = 200, **headers: str) -> Fault:
    """A hand-made document served in place of the fake's own answer."""
    return Fault.body(status, json.dumps(document).encode(), headers=tuple(headers.items()))


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on: connecting to it is refused by the kernel at once."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


# --- transports whose first attempts meet a closed port -----------------------------------------


def _to_dead_port(request: httpx.Request, port: int) -> httpx.Request:
    url = request.url.copy_with(port=port)
    return httpx.Request(
        request.method, url, headers=request.headers, extensions=request.extensions
    )


class RefusingTransport(httpx.HTTPTransport):
    """Sends the first `refusals` attempts to a closed port (a real ECONNREFUSED), then
    delegates. Counts every attempt, which a refused connection never shows a server."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals
        self.attempts = 0
        self.dead_port = closed_port()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.refusals:
            request = _to_dead_port(request, self.dead_port)
        return super().handle_request(request)


class AsyncRefusingTransport(httpx.AsyncHTTPTransport):
    """`RefusingTransport` for httpx.AsyncClient."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals
        self.attempts = 0
        self.dead_port = closed_port()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.refusals:
            request = _to_dead_port(request, self.dead_port)
        return await super().handle_async_request(request)
