"""What goes on the wire, without a server: an httpx.MockTransport that records each request and
answers from a queue of canned replies.

For tests that check paths, query strings and headers independently of the fake Klaviyo; the
one loopback server of the tests is FakeKlaviyo.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import attrs
import httpx

BASE_URL = "https://a.klaviyo.com"


@attrs.frozen
class Recorded:
    method: str
    raw_path: str  # exactly as it would go on the request line, still percent-encoded
    headers: dict[str, str]  # lower-cased names


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


class Recorder:
    """Records every request and answers with the next queued reply, else `default`."""

    base_url = BASE_URL

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self.lock = threading.Lock()  # the async tests' worker threads share it too
        self.transport = httpx.MockTransport(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        recorded = Recorded(
            request.method,
            request.url.raw_path.decode("ascii"),
            {name.lower(): value for name, value in request.headers.items()},
        )
        with self.lock:
            self.requests.append(recorded)
            reply = self.replies.pop(0) if self.replies else self.default
        return httpx.Response(reply.status, content=reply.body, headers=reply.headers)

    def client(self, mode: str = "sync") -> httpx.Client | httpx.AsyncClient:
        """An app-supplied httpx client for a facade client of `mode` that sends here."""
        if mode == "sync":
            return httpx.Client(transport=self.transport)
        return httpx.AsyncClient(transport=self.transport)

    def sync_client(self) -> httpx.Client:
        """`client("sync")`, typed."""
        return httpx.Client(transport=self.transport)
