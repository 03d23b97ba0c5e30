"""A loopback HTTP/1.1 server that misbehaves on purpose: it trickles a body, never answers,
sends an endless body or a gzip bomb, or answers properly while counting connections.

Raw sockets rather than http.server, so that each behaviour controls exactly which bytes go out
and when. Each connection gets a thread; `close()` ends them all.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import struct
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from typing import Any

# (connection, request target) -> None; writes whatever it likes and returns when done.
Behaviour = Callable[[socket.socket, str], None]


class HostileServer:
    """`HostileServer(behaviour)` on 127.0.0.1; `base_url`, `connections`, `requests`."""

    def __init__(self, behaviour: Behaviour, *, keep_alive: bool = False) -> None:
        self.behaviour = behaviour
        self.keep_alive = keep_alive
        self.connections = 0
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._sockets.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        buffered = b""
        with contextlib.suppress(OSError):
            while not self._closing.is_set():
                while b"\r\n\r\n" not in buffered:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffered += data
                head, buffered = buffered.split(b"\r\n\r\n", 1)
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                with self._lock:
                    self.requests.append(target)
                self.behaviour(connection, target)
                if not self.keep_alive:
                    break
        with contextlib.suppress(OSError):
            connection.close()

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for connection in sockets:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                connection.close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def head(status: int = 200, **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def job_id_of(target: str) -> str:
    """The job id in a single-job request target (its last path segment)."""
    path = urllib.parse.urlsplit(target).path
    return urllib.parse.unquote([part for part in path.split("/") if part][-1])


def job_document(job_id: str, kind: str = "catalog-item-bulk-update-job") -> bytes:
    attributes: dict[str, Any] = {"job_id": job_id, "status": "processing"}
    attributes |= {"created_at": "2024-05-01T10:00:00+00:00", "total_count": 1}
    return json.dumps({"data": {"type": kind, "id": job_id, "attributes": attributes}}).encode()


def answer_job(delay: float = 0.0, swap: Callable[[str], str] = lambda job_id: job_id) -> Behaviour:
    """A proper response for the job asked for (or for `swap(job_id)`), after `delay`."""

    def behaviour(connection: socket.socket, target: str) -> None:
        if delay:
            time.sleep(delay)
        body = job_document(swap(job_id_of(target)))
        connection.sendall(
            head(Content_Type="application/json", Content_Length=str(len(body))) + body
        )

    return behaviour


def trickle(seconds_per_byte: float) -> Behaviour:
    """Headers at once, then a valid body one byte at a time."""

    def behaviour(connection: socket.socket, target: str) -> None:
        body = job_document(job_id_of(target))
        connection.sendall(head(Content_Type="application/json", Content_Length=str(len(body))))
        for i in range(len(body)):
            time.sleep(seconds_per_byte)
            connection.sendall(body[i : i + 1])

    return behaviour


def silent(connection: socket.socket, target: str) -> None:
    """Reads the request, then never answers (until the server closes)."""
    with contextlib.suppress(OSError):
        connection.recv(1)


def endless(connection: socket.socket, target: str) -> None:
    """A chunked body that never ends: 64 KiB chunks of spaces until the client hangs up."""
    connection.sendall(head(Content_Type="application/json", Transfer_Encoding="chunked"))
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    with contextlib.suppress(OSError):
        while True:
            connection.sendall(chunk)


def declared_huge(connection: socket.socket, target: str) -> None:
    """Content-Length of 500 MB, then the body as fast as the client takes it."""
    connection.sendall(head(Content_Type="application/json", Content_Length=str(500 * 10**6)))
    with contextlib.suppress(OSError):
        while True:
            connection.sendall(b" " * 65536)


@functools.cache
def gzip_bomb(decoded_bytes: int) -> bytes:
    """A valid gzip stream of `decoded_bytes` spaces (1 GiB is about 1 MB).

    Built the quick way: after a full flush a deflate stream does not refer back, so every
    further 1 MiB block of spaces compresses to the same bytes, which are repeated.
    """
    block = b" " * (1 << 20)
    blocks = decoded_bytes // len(block)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()  # the final empty block, and a trailer for two blocks only
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    trailer = struct.pack("<II", crc, (blocks * len(block)) & 0xFFFFFFFF)
    return first + repeated * (blocks - 1) + end[:-8] + trailer


def serve_bytes(payload: bytes, **headers: str) -> Behaviour:
    def behaviour(connection: socket.socket, target: str) -> None:
        connection.sendall(head(200, Content_Length=str(len(payload)), **headers) + payload)

    return behaviour


@contextlib.contextmanager
def hostile(behaviour: Behaviour, *, keep_alive: bool = False) -> Iterator[HostileServer]:
    with HostileServer(behaviour, keep_alive=keep_alive) as server:
        yield server
