"""A response body as it arrives, read within its bounds: its size, decoded, and the deadline.

The drivers feed a `Body` the raw chunks of a streamed response; it decodes gzip or deflate as
they come and stops at the first byte over the cap, so neither a gzip bomb nor a body that
trickles in past the deadline costs more than the bounds say.
"""

from __future__ import annotations

import zlib
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


class Body:
    """A response body as it arrives, sans-I/O: decoded (gzip or deflate) as it is fed, and
    refused as soon as it passes `max_bytes` decoded or the deadline passes.

    A driver feeds it the raw chunks of a streamed response (`feed`), then takes the finished
    response (`response`). So a gzip bomb costs at most `max_bytes` of memory, and a body that
    trickles in a byte at a time stops at the deadline, whatever the per-read timeout.
    """

    __slots__ = (
        "_chunks",
        "_deadline",
        "_decoder",
        "_max",
        "_raw_deflate",
        "_size",
        "_source",
        "_what",
    )

    def __init__(
        self, source: httpx.Response, max_bytes: int, deadline: Deadline, what: str
    ) -> None:
        self._source = source
        self._max = max_bytes
        self._deadline = deadline
        self._what = what
        self._size = 0
        self._chunks: list[bytes] = []
        self._raw_deflate = False
        codings = [
            c.strip().lower()
            for c in source.headers.get("content-encoding", "").split(",")
            if c.strip() and c.strip().lower() != "identity"
        ]
        self._decoder: Any = None
        if len(codings) > 1 or (codings and codings[0] not in _WBITS):
            raise self._invalid(
                f"the response has Content-Encoding {', '.join(codings)!r:.60}, "
                "which was not asked for (Accept-Encoding: gzip, deflate)"
            )
        if codings:
            self._decoder = zlib.decompressobj(_WBITS[codings[0]])
            self._raw_deflate = codings[0] == "deflate"
        else:
            declared = source.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise self._too_large()  # refused before reading any of it

    def feed(self, chunk: bytes) -> None:
        """Take the next raw chunk; raises InvalidResponseError or DeadlineExceededError."""
        if self._decoder is None:
            self._add(chunk)
        else:
            self._decode(chunk)
        if self._deadline.seconds_left() <= 0:
            raise self._deadline.exceeded(f"{self._what}: reading the response body")

    def response(self) -> httpx.Response:
        """The response, with its whole decoded body in `.content`."""
        source = self._source
        content = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        headers = source.headers
        if self._decoder is not None:
            # Decoded already: without its Content-Encoding, httpx will not decode it again.
            headers = httpx.Headers(
                [(k, v) for k, v in headers.raw if k.lower() not in _ENCODING_HEADERS]
            )
        return httpx.Response(
            source.status_code,
            headers=headers,
            content=content,
            request=source.request,
            # Not the network stream: an error keeps its response, and needs no socket.
            extensions={k: v for k, v in source.extensions.items() if k in _KEPT_EXTENSIONS},
        )

    def _decode(self, data: bytes) -> None:
        """Decompress `data` into the body, never more than one byte past the cap however well it
        compresses."""
        decoder = self._decoder
        while True:
            step = min(self._max - self._size + 1, _DECODE_STEP)
            try:
                # Never more than one byte past the cap, however well the data compresses, and
                # in steps of at most 1 MiB (zlib grows one output buffer by doubling).
                out = decoder.decompress(data, step)
            except zlib.error:
                if self._raw_deflate and self._size == 0:
                    # "deflate" is sometimes sent without its zlib wrapper.
                    self._raw_deflate = False
                    self._decoder = decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise self._invalid("the response body is not valid compressed data") from None
            self._raw_deflate = False
            self._add(out)
            if decoder.eof:
                return  # what follows the end of the stream is ignored, as httpx does
            data = decoder.unconsumed_tail
            if not data and len(out) < step:
                return  # all input consumed and all of its output taken

    def _add(self, data: bytes) -> None:
        """Keep a chunk of the decoded body, or stop at the first byte over max_response_bytes."""
        if data:
            self._size += len(data)
            if self._size > self._max:
                raise self._too_large()
            self._chunks.append(data)

    def _too_large(self) -> InvalidResponseError:
        """The error for a body over max_response_bytes."""
        return self._invalid(
            f"the response body is larger than max_response_bytes={self._max}; stopped reading"
        )

    def _invalid(self, problem: str) -> InvalidResponseError:
        """An InvalidResponseError about this response's body, naming the operation and the
        status."""
        return InvalidResponseError(
            f"{self._what}: HTTP {self._source.status_code}: {problem}",
            status_code=self._source.status_code,
        )


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_DECODE_STEP = 1 << 20
_KEPT_EXTENSIONS = frozenset({"http_version", "reason_phrase"})
_ENCODING_HEADERS = frozenset({b"content-encoding", b"content-length"})
ACCEPT_ENCODING = "gzip, deflate"  # the codings Body decodes; nothing else is asked for
