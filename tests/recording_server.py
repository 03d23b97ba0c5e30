"""A loopback HTTP server that records each request and answers from a queue of canned replies.

For tests that check what goes on the wire (paths, query strings, headers) independently of
the fake Klaviyo.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs


@attrs.frozen
class Recorded:
    method: str
    raw_path: str  # exactly as sent on the request line, still percent-encoded
    headers: dict[str, str]


@attrs.frozen
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = attrs.field(factory=lambda: {"Content-Type": "application/json"})

    @classmethod
    def json(cls, document: Any, status: int = 200, **headers: str) -> Reply:
        return cls(
            status, json.dumps(document).encode(), {"Content-Type": "application/json", **headers}
        )


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Recorded] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_reply(self) -> Reply:
        with self.lock:
            return self.replies.pop(0) if self.replies else self.default


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingServer

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append(
                Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            )
        reply = self.server.next_reply()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


@contextmanager
def recording_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
