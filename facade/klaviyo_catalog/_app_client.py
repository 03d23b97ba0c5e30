"""An app's own `httpx.Client` or `AsyncClient` (`http_client=`) as the transport of a client's
calls, through its public `send`: its auth, event hooks, mounts and proxies apply, but never a
redirect (the request carries the key). Its default headers and cookies are merged into the
request in place, so that the request the core redacts after the exchange is the one that went
out.

The deadline holds here too. The async driver cuts a whole exchange off with `asyncio.timeout`.
A thread blocked in a socket read cannot be interrupted from inside, and the app's client keeps
httpcore's own sockets, whose timeouts apply per read: headers trickled in, an endless run of
`103 Early Hints`, or a body a byte at a time never trip them. So, with a deadline, a sync
exchange, its body read included, runs in a worker thread, and the call stops waiting at the
deadline (`TimeoutError`, which the core reports as `DeadlineExceededError`). The exchange it
leaves has its socket shut down when that is known (httpcore's `trace` extension names the
connections it opens, and the response its `network_stream`), and otherwise ends when the
server stops sending.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import socket
import time
from typing import Any

import httpcore
import httpx

from ._base_url import shown
from ._flow import Send
from ._proxies import proxy_for_plain_http
from ._sockets import current_deadline
from ._workers import EXCHANGES
from .errors import ConfigurationError


def checked_app_client(http: httpx.Client | httpx.AsyncClient, base_url: str) -> None:
    """Refuse an app's client that would send a plain-http base URL (loopback) through the
    proxy the environment names: the key would reach the proxy in clear text."""
    url = httpx.URL(base_url)
    if url.scheme != "http" or not http.trust_env:
        return
    variable = proxy_for_plain_http(url.host)
    if variable is not None:
        raise ConfigurationError(
            f"base_url {shown(base_url)} is plain http, and the http_client (trust_env=True) "
            f"would send it, key included, through the proxy in ${variable}: add the host to "
            "NO_PROXY, build the client with trust_env=False, or use https"
        )


def with_defaults(http: httpx.Client | httpx.AsyncClient, request: httpx.Request) -> None:
    """The app client's default headers (the request's own win) and cookies, added in place."""
    headers = request.headers
    for name, value in http.headers.multi_items():
        if name not in headers:
            headers[name] = value
    if http.cookies:
        http.cookies.set_cookie_header(request)


class AppClientTransport:
    """A sync client's calls through the app's `httpx.Client` (see the module)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @property
    def is_closed(self) -> bool:
        """True once the app closed its client."""
        return self.http.is_closed

    def exchange(self, send: Send) -> httpx.Response:
        """Send the request through the app's client and read its response, within the call's
        deadline."""
        with_defaults(self.http, send.request)
        exchange = _Exchange(self.http, send)
        at = current_deadline()
        return exchange.run() if at is None else exchange.within(at)

    def close(self) -> None:
        """Nothing: the app's client is the app's to close."""


class AsyncAppClientTransport:
    """An async client's calls through the app's `httpx.AsyncClient` (see the module)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @property
    def is_closed(self) -> bool:
        """True once the app closed its client."""
        return self.http.is_closed

    async def exchange(self, send: Send) -> httpx.Response:
        """Send the request through the app's client and read its response (the driver bounds
        the time)."""
        with_defaults(self.http, send.request)
        response = await self.http.send(send.request, stream=True, follow_redirects=False)
        return await send.aread(response)

    async def aclose(self) -> None:
        """Nothing: the app's client is the app's to close."""


class _Exchange:
    """One request through an app's sync client, read to its end; with a deadline, in a worker
    thread, awaited until then."""

    def __init__(self, http: httpx.Client, send: Send) -> None:
        self._http = http
        self._send = send
        self._streams: list[Any] = []  # the connections it uses, to shut down if abandoned
        self._abandoned = False

    def run(self) -> httpx.Response:
        """The response, its body read in."""
        response = self._http.send(self._send.request, stream=True, follow_redirects=False)
        self._note(response.extensions.get("network_stream"))
        return self._send.read(response)

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: note each connection (and TLS layer) the exchange opens."""
        self._note(info.get("return_value"))

    def _note(self, stream: object) -> None:
        if isinstance(stream, httpcore.NetworkStream):
            self._streams.append(stream)
            if self._abandoned:
                _shut(stream)

    def within(self, at: float) -> httpx.Response:
        """`run()`'s response, or TimeoutError at `at` (`time.monotonic()`)."""
        request = self._send.request
        request.extensions["trace"] = self._trace
        context = contextvars.copy_context()  # the app's context (tracing, ...) goes along
        future = EXCHANGES.submit(lambda: context.run(self.run))
        try:
            done, _ = concurrent.futures.wait([future], timeout=max(at - time.monotonic(), 0.0))
        except BaseException:  # KeyboardInterrupt while waiting
            self._abandon()
            raise
        if not done:
            self._abandon()
            raise TimeoutError("the call's deadline passed before the response was read")
        del request.extensions["trace"]  # the exchange is over: nothing more to note
        return future.result()

    def _abandon(self) -> None:
        self._abandoned = True
        for stream in list(self._streams):
            _shut(stream)


def _shut(stream: Any) -> None:
    """Shut a connection's socket down, which wakes a thread blocked reading it (a close would
    not). The plain socket's shutdown, even under TLS: the TLS layer's would pull its state
    from under the reading thread."""
    sock = stream.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # closed already
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
