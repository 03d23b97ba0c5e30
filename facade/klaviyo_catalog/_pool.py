"""A client's connection pool: the app's `http_client`, or one the client builds for itself.

A client and the clients its `with_options()` made share one `Pool`, which follows the process
(after fork()) and, for `AsyncCatalogJobs`, the event loop. The pool a client builds for itself
keeps every connection alive, uses one process-wide TLS context, parses cookies only when a
response sets some, and its sync sockets wait no longer than the call's deadline (`_sockets`);
its requests are made as `httpx.Request`s and go straight to its transport. An app's own
client is used as it is.
"""

from __future__ import annotations

import functools
import os
import ssl
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from ._sockets import bound_by_deadlines

if TYPE_CHECKING:
    import asyncio

H = TypeVar("H", httpx.Client, httpx.AsyncClient)

#: Connections of the client's own pool, all kept alive: a pool that closes connections past
#: its keep-alive count reopens them at once under load (httpx's default, 100 open but 20 kept,
#: opened 1,960 connections for 2,000 calls of 500 tasks). 20 carry Klaviyo's steady limit
#: (3,500/min, ~58/s) at up to ~340 ms per request; more would cost CPU, since httpcore's pool
#: scans all its connections for each request (measured: 500 calls cost 1.9x the CPU at 50).
POOL_CONNECTIONS = 20
# What httpx reads from the environment when it builds a TLS context.
_TLS_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "SSLKEYLOGFILE")


class Pool(Generic[H]):
    """The connections of a client (and of the clients its `with_options()` made), and how its
    requests reach them. `owned`: built here, rather than the app's `http_client`."""

    http: H
    direct: httpx.BaseTransport | httpx.AsyncBaseTransport | None
    _http_class: type[H]

    def __init__(self, http_class: type[H], http_client: H | None) -> None:
        self.owned = http_client is None
        self._http_class = http_class
        self._use(http_client if http_client is not None else self._new())
        self._pid = os.getpid()
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._slots: asyncio.Semaphore | None = None

    def _new(self) -> H:
        http: H = new_pool(self._http_class)  # type: ignore[assignment]
        return http

    def _use(self, http: H) -> None:
        """Send through `http`: straight to its transport when it is our own (`sole_transport`),
        through `send` when it is the app's (its auth, event hooks and mounts apply). Likewise
        requests: `build_request` merges an app's client's defaults (headers, params, base URL);
        our own has none the requests need but its cookies, so they are made as
        `httpx.Request`s directly (~12 µs less per request)."""
        self.http = http
        self.direct = sole_transport(http) if self.owned else None
        self._build: Callable[..., httpx.Request] = http.build_request
        if self.direct is not None:
            self._build = functools.partial(httpx.Request, cookies=http.cookies)

    def build_request(self, method: str, url: str, **options: Any) -> httpx.Request:
        """A request to send through this pool (`httpx.Client.build_request`'s arguments)."""
        return self._build(method, url, **options)

    def in_this_process(self) -> None:
        """Renew the pool in a process forked from the one that built it: two processes reading
        one inherited socket get each other's responses."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._renew()

    def slots(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        """The connection slots of `loop` (an `AsyncCatalogJobs` call waits for one): the pool
        is renewed first if its connections belong to another event loop or process."""
        bound = self._loop is not None and self._loop() is loop and self._pid == os.getpid()
        if bound and self._slots is not None:
            return self._slots
        import asyncio

        if self._pid != os.getpid():
            self.in_this_process()
        elif self._loop is not None:
            self._renew()  # connections are bound to the loop that opened them
        self._loop = weakref.ref(loop)
        self._slots = asyncio.Semaphore(pool_size(self.http))
        return self._slots

    def _renew(self) -> None:
        """Our own pool, rebuilt; an app's client stays the app's to replace, and a closed pool
        stays closed. The old one is dropped, not closed: closing would shut down connections
        (TLS close_notify included) that the parent process is still using."""
        if self.owned and not self.http.is_closed:
            self._use(self._new())


def pool_size(http: httpx.Client | httpx.AsyncClient) -> int:
    """How many requests the client's pool serves without closing connections: its keep-alive
    limit (read from httpcore's pool, where httpx keeps it; 20, httpx's default, if hidden)."""
    pool = getattr(getattr(http, "_transport", None), "_pool", None)
    sizes = [getattr(pool, "_max_keepalive_connections", None)]
    sizes.append(getattr(pool, "_max_connections", None))
    known = [n for n in sizes if isinstance(n, int) and n > 0]
    return min(known) if known else 20


def new_pool(
    http_class: type[httpx.Client] | type[httpx.AsyncClient],
) -> httpx.Client | httpx.AsyncClient:
    """A client of `http_class` set up as above."""
    limits = httpx.Limits(
        max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS
    )
    http = http_class(limits=limits, verify=tls_context())
    cookies_parsed_when_set(http)
    if isinstance(http, httpx.Client):
        bound_by_deadlines(http)
    return http


def sole_transport(
    client: httpx.Client | httpx.AsyncClient,
) -> httpx.BaseTransport | httpx.AsyncBaseTransport | None:
    """The transport that carries every request of a pool built here, when there is only the one
    (no proxy mounted from the environment); None otherwise, or if httpx keeps it elsewhere
    than it does today.

    The client sends through it directly: `Client.send`'s auth, redirect and event-hook layers
    have nothing to do for this pool, and cost about 50 µs of CPU per request (a sixth of an
    exchange). The client keeps the rest of what `send` does: cookies, the closed check.
    """
    if getattr(client, "_mounts", None) != {}:
        return None
    transport = getattr(client, "_transport", None)
    if isinstance(transport, httpx.BaseTransport | httpx.AsyncBaseTransport):
        return transport
    return None


def opened(
    client: httpx.Client | httpx.AsyncClient, request: httpx.Request, response: httpx.Response
) -> httpx.Response:
    """The response of a request sent straight to the transport, finished as `send` would: it
    knows its request, and the client's cookie store has seen it."""
    response.request = request
    client.cookies.extract_cookies(response)
    return response


def sent(error: Exception, request: httpx.Request) -> Exception:
    """`error` as `send` would give it: an httpx error of a request sent straight to the
    transport is told its request too (apps read `error.request.url`)."""
    if isinstance(error, httpx.RequestError):
        try:
            error.request  # noqa: B018 (a property that raises when it was never set)
        except RuntimeError:
            error.request = request
    return error


def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context, built once per process (per value of the variables httpx
    reads): loading the CA bundle costs ~20 ms of CPU, which httpx spends on every client,
    even one that never opens an https connection."""
    return _tls_context(*(os.environ.get(name) for name in _TLS_VARIABLES))


@functools.lru_cache(maxsize=4)
def _tls_context(*environment: str | None) -> ssl.SSLContext:
    # `environment` is only the cache key: httpx reads the variables itself.
    return httpx.create_ssl_context()


class _Cookies(httpx.Cookies):
    """httpx's cookie store, parsing a response for cookies only when it sets some. httpx
    parses every response: it builds a urllib request and two email messages of the headers,
    more of its own CPU per request than all the rest of `Client.send`, to find nothing when
    there is no Set-Cookie (or Set-Cookie2, the only headers `http.cookiejar` reads)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


def cookies_parsed_when_set(client: httpx.Client | httpx.AsyncClient) -> None:
    """Give a client built by this package the cookie store above (kept, with what it holds).
    Left as it is if httpx keeps its cookies elsewhere than it does today."""
    cookies = getattr(client, "_cookies", None)
    if type(cookies) is httpx.Cookies:
        client._cookies = _Cookies(cookies)
