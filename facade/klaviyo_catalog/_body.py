"""A response body as it arrives, read within its bounds: its size, decoded, and the deadline.

`bounded` gives the response a transport returned a `Body` as its stream: it decodes gzip or
deflate as the raw chunks come and stops at the first byte over the cap, so neither a gzip bomb
nor a body that trickles in past the deadline costs more than the bounds say. httpx's own
`read()` then reads the decoded body into that same response.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from ._deadline import Deadline
from .errors import InvalidResponseError

#: The default cap on a response body, decoded: four times Klaviyo's largest document here, a
#: page of 100 jobs that each failed on all of their 100 resources (every error with its
#: pointer and meta, every resource's linkage), which is 3.9 MB; a job's included resources
#: stay near the 5 MB payload a bulk job may carry. A 13.7 MiB job with 2,000 included items
#: reads in about 40 ms of CPU; the 44.6 MiB the earlier 50 MiB cap let through took 7 s.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def bounded(response: httpx.Response, max_bytes: int, deadline: Deadline, what: str) -> None:
    """Make `response` read its body within the bounds: its stream becomes a `Body` over the
    raw one, and its Content-Encoding and Content-Length, no longer true of what it reads, go.
    A body read already (by an app's event hook, or a MockTransport's response), which httpx
    decoded, is only measured. The response lets go of its connection's socket (the
    `network_stream` extension). InvalidResponseError for a coding that was not asked for or a
    body (or declared length) over the cap."""
    body = Body(response, max_bytes, deadline, what)
    response.extensions.pop("network_stream", None)  # an error keeps its response, not a socket
    if response.is_stream_consumed:
        body.take(response.content)
        body.raw = None  # the stream read is closed; nothing of it is kept (see Body.close)
    elif body.decoder is not None:
        for name in _ENCODING_HEADERS:
            response.headers.pop(name, None)
    response.stream = body


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response's raw stream, decoded (gzip or deflate) as it is read, and refused as soon as
    it passes `max_bytes` decoded or the deadline passes, so a gzip bomb costs at most
    `max_bytes` of memory, and a body that trickles in a byte at a time stops at the deadline,
    whatever the per-read timeout."""

    __slots__ = ("_deadline", "_max", "_raw_deflate", "_size", "_status", "_what", "decoder", "raw")

    def __init__(
        self, response: httpx.Response, max_bytes: int, deadline: Deadline, what: str
    ) -> None:
        self.raw: Any = response.stream
        self._max = max_bytes
        self._deadline = deadline
        self._what = what
        self._status = response.status_code
        self._size = 0
        self._raw_deflate = False
        codings = [
            c.strip().lower()
            for c in response.headers.get("content-encoding", "").split(",")
            if c.strip() and c.strip().lower() != "identity"
        ]
        self.decoder: Any = None
        if len(codings) > 1 or (codings and codings[0] not in _WBITS):
            raise self._invalid(
                f"the response has Content-Encoding {', '.join(codings)!r:.60}, "
                "which was not asked for (Accept-Encoding: gzip, deflate)"
            )
        if codings:
            self.decoder = zlib.decompressobj(_WBITS[codings[0]])
            self._raw_deflate = codings[0] == "deflate"
        else:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise self._too_large()  # refused before reading any of it

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.raw:
            yield self._feed(chunk)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.raw:
            yield self._feed(chunk)

    def close(self) -> None:
        """Close the raw stream (its connection is free again) and let go of it."""
        # Let go: below it, httpcore's request still holds the key, and an error keeps this
        # response.
        raw, self.raw = self.raw, None
        if raw is not None:
            raw.close()

    async def aclose(self) -> None:
        """`close`, for an async raw stream."""
        raw, self.raw = self.raw, None
        if raw is not None:
            await raw.aclose()

    def _feed(self, chunk: bytes) -> bytes:
        """The next raw chunk, decoded; raises InvalidResponseError or DeadlineExceededError."""
        data = self.take(chunk) if self.decoder is None else self._decode(chunk)
        if self._deadline.seconds_left() <= 0:
            raise self._deadline.exceeded(f"{self._what}: reading the response body")
        return data

    def _decode(self, data: bytes) -> bytes:
        """Decompress `data`, never more than one byte past the cap however well it
        compresses."""
        decoder, out = self.decoder, []
        while True:
            step = min(self._max - self._size + 1, _DECODE_STEP)
            try:
                # Never more than one byte past the cap, however well the data compresses, and
                # in steps of at most 1 MiB (zlib grows one output buffer by doubling).
                piece = decoder.decompress(data, step)
            except zlib.error:
                if self._raw_deflate and self._size == 0:
                    # "deflate" is sometimes sent without its zlib wrapper.
                    self._raw_deflate = False
                    self.decoder = decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise self._invalid("the response body is not valid compressed data") from None
            self._raw_deflate = False
            out.append(self.take(piece))
            if decoder.eof:
                break  # what follows the end of the stream is ignored, as httpx does
            data = decoder.unconsumed_tail
            if not data and len(piece) < step:
                break  # all input consumed and all of its output taken
        return b"".join(out)

    def take(self, data: bytes) -> bytes:
        """`data`, counted into the decoded body; or stop at the first byte over the cap."""
        self._size += len(data)
        if self._size > self._max:
            raise self._too_large()
        return data

    def _too_large(self) -> InvalidResponseError:
        """The error for a body over max_response_bytes."""
        return self._invalid(
            f"the response body is larger than max_response_bytes={self._max}; stopped reading"
        )

    def _invalid(self, problem: str) -> InvalidResponseError:
        """An InvalidResponseError about this response's body, naming the operation and the
        status."""
        return InvalidResponseError(
            f"{self._what}: HTTP {self._status}: {problem}", status_code=self._status
        )


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_DECODE_STEP = 1 << 20
_ENCODING_HEADERS = ("content-encoding", "content-length")
ACCEPT_ENCODING = "gzip, deflate"  # the codings Body decodes; nothing else is asked for
