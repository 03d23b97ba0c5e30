"""The client's own connections: an httpcore pool behind an httpx transport, public APIs only.

`OwnTransport` (sync) and `AsyncOwnTransport` are `httpx.BaseTransport`/`AsyncBaseTransport`
over httpcore's `ConnectionPool` (or its `HTTPProxy`/`SOCKSProxy` for the proxy the environment
names, `_proxies`), as `httpx.HTTPTransport` is, plus what a client needs of `Client.send`
here: its cookies. A request goes down once and its response comes back once: the core builds
the `httpx.Request`, the driver hands it to the transport, and the response it returns is read
within its bounds (`Send.read`).

- Every connection the pool opens is kept alive (`max_keepalive_connections` = its size): a
  pool that closes idle connections beyond a keep-alive count reopens them at once under load.
- The connections are split into httpcore pools of two (`SHARD_CONNECTIONS`), and each
  request goes to the pool with the fewest in flight: httpcore's CPU per request grows with the
  square of its pool's connections.
- The sync pool's sockets wait no longer than the call's deadline (`_sockets`).
- One TLS context per process (`tls_context`).
- Cookies are parsed only from a response that sets some: httpx parses every response (a urllib
  request and two email messages of the headers), more CPU than the rest of `Client.send`.
"""

from __future__ import annotations

import functools
import math
import os
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar, cast

import httpcore
import httpx

from ._flow import Send
from ._proxies import Proxy
from ._sockets import deadline_backend

#: Connections per httpcore pool. httpcore scans every connection of its pool for each request
#: it takes or gives back (asking an idle one's socket whether it is readable, and counting
#: all of them for each idle one): its CPU per request grows with the pool, by the square
#: under load. A client's connections are split into pools of at most this many, and `_Shards`
#: spreads requests across the pools. `make bench` section 4b, 500 tasks against 20 (2,000
#: calls, loopback): pools of 16 kept 46% of the rate at 1,501 µs of client CPU a call, of 8
#: 62%, of 4 84%, of 2 91% at 703 µs, of 1 90%.
SHARD_CONNECTIONS = 2
# What httpx reads from the environment when it builds a TLS context.
_TLS_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "SSLKEYLOGFILE")
#: Seconds an idle connection is kept: httpx's default.
KEEPALIVE_EXPIRY = 5.0

# httpcore's exceptions and the httpx ones they mean, the most specific first (as httpx maps
# them in its own transport; both sides are public).
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)
_HTTPCORE_ERRORS = tuple(core for core, _ in _ERRORS)
P = TypeVar("P", httpcore.ConnectionPool, httpcore.AsyncConnectionPool)


def mapped(error: Exception, request: httpx.Request) -> httpx.TransportError:
    """The httpx error an httpcore error means, knowing its request (apps read
    `error.request.url`); the httpcore error is its cause."""
    kind = next(ours for core, ours in _ERRORS if isinstance(error, core))
    translated = kind(str(error), request=request)
    translated.__cause__ = error
    return translated


def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context, built once per process (per value of the variables httpx
    reads): loading the CA bundle costs ~20 ms of CPU, which httpx spends on every client,
    even one that never opens an https connection."""
    return _tls_context(*(os.environ.get(name) for name in _TLS_VARIABLES))


@functools.lru_cache(maxsize=4)
def _tls_context(*environment: str | None) -> ssl.SSLContext:
    # `environment` is only the cache key: httpx reads the variables itself.
    return httpx.create_ssl_context()


def _pool_options(size: int, proxy: Proxy | None) -> dict[str, Any]:
    """The keyword arguments of an httpcore pool (or proxy pool) of `size` connections."""
    options: dict[str, Any] = {
        "ssl_context": tls_context(),
        "max_connections": size,
        "max_keepalive_connections": size,
        "keepalive_expiry": KEEPALIVE_EXPIRY,
    }
    if proxy is not None:
        url = proxy.url
        options["proxy_url"] = httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target="/"
        )
        options["proxy_auth"] = proxy.auth
        if not proxy.socks and url.scheme == "https":
            options["proxy_ssl_context"] = tls_context()
    return options


def shard_sizes(size: int) -> list[int]:
    """`size` connections as shards of at most SHARD_CONNECTIONS, as even as can be."""
    count = max(1, math.ceil(size / SHARD_CONNECTIONS))
    return [size // count + (i < size % count) for i in range(count)]


def sync_pools(size: int, proxy: Proxy | None) -> list[httpcore.ConnectionPool]:
    """The sync client's httpcore pools (`size` connections in all): direct, or through
    `proxy`; sockets deadline-bound."""
    kind: Callable[..., httpcore.ConnectionPool] = httpcore.ConnectionPool
    if proxy is not None:
        # Without socksio, httpcore's SOCKSProxy is a stand-in that raises (types see that one);
        # `_proxies` refuses a SOCKS proxy then, so here it is the real pool.
        socks = cast(Callable[..., httpcore.ConnectionPool], httpcore.SOCKSProxy)
        kind = socks if proxy.socks else httpcore.HTTPProxy
    backend = deadline_backend()
    return [kind(**_pool_options(n, proxy), network_backend=backend) for n in shard_sizes(size)]


def async_pools(size: int, proxy: Proxy | None) -> list[httpcore.AsyncConnectionPool]:
    """The async client's httpcore pools (asyncio.timeout bounds its exchanges)."""
    kind: Callable[..., httpcore.AsyncConnectionPool] = httpcore.AsyncConnectionPool
    if proxy is not None:
        socks = cast(Callable[..., httpcore.AsyncConnectionPool], httpcore.AsyncSOCKSProxy)
        kind = socks if proxy.socks else httpcore.AsyncHTTPProxy
    return [kind(**_pool_options(n, proxy)) for n in shard_sizes(size)]


