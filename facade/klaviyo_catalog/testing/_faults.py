"""Faults: what the network, a CDN or an overloaded Klaviyo can do to one response."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

from ._documents import error_document, throttled_document
from ._http import Reply

FaultKind = Literal["status", "html", "truncated", "empty", "reset", "delay", "body"]

_CHALLENGE_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>One moment, please</title></head>
<body><h1>Checking your connection</h1>
<p>This request is being verified before it reaches the site. Enable JavaScript and retry.</p>
</body></html>
"""
# A well-formed document to cut in half: the client must fail on the JSON, not on the HTTP.
_WHOLE_DOCUMENT = json.dumps(
    {
        "data": [
            {
                "type": "catalog-item-bulk-create-job",
                "id": "01JFAKETRUNCATED000000000",
                "attributes": {"status": "processing", "total_count": 10, "errors": []},
            }
        ],
        "links": {"self": None, "next": None},
    },
    separators=(",", ":"),
).encode()


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour; build them with the class methods, e.g. `Fault.status(503)`."""

    kind: FaultKind
    http_status: int = 200
    payload: bytes = b""
    content_type: str | None = None  # None: the JSON media type of the request's revision
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    mid_body: bool = True

    @classmethod
    def status(cls, status: int, *, retry_after: str | None = None) -> Fault:
        """A JSON:API error response with this status (e.g. 500, 502, 503, 504)."""
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        return cls("status", http_status=status, headers=headers)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1") -> Fault:
        """A 429 like the real limiter's; `retry_after` may be seconds, an HTTP-date or None."""
        return cls.status(429, retry_after=retry_after)

    @classmethod
    def html(cls, status: int = 403) -> Fault:
        """A CDN challenge page (text/html) instead of JSON."""
        return cls("html", http_status=status, payload=_CHALLENGE_PAGE, content_type="text/html")

    @classmethod
    def truncated(cls) -> Fault:
        """A 200 whose JSON body stops halfway; Content-Length matches what is sent."""
        return cls("truncated", payload=_WHOLE_DOCUMENT[: len(_WHOLE_DOCUMENT) // 2])

    @classmethod
    def empty(cls, status: int = 200) -> Fault:
        return cls("empty", http_status=status)

    @classmethod
    def reset(cls, *, mid_body: bool = True) -> Fault:
        """Abort with a TCP reset: after the headers and part of the body, or before anything."""
        return cls("reset", payload=_WHOLE_DOCUMENT, mid_body=mid_body)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait, then answer normally (the request then counts against the rate limits)."""
        return cls("delay", seconds=seconds)

    @classmethod
    def body(
        cls,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Fault:
        """Any status, body and content type, e.g. for fuzzing a client's parser."""
        return cls(
            "body", http_status=status, payload=body, content_type=content_type, headers=headers
        )

    def reply(self, json_type: str) -> Reply:
        """The response this fault sends in place of the real one (not for `delay`)."""
        body = self._error_body() if self.kind == "status" else self.payload
        headers = (("Content-Type", self.content_type or json_type), *self.headers)
        if self.kind == "reset":
            return Reply(200, body, headers, "mid_body" if self.mid_body else "before_response")
        return Reply(self.http_status, body, headers)

    def _error_body(self) -> bytes:
        status = self.http_status
        if status == 429:
            retry_after = dict(self.headers).get("Retry-After", "")
            seconds = int(retry_after) if retry_after.isdigit() else None
            return json.dumps(throttled_document(seconds)).encode()
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown error"
        code = phrase.lower().replace(" ", "_").replace("-", "_")
        detail = f"The server answered {status} (an injected fault)."
        return json.dumps(error_document(status, code, f"{phrase}.", detail)).encode()
