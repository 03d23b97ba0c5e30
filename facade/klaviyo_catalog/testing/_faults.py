"""Faults: what the network, a CDN, an overloaded Klaviyo or a hostile server can do to one
response."""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import json
import math
import struct
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

from ._documents import error_document, throttled_document
from ._http import Reply

RetryAfter = int | float | dt.datetime | str | None
FaultKind = Literal[
    "status",
    "html",
    "truncated",
    "empty",
    "reset",
    "delay",
    "body",
    "stall",
    "trickle",
    "endless",
    "oversized",
    "gzip_bomb",
]

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
    declared_length: int | None = None

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
        return cls("delay", seconds=_seconds("Fault.delay", seconds))

    @classmethod
    def stall(cls, seconds: float | None = None) -> Fault:
        """Read the request, then never answer: the connection stays open and silent until
        the client hangs up or the fake stops, or, with `seconds`, until the fake hangs up
        after that long (as a proxy's idle timeout does). For a client's timeouts and
        deadlines. The request is logged when it arrives (status None) and uses no quota."""
        if seconds is None:
            return cls("stall", seconds=math.inf)
        return cls("stall", seconds=_seconds("Fault.stall", seconds))

    @classmethod
    def trickle(cls, seconds_per_byte: float) -> Fault:
        """Answer normally, but send the body one byte at a time, `seconds_per_byte` apart
        (the headers at once), as a congested or malicious server can; a read timeout alone
        never fires. The request counts against the rate limits, as the normal answer does.
        Stopping the fake ends it at once."""
        return cls("trickle", seconds=_seconds("Fault.trickle", seconds_per_byte))

    @classmethod
    def endless(cls) -> Fault:
        """A 200 whose chunked body never ends: blank space, 64 KiB at a time, until the
        client hangs up. For a client's cap on the size of a response."""
        return cls("endless")

    @classmethod
    def oversized(cls, declared_bytes: int = 500_000_000) -> Fault:
        """A 200 declaring `Content-Length: declared_bytes`, then blank space as fast as the
        client reads: for a client that should refuse a body too large before reading it."""
        if isinstance(declared_bytes, bool) or not isinstance(declared_bytes, int):
            raise TypeError(f"declared_bytes must be an int, got {declared_bytes!r}")
        if declared_bytes < 1:
            raise ValueError(f"declared_bytes must be positive, got {declared_bytes!r}")
        return cls("oversized", declared_length=declared_bytes)

    @classmethod
    def gzip_bomb(cls, decoded_bytes: int = 1 << 30) -> Fault:
        """A 200 with `Content-Encoding: gzip` whose body is small but decodes to
        `decoded_bytes` of blank space (1 GiB, the default, is about 1 MB on the wire): for a
        client that should cap what it decodes, not only what it receives. `decoded_bytes` is
        rounded down to whole MiB (at least one)."""
        if isinstance(decoded_bytes, bool) or not isinstance(decoded_bytes, int):
            raise TypeError(f"decoded_bytes must be an int, got {decoded_bytes!r}")
        if decoded_bytes < _MIB:
            raise ValueError(f"decoded_bytes must be at least 1 MiB, got {decoded_bytes!r}")
        encoding = (("Content-Encoding", "gzip"),)
        return cls("gzip_bomb", payload=_gzip_bomb(decoded_bytes // _MIB), headers=encoding)

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
        """The response this fault sends in place of the real one (not for `delay`, `stall`
        or `trickle`, which act on the real one)."""
        body = self._error_body() if self.kind == "status" else self.payload
        headers = (("Content-Type", self.content_type or json_type), *self.headers)
        if self.kind == "reset":
            return Reply(200, body, headers, "mid_body" if self.mid_body else "before_response")
        if self.kind in ("endless", "oversized"):
            return Reply(200, b"", headers, endless=True, declared_length=self.declared_length)
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


_MIB = 1 << 20


@functools.cache
def _gzip_bomb(mebibytes: int) -> bytes:
    """A valid gzip stream of `mebibytes` MiB of spaces, built the quick way: after a full
    flush a deflate stream refers back to nothing, so every further MiB of spaces compresses
    to the same bytes, which are repeated; the trailer is computed for the whole."""
    block = b" " * _MIB
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()  # the final empty block, and a trailer for two blocks only
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(block, crc)
    trailer = struct.pack("<II", crc, (mebibytes * _MIB) & 0xFFFFFFFF)
    return first + repeated * (mebibytes - 1) + end[:-8] + trailer


def _seconds(what: str, seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{what} takes a number of seconds, got {seconds!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what} seconds must be finite and >= 0, got {seconds!r}")
    return float(seconds)


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
