"""The sync client's own sockets wait no longer than the call's deadline, read by read.

httpcore gives each read of a response one timeout, fixed when its phase starts; a server that
sends a byte just before each read would time out (headers trickled in, an endless run of
`103 Early Hints`, a body a byte at a time) keeps an exchange going for as long as it likes.
The async client cuts an exchange off with `asyncio.timeout`; a thread has no such thing, so
the sync client's own pool is built on httpcore's public `NetworkBackend` seam with a backend
whose every connect, read and write waits at most until the deadline of the call this thread
is making (`deadline_in`). An app's own `http_client` keeps its sockets; `_app_client` bounds it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import httpcore

_local = threading.local()
# A socket timeout of 0 would switch the socket to non-blocking (a ReadError, not a timeout).
_SOONEST = 1e-4


class deadline_in:  # lower case: used as a function, `with deadline_in(seconds):`
    """Socket waits of this thread end by `seconds` from now (None: no deadline). A class
    rather than a @contextmanager generator: it is entered once per request."""

    __slots__ = ("_at", "_previous")

    def __init__(self, seconds: float | None) -> None:
        self._at = None if seconds is None else time.monotonic() + seconds

    def __enter__(self) -> None:
        self._previous: float | None = getattr(_local, "at", None)
        _local.at = self._at

    def __exit__(self, *exc: object) -> None:
        _local.at = self._previous


def current_deadline() -> float | None:
    """The `time.monotonic()` instant this thread's call must be over by (None: no deadline)."""
    at: float | None = getattr(_local, "at", None)
    return at


def _capped(timeout: float | None) -> float | None:
    """`timeout` shortened to what the current call's deadline leaves (never 0, which would
    make the socket non-blocking)."""
    at = current_deadline()
    if at is None:
        return timeout
    left = max(at - time.monotonic(), _SOONEST)
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A network stream whose every read, write and TLS handshake waits no longer than the call's
    deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _capped(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _capped(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, _capped(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's network backend, its connections opened and wrapped as deadline-bounded
    streams. TCP only: the pools are built without `uds=` or `retries=`, so httpcore never
    asks a backend for a Unix socket or a sleep."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(
            self._backend.connect_tcp(host, port, _capped(timeout), local_address, socket_options)
        )


def deadline_backend() -> httpcore.NetworkBackend:
    """httpcore's own sync network backend, its connections bounded by the call's deadline."""
    return _Backend(httpcore.SyncBackend())
