"""An app's own `httpx.Client` or `AsyncClient` (`http_client=`) as the transport of a client's
calls, through its public `send`: its auth, event hooks, mounts and proxies apply, but never a
redirect (the request carries the key). Its default headers and cookies are merged into the
request in place, so that the request the core redacts after the exchange is the one that went
out.

The deadline holds here too. The async driver cuts a whole exchange off with `asyncio.timeout`.
A thread blocked in a socket read cannot be interrupted from inside, and the app's client keeps
httpcore's own sockets, whose timeouts apply per read: headers trickled in, or an endless run
of `103 Early Hints`, never trip them. So, with a deadline, a sync exchange's request and
headers are awaited in a worker thread, and the call stops waiting at the deadline
(`TimeoutError`, which the core reports as `DeadlineExceededError`). The exchange it leaves has
its socket shut down when that is known (httpcore's `trace` extension names the connections it
opens), and otherwise ends when the server stops sending, its response closed unread. The body
is read in the calling thread; the watchdog shuts its socket (the response's `network_stream`)
down at the deadline.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpcore
import httpx

from . import _watchdog
from ._base_url import shown
from ._proxies import proxy_for_plain_http
from ._sockets import current_deadline
from .errors import ConfigurationError

T = TypeVar("T")

#: Sync exchanges of apps' clients in flight at once; beyond it they queue, within their
#: deadline. Workers are started as needed and one stuck behind a hostile server holds one.
EXCHANGE_WORKERS = 64


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


def unconsumed(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    """`response`, or, if an app's event hook read its body, one that streams that body again
    (already decoded by httpx: without its Content-Encoding)."""
    if not response.is_stream_consumed:
        return response
    dropped = {b"content-encoding", b"content-length"}
    return httpx.Response(
        response.status_code,
        headers=[(k, v) for k, v in response.headers.raw if k.lower() not in dropped],
        content=response.content,
        request=request,
        extensions=response.extensions,
    )


class AppClientTransport(httpx.BaseTransport):
    """A sync client's calls through the app's `httpx.Client` (see the module)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @property
    def is_closed(self) -> bool:
        """True once the app closed its client."""
        return self.http.is_closed

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the app's client, streamed, within the call's deadline."""
        with_defaults(self.http, request)
        at = current_deadline()
        if at is None:
            return unconsumed(self._send(request), request)
        response = unconsumed(_Exchange(self._send, request).within(at), request)
        return watched(response, at)

    def _send(self, request: httpx.Request) -> httpx.Response:
        return self.http.send(request, stream=True, follow_redirects=False)

    def close(self) -> None:
        """Nothing: the app's client is the app's to close."""


class AsyncAppClientTransport(httpx.AsyncBaseTransport):
    """An async client's calls through the app's `httpx.AsyncClient` (see the module)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @property
    def is_closed(self) -> bool:
        """True once the app closed its client."""
        return self.http.is_closed

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the app's client, streamed (the driver bounds the time)."""
        with_defaults(self.http, request)
        response = await self.http.send(request, stream=True, follow_redirects=False)
        return unconsumed(response, request)

    async def aclose(self) -> None:
        """Nothing: the app's client is the app's to close."""


class _Exchange:
    """One request through an app's sync client, awaited until a deadline in a worker thread."""

    def __init__(self, send: Callable[[httpx.Request], httpx.Response], request: httpx.Request):
        self._send = send
        self._request = request
        self._streams: list[Any] = []
        self._abandoned = False
        request.extensions["trace"] = self._trace

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: note each connection (and TLS layer) the exchange opens."""
        stream = info.get("return_value")
        if isinstance(stream, httpcore.NetworkStream):
            self._streams.append(stream)
            if self._abandoned:
                _shut(stream)

    def within(self, at: float) -> httpx.Response:
        """The response (its headers), or TimeoutError at `at` (`time.monotonic()`)."""
        context = contextvars.copy_context()  # the app's context (tracing, ...) goes along
        future = _threads().submit(lambda: context.run(self._send, self._request))
        try:
            done, _ = concurrent.futures.wait([future], timeout=max(at - time.monotonic(), 0.0))
        except BaseException:  # KeyboardInterrupt while waiting
            self._abandon(future)
            raise
        if not done:
            self._abandon(future)
            raise TimeoutError("the call's deadline passed before the response's headers came")
        del self._request.extensions["trace"]  # its connections are open: nothing more to note
        return future.result()

    def _abandon(self, future: concurrent.futures.Future[httpx.Response]) -> None:
        self._abandoned = True
        for stream in list(self._streams):
            _shut(stream)
        future.add_done_callback(_close_response)


def _close_response(future: concurrent.futures.Future[httpx.Response]) -> None:
    """Close the response of an exchange nobody waits for any more (its connection goes back to
    the app's pool, or is closed)."""
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def _shut(stream: Any) -> None:
    """Shut a connection's socket down, which wakes a thread blocked reading it (a close would
    not). The plain socket's shutdown, even under TLS: the TLS layer's would pull its state
    from under the reading thread."""
    sock = stream.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # closed already
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def watched(response: httpx.Response, at: float) -> httpx.Response:
    """`response`, its body's socket shut down at `at` if it is still being read then."""
    network = response.extensions.get("network_stream")
    if network is not None and isinstance(response.stream, httpx.SyncByteStream):
        response.stream = _WatchedStream(response.stream, network, at)
    return response


class _WatchedStream(httpx.SyncByteStream):
    """A response body whose socket the watchdog shuts down at the deadline; whatever reading it
    raises after that (or a body that just ends there) is a TimeoutError."""

    def __init__(self, stream: httpx.SyncByteStream, network: Any, at: float) -> None:
        self._stream = stream
        self._network = network
        self._fired = threading.Event()
        self._alarm = _watchdog.arm(at, self._fire)

    def _fire(self) -> None:
        self._fired.set()
        _shut(self._network)

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except Exception as exc:
            if self._fired.is_set():
                raise TimeoutError("the call's deadline passed while the body was read") from exc
            raise
        if self._fired.is_set():  # a body without a length ends where its socket was shut
            raise TimeoutError("the call's deadline passed while the body was read")

    def close(self) -> None:
        self._alarm.disarm()
        self._stream.close()


class _ExchangeThreads:
    """Daemon threads, started as needed up to `limit`, that run exchanges. Not a
    ThreadPoolExecutor: the interpreter waits for its threads at exit, and one stuck behind a
    hostile server would hold the app's exit for as long as the server likes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]]
        self._jobs = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._started = 0
        self._lock = threading.Lock()

    def submit(self, function: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((future, function))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._started < self._limit:
                    self._started += 1
                    name = f"klaviyo-catalog-exchange-{self._started}"
                    threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            future, function = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function())
                except BaseException as exc:  # the waiting thread raises it
                    future.set_exception(exc)
            del future, function  # a finished response must not wait here for the next job
            self._idle.release()


_exchange_threads = _ExchangeThreads(EXCHANGE_WORKERS)


def _threads() -> _ExchangeThreads:
    return _exchange_threads


def _forget_threads() -> None:
    # A forked child has none of the parent's threads.
    global _exchange_threads
    _exchange_threads = _ExchangeThreads(EXCHANGE_WORKERS)


os.register_at_fork(after_in_child=_forget_threads)