class CookieStore:
    """The cookie store of a client's own pool, shared by its transports (renewed after fork or
    under another event loop, they keep what the server set)."""

    def __init__(self) -> None:
        self.store = httpx.Cookies()

    def add_to(self, request: httpx.Request) -> None:
        """Give `request` the Cookie header of what the server set, if it set anything."""
        if self.store:
            self.store.set_cookie_header(request)

    def take_from(self, response: httpx.Response) -> None:
        """Keep the cookies `response` sets; parsed only when it sets some."""
        # Set-Cookie2 is the only other header `http.cookiejar` reads.
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            self.store.extract_cookies(response)


def _core_request(request: httpx.Request) -> httpcore.Request:
    url = request.url
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


class _Shards(Generic[P]):
    """What the two own transports share: their pools, the cookie store, and which pool takes
    the next request: the one with the fewest in flight. While a client keeps no more requests
    in flight than its connections (AsyncCatalogJobs' semaphore), that one always has a free
    connection, so no request waits inside httpcore."""

    def __init__(self, pools: Sequence[P], cookies: CookieStore | None = None) -> None:
        self.pools: Sequence[P] = pools
        self.cookies = cookies if cookies is not None else CookieStore()
        self.is_closed = False
        self._in_flight = [0] * len(pools)
        self._lock = threading.Lock()

    def _take(self, request: httpx.Request) -> int:
        """The least loaded pool's index, counted in flight; `request` gets its cookies."""
        self.cookies.add_to(request)
        with self._lock:
            loads = self._in_flight
            index = loads.index(min(loads))
            loads[index] += 1
            return index

    def _give_back(self, index: int) -> None:
        with self._lock:
            self._in_flight[index] -= 1

    def _response(
        self, received: httpcore.Response, request: httpx.Request, shard: int
    ) -> httpx.Response:
        stream = _Stream(received.stream, request, lambda: self._give_back(shard))
        response = httpx.Response(
            received.status,
            headers=received.headers,
            stream=stream,
            extensions=received.extensions,
            request=request,
        )
        self.cookies.take_from(response)
        return response


class OwnTransport(_Shards[httpcore.ConnectionPool], httpx.BaseTransport):
    """A sync client's own connections (see the module), in one or more httpcore pools."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on the least loaded of the pools; httpcore's errors as httpx's."""
        shard = self._take(request)
        try:
            received = self.pools[shard].handle_request(_core_request(request))
        except BaseException as exc:
            self._give_back(shard)
            if isinstance(exc, _HTTPCORE_ERRORS):
                raise mapped(exc, request) from exc
            raise
        return self._response(received, request, shard)

    def exchange(self, send: Send) -> httpx.Response:
        """The response to `send.request`, its body read in (`Send.read`)."""
        return send.read(self.handle_request(send.request))

    def close(self) -> None:
        """Close every connection of every pool."""
        self.is_closed = True
        for pool in self.pools:
            pool.close()


class AsyncOwnTransport(_Shards[httpcore.AsyncConnectionPool], httpx.AsyncBaseTransport):
    """An async client's own connections (see the module), in one or more httpcore pools."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """As `OwnTransport.handle_request`, awaited."""
        shard = self._take(request)
        try:
            received = await self.pools[shard].handle_async_request(_core_request(request))
        except BaseException as exc:  # CancelledError too: the shard is free again
            self._give_back(shard)
            if isinstance(exc, _HTTPCORE_ERRORS):
                raise mapped(exc, request) from exc
            raise
        return self._response(received, request, shard)

    async def exchange(self, send: Send) -> httpx.Response:
        """As `OwnTransport.exchange`, awaited."""
        return await send.aread(await self.handle_async_request(send.request))

    async def aclose(self) -> None:
        """Close every connection of every pool."""
        self.is_closed = True
        for pool in self.pools:
            await pool.aclose()


class _Stream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response's raw body from httpcore, sync or async, its errors made httpx's; `done` is
    called once, when it is closed (its connection is free again)."""

    def __init__(self, stream: Any, request: httpx.Request, done: Callable[[], None]) -> None:
        self._stream = stream
        self.request = request
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except _HTTPCORE_ERRORS as exc:
            raise mapped(exc, self.request) from exc

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except _HTTPCORE_ERRORS as exc:
            raise mapped(exc, self.request) from exc

    def close(self) -> None:
        done, self._done = self._done, None
        close = getattr(self._stream, "close", None)  # httpcore's streams need not have one
        try:
            if close is not None:
                close()
        except _HTTPCORE_ERRORS as exc:
            raise mapped(exc, self.request) from exc
        finally:
            if done is not None:
                done()

    async def aclose(self) -> None:
        done, self._done = self._done, None
        aclose = getattr(self._stream, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        except _HTTPCORE_ERRORS as exc:
            raise mapped(exc, self.request) from exc
        finally:
            if done is not None:
                done()
