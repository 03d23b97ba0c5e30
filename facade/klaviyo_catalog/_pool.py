"""The connection pool a client builds for itself when the app gives it no `http_client`.

Every connection is kept alive, TLS uses one process-wide context, cookies are parsed only
when a response sets some, and a sync pool's sockets wait no longer than the call's deadline
(`_sockets`). Requests go straight to the pool's transport (`sole_transport`). An app's own
client is used as it is.
"""

from __future__ import annotations

import functools
import os
import ssl

import httpx

from ._sockets import bound_by_deadlines

#: Connections of the client's own pool, all kept alive: a pool that closes connections past
#: its keep-alive count reopens them at once under load (httpx's default, 100 open but 20 kept,
#: opened 1,960 connections for 2,000 calls of 500 tasks). 20 carry Klaviyo's steady limit
#: (3,500/min, ~58/s) at up to ~340 ms per request; more would cost CPU, since httpcore's pool
#: scans all its connections for each request (measured: 500 calls cost 1.9x the CPU at 50).
POOL_CONNECTIONS = 20
# What httpx reads from the environment when it builds a TLS context.
_TLS_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "SSLKEYLOGFILE")


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
