"""A client's connections, how many, and how they follow the process and the event loop.

A client and the clients its `with_options()` made share one `Pool`: the transport its calls
go through, the client's own (`_transport`) or the app's `http_client` (`_app_client`). The
own one is rebuilt in a process forked from the one that built it and, for
`AsyncCatalogJobs`, under another event loop; an app's client stays the app's to replace.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx
from klaviyo_catalog_api.catalog_spec import KINDS, OPERATIONS, JobKind, OperationSpec

from ._app_client import AppClientTransport, AsyncAppClientTransport
from ._proxies import environment_proxy
from ._transport import AsyncOwnTransport, CookieStore, OwnTransport, async_pools, sync_pools
from .errors import ConfigurationError

if TYPE_CHECKING:
    import asyncio

#: The request latency the client's own pool is sized for: Klaviyo answers within 100-300 ms
#: from most of the world, and a pool sized for 300 ms has room to spare at 150.
DESIGN_LATENCY = 0.3
#: The fewest connections of the client's own pool: httpx's default keep-alive count.
MIN_CONNECTIONS = 20
# A call on a closed client: its own pool would otherwise quietly open new connections.
CLOSED = "the client is closed (its http_client too, if it was given one); make a new one"


def sustained_rate(rate_limits: Iterable[tuple[int, float]]) -> float:
    """Requests per second an operation's limits allow over time: its tightest window's."""
    return min(count / seconds for count, seconds in rate_limits)


def pool_size(
    kinds: Mapping[str, JobKind],
    operations: Mapping[str, OperationSpec],
    latency: float = DESIGN_LATENCY,
) -> int:
    """Connections enough for an app that uses every job kind's quota at once, each request
    taking `latency` seconds (Little's law: in flight = rate x latency). A kind's requests go
    to one of its operations at a time (an app waiting on it polls its list or its GETs), so a
    kind counts with its largest sustained rate; never fewer than MIN_CONNECTIONS."""
    rate = 0.0
    for kind in kinds.values():
        names = [name for name in (kind.get_operation, kind.list_operation) if name]
        rates = [sustained_rate(operations[n].rate_limits) for n in names if n in operations]
        rate += max(rates, default=0.0)
    return max(MIN_CONNECTIONS, math.ceil(rate * latency))


#: The size of the client's own pool, from the spec's limits: every connection it opens is kept
#: alive, and `AsyncCatalogJobs` queues calls beyond it in a semaphore. 20 connections cap a
#: client at 20 / latency (65 calls/s at 300 ms), below the quota of an app waiting on every
#: kind; httpx's 100-connection pool that keeps 20 alive thrashed (42 calls/s at 150 ms).
#: `make bench` measures it (section 4c).
POOL_CONNECTIONS = pool_size(KINDS, OPERATIONS)
#: An app's `httpx.AsyncClient` gets this many calls in flight: httpx's default keep-alive
#: count. (Its own limits are not readable through httpx's public API.)
APP_CLIENT_SLOTS = 20


SyncTransport = OwnTransport | AppClientTransport
AsyncTransport = AsyncOwnTransport | AsyncAppClientTransport
# Each has `is_closed` (the app's client's, for an app's transport) and an `exchange`.
T = TypeVar("T", bound=SyncTransport | AsyncTransport)


class Pool(Generic[T]):
    """The transport a client's calls go through. `renew`: how to build the client's own
    transport again (None for an app's client, which is used as it is)."""

    def __init__(self, transport: T, renew: Callable[[], T] | None, size: int) -> None:
        self.transport = transport
        self.owned = renew is not None
        self.size = size
        self._renew_with = renew
        self._pid = os.getpid()
        # The event loop the transport's connections belong to, and its connection slots.
        self._bound: tuple[weakref.ref[asyncio.AbstractEventLoop], asyncio.Semaphore] | None = None

    def current(self) -> T:
        """The transport to send through now (a sync call): renewed in a process forked from the
        one that built it, since two processes reading one inherited socket get each other's
        responses. ConfigurationError if the client was closed."""
        if self._pid != os.getpid():
            self._pid, self._bound = os.getpid(), None
            self._renew()
        if self.transport.is_closed:
            raise ConfigurationError(CLOSED)
        return self.transport

    def for_loop(self, loop: asyncio.AbstractEventLoop) -> tuple[T, asyncio.Semaphore]:
        """The transport and the connection slots of `loop` (an `AsyncCatalogJobs` call waits for
        a slot): the transport is renewed first if its connections belong to another event
        loop or process. ConfigurationError if the client was closed."""
        self.current()
        bound = self._bound
        if bound is None or bound[0]() is not loop:
            import asyncio

            if bound is not None:
                self._renew()  # connections are bound to the loop that opened them
            bound = self._bound = (weakref.ref(loop), asyncio.Semaphore(self.size))
        return self.transport, bound[1]

    def _renew(self) -> None:
        """Our own transport, rebuilt; an app's client stays the app's to replace, and a closed
        pool stays closed. The old one is dropped, not closed: closing would shut down
        connections (TLS close_notify included) that the parent process is still using."""
        if self._renew_with is not None and not self.transport.is_closed:
            self.transport = self._renew_with()


def sync_pool_of(http_client: httpx.Client | None, base_url: str) -> Pool[SyncTransport]:
    """A sync client's pool: the app's client, or its own (through the environment's proxy)."""
    if http_client is not None:
        return Pool(AppClientTransport(http_client), None, APP_CLIENT_SLOTS)
    proxy, cookies, size = environment_proxy(base_url), CookieStore(), POOL_CONNECTIONS

    def own() -> SyncTransport:
        return OwnTransport(sync_pools(size, proxy), cookies)

    return Pool(own(), own, size)


def async_pool_of(http_client: httpx.AsyncClient | None, base_url: str) -> Pool[AsyncTransport]:
    """An async client's pool, as `sync_pool_of`."""
    if http_client is not None:
        return Pool(AsyncAppClientTransport(http_client), None, APP_CLIENT_SLOTS)
    proxy, cookies, size = environment_proxy(base_url), CookieStore(), POOL_CONNECTIONS

    def own() -> AsyncTransport:
        return AsyncOwnTransport(async_pools(size, proxy), cookies)

    return Pool(own(), own, size)
