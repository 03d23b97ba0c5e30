"""The HTTP/1.1 transport: a quiet threaded server that hands each request to one callable.

The fake's logic never touches sockets; it maps an `Incoming` to a `Reply`. This module writes
replies, including the deliberately broken ones (a reset connection, a body trickled a byte
at a time or one without end), counts connections, optionally speaks TLS, and makes sure
`stop()` also ends kept-alive connections and paced writes, so a stopped fake never answers
again.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

ResetStage = Literal["before_response", "mid_body"]


@dataclass(frozen=True)
class Incoming:
    """A request as the fake's logic sees it: no socket, no body."""

    method: str
    path: str  # still percent-encoded
    query: str  # raw query string
    headers: dict[str, str]  # lower-cased names


@dataclass(frozen=True)
class Reply:
    """What to send back; `reset` breaks the connection instead, to imitate a network failure,
    and `pace`, `endless` and `declared_length` make a hostile body."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    reset: ResetStage | None = None  # abort the connection instead of finishing the reply
    pace: float = 0.0  # seconds to wait before each byte of the body (a trickle)
    endless: bool = False  # after the body, blank space until the client hangs up
    # Content-Length to declare; None: the body's length, or chunked encoding when endless.
    declared_length: int | None = None


App = Callable[[Incoming], Reply]


class _Handler(BaseHTTPRequestHandler):
    """Serves each request of a connection by handing an `Incoming` to the server's app and
    writing its `Reply`."""

    protocol_version = "HTTP/1.1"  # keep-alive; every reply carries a length, or is endless
    server_version = "FakeKlaviyo"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            # Here, in the connection's thread, so that a client that never completes the
            # handshake holds up no one else; a failed one ends the connection (handle_error).
            self.request.do_handshake()
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle's algorithm and
        # the client's delayed ACK stall every response by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read fake.request_log instead

    def _dispatch(self) -> None:
        """Any method: read the request, drain its body, and send the app's reply."""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drain a body so the connection stays usable
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._send(self.server.app(Incoming(self.command, url.path, url.query, headers)))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def _send(self, reply: Reply) -> None:
        """Write `reply`, or reset the connection before the response or midway through the body."""
        if reply.reset == "before_response":
            self._abort()
            return
        chunked = reply.endless and reply.declared_length is None
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            length = len(reply.body) if reply.declared_length is None else reply.declared_length
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if reply.reset == "mid_body":
            self.wfile.write(reply.body[: max(1, len(reply.body) // 4)])
            self._abort()
            return
        stopping = self.server.stopping
        if reply.pace > 0:
            for i in range(len(reply.body)):
                if stopping.wait(reply.pace):
                    self.close_connection = True
                    return
                self.wfile.write(reply.body[i : i + 1])
        elif chunked and reply.body:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(reply.body), reply.body))
        elif not chunked:
            self.wfile.write(reply.body)
        if reply.endless:
            # Until the client hangs up (the write fails) or the fake stops.
            self.close_connection = True
            block = _BLANK_CHUNK if chunked else _BLANK
            while not stopping.is_set():
                self.wfile.write(block)

    def _abort(self) -> None:
        """Close with RST (SO_LINGER 0), so the client sees a reset, not a clean end."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the socket only closes once its file objects are gone
        self.connection.close()


_BLANK = b" " * 65536
_BLANK_CHUNK = b"%x\r\n%s\r\n" % (len(_BLANK), _BLANK)


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that keeps its open connections, so that stopping it can close them
    too."""

    daemon_threads = True
    block_on_close = False
    # socketserver's backlog of 5 overflows when 50 clients connect at once: the kernel drops
    # the SYNs and every client stalls a second on TCP's retransmission timer.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self.stopping = threading.Event()  # ends paced and endless writes
        self.connections = 0  # accepted so far
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
            self.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-reply is routine here; never print tracebacks

    def close_connections(self) -> None:
        """Shut every open connection down, so that a stopped fake serves no kept-alive client
        again."""
        with self._open_lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked on the next request


class HttpServer:
    """Runs `app` on host:port in a background thread until `stop()`; over TLS with
    `ssl_context` (a server-side context holding the certificate)."""

    def __init__(
        self, host: str, port: int, app: App, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._server = _Server((host, port), app)
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) it listens on; the port is the one chosen when port 0 was asked for."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._server.connections

    def stop(self) -> None:
        """Stop serving and close every connection, kept-alive ones included; waits up to 5 s for
        the thread."""
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)
