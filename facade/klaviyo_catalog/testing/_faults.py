"""Faults: what the network, a CDN or an overloaded Klaviyo can do to one response."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

from ._documents import error_document, throttled_document
from ._http import Reply

RetryAfter = int | float | dt.datetime | str | None
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
    def status(cls, status: int, *, retry_after: RetryAfter = None) -> Fault:
        """A JSON:API error response with this status (e.g. 500, 502, 503, 504).

        `retry_after` adds a Retry-After header: seconds (`3`, `0.5`), an aware datetime (sent
        as an HTTP-date), or a string sent verbatim (to test odd values).
        """
        _check_status(status)
        if retry_after is None:
            return cls("status", http_status=status)
        return cls("status", http_status=status, headers=(("Retry-After", _header(retry_after)),))

    @classmethod
    def rate_limited(cls, retry_after: RetryAfter = 1) -> Fault:
        """A 429 like the real limiter's: `Fault.rate_limited(3)`.

        `retry_after` is seconds, an aware datetime (an HTTP-date), a string sent verbatim, or
        None for no Retry-After header at all.
        """
        return cls.status(429, retry_after=retry_after)

    @classmethod
    def html(cls, status: int = 403) -> Fault:
        """A CDN challenge page (text/html) instead of JSON."""
        _check_status(status)
        return cls("html", http_status=status, payload=_CHALLENGE_PAGE, content_type="text/html")

    @classmethod
    def truncated(cls) -> Fault:
        """A 200 whose JSON body stops halfway; Content-Length matches what is sent."""
        return cls("truncated", payload=_WHOLE_DOCUMENT[: len(_WHOLE_DOCUMENT) // 2])

    @classmethod
    def empty(cls, status: int = 200) -> Fault:
        """A response with this status and an empty body."""
        _check_status(status)
        return cls("empty", http_status=status)

    @classmethod
    def reset(cls, *, mid_body: bool = True) -> Fault:
        """Abort with a TCP reset: after the headers and part of the body, or before anything."""
        return cls("reset", payload=_WHOLE_DOCUMENT, mid_body=mid_body)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait `seconds` (a number), then answer normally; the request then counts against
        the rate limits. Stopping the fake ends the wait at once."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"Fault.delay takes a number of seconds, got {seconds!r}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"Fault.delay seconds must be finite and >= 0, got {seconds!r}")
        return cls("delay", seconds=float(seconds))

    @classmethod
    def body(
        cls,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Fault:
        """Any status, body and content type, e.g. for fuzzing a client's parser."""
        _check_status(status)
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


def _check_status(status: int) -> None:
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"a fault's HTTP status must be an int from 100 to 599, got {status!r}")


def _header(retry_after: int | float | dt.datetime | str) -> str:
    """The Retry-After header value for a number of seconds, a datetime or a verbatim string."""
    if isinstance(retry_after, str):
        if any(c in retry_after for c in "\r\n"):
            raise ValueError("retry_after must not contain a line break")
        return retry_after
    if isinstance(retry_after, dt.datetime):
        if retry_after.tzinfo is None:
            raise ValueError("retry_after as a datetime must be timezone-aware")
        return email.utils.format_datetime(retry_after.astimezone(dt.UTC), usegmt=True)
    if isinstance(retry_after, bool) or not isinstance(retry_after, int | float):
        raise TypeError(f"retry_after must be seconds, a datetime or a string, not {retry_after!r}")
    if not math.isfinite(retry_after) or retry_after < 0:
        raise ValueError(f"retry_after must be finite and >= 0, got {retry_after!r}")
    return str(retry_after) if isinstance(retry_after, int) else f"{retry_after:g}"
