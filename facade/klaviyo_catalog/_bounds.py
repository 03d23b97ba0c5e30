"""What a response document may hold, checked on its bytes before it is decoded. No I/O here.

`json.loads` is C: it holds the GIL from the first byte to the last, so a document it spends
seconds on stalls every thread and the event loop, whether or not it runs in a worker thread.
What it costs is bounded here, before it starts: the nesting depth, the number of objects and
arrays, and the number of values (read from the body's structure, outside its strings); then
the integers' length while it runs (`loads`). Each bound is a few times what Klaviyo's largest
documents need (measured, see each), and far below what would cost a second to decode.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

#: The deepest nesting of objects and arrays accepted (the document itself is level 1).
#: Klaviyo's documents nest 6 or 7 levels (data, attributes, errors, an error, its meta), the
#: rest is room for an item's `custom_metadata`. Every object returned must pickle, deep-copy
#: and `to_json()` whatever the server sent: `copy.deepcopy` and `to_dict()` take two Python
#: frames per level, so 64 levels stay far inside the interpreter's 1,000, where the 960 levels
#: `json.loads` accepts did not.
MAX_DEPTH = 64
#: The most objects and arrays in one document. A page of 100 jobs that each failed on all of
#: their 100 resources (each error an object with `source` and `meta`, each resource a linkage
#: object) has about 41,000; a job with `MAX_INCLUDED` resources of ten objects each, 20,000.
#: 100,000 empty objects take json.loads about 30 ms; the 5.6 million that 16 MiB of `{},`
#: holds took 1.5 s and 420 MiB.
MAX_CONTAINERS = 100_000
#: The most values (array elements and object members, counted by their separating commas).
#: That page of 100 failed jobs has about 91,000. 500,000 floats take json.loads about 0.15 s;
#: the 4.2 million that 16 MiB of `0.5,` holds took 1.3 s and 200 MiB.
MAX_VALUES = 500_000
#: The longest integer literal, in digits: CPython's own default `sys.set_int_max_str_digits`,
#: kept whatever an app sets it to (0 lifts it, and a 4 MB integer then took over 60 s to
#: convert: the conversion is quadratic). A count Klaviyo sends has at most 20 digits.
MAX_INT_DIGITS = 4_300

#: The most included resources a single-job document may hold. A bulk job takes at most 100
#: resources (and a 5 MB payload), so a job's `included` has at most a few hundred: a document
#: that claims more than 2,000 is not a job. (One with 500,000 took a call 7.2 s.)
MAX_INCLUDED = 2_000
#: The most jobs a page may hold: Klaviyo's pages hold 100.
MAX_PAGE_JOBS = 1_000

# A body shorter than this cannot hold more than MAX_VALUES values (each takes at least a
# digit and a comma), so only longer ones pay for counting commas.
_VALUES_CHECKED_FROM = 2 * MAX_VALUES
# One kind of bracket ("{" as "[", "}" as "]"): the nesting is the same for the depth.
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_NOT_STRUCTURE_OR_COMMA = bytes(sorted(set(range(256)) - set(b'"[]{},')))
_WINDOW = 1 << 20
# A JSON document's first character (after any byte-order mark and whitespace): a body past a
# bound without one is reported as not JSON, not by the bound it broke.
_LOOKS_LIKE_JSON = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*[\[{]")


class Refused(ValueError):
    """A JSON document past one of the bounds; the message says which."""


def check(body: bytes) -> None:
    """Raise `Refused` if `body` is JSON past a bound, ValueError if it is not JSON as far as
    its structure shows (unpaired brackets, NUL bytes; it never reaches the decoder then).
    Exact for UTF-8 JSON: a document within the bounds always passes.

    The structure is read without decoding: escaped backslashes and quotes are dropped, then
    everything but quotes and brackets (and commas, for a long body), then each string's
    contents. It costs about a fifth of json.loads: 50 µs on a job with 100 items (57 KB).
    """
    if b"\x00" in body:
        # UTF-8 JSON never holds a NUL byte (RFC 8259 requires UTF-8); UTF-16 and UTF-32,
        # which json.loads would guess and read, would defeat the escape handling below.
        raise ValueError("the body holds NUL bytes: it is not UTF-8 JSON")
    trouble = _trouble(body)
    if trouble is not None:
        if not _LOOKS_LIKE_JSON.match(body):
            raise ValueError(f"not JSON, and {trouble}")  # an HTML page, say
        raise Refused(trouble)


def _trouble(body: bytes) -> str | None:
    """The bound `body` is past, or None; ValueError for unpaired brackets."""
    if b"\\" in body:
        # Escapes pair from the left: "\\\\" first, then an escaped quote.
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    counted = len(body) >= _VALUES_CHECKED_FROM
    structure = _outside_strings(
        body.translate(_BRACKETS, _NOT_STRUCTURE_OR_COMMA if counted else _NOT_STRUCTURE)
    )
    if counted:
        values = structure.count(b",")
        if values > MAX_VALUES:
            return f"it holds over {values:,} values; at most {MAX_VALUES:,} are read"
        structure = structure.replace(b",", b"")
    containers = len(structure) // 2
    if containers > MAX_CONTAINERS:
        return f"it holds {containers:,} objects and arrays; at most {MAX_CONTAINERS:,} are read"
    for _ in range(MAX_DEPTH):
        inner = structure.replace(b"[]", b"")  # one level a pass: the innermost pairs
        if len(inner) == len(structure):
            break  # nothing pairs up (all gone, or a document cut short)
        structure = inner
    if not structure:
        return None
    if structure.count(b"[") != structure.count(b"]") or b"[]" not in structure:
        raise ValueError("its brackets do not pair up: it is not JSON (cut short?)")
    return f"it nests deeper than {MAX_DEPTH} levels"


def _outside_strings(reduced: bytes) -> bytes:
    """`reduced` (quotes and structure only) without the strings' contents."""
    quotes = reduced.count(b'"')
    if not quotes:
        return reduced
    if reduced.count(b'""') * 2 == quotes:
        # Every quote is next to its partner, so no string holds a bracket or comma (the
        # usual case): the quotes alone go.
        return reduced.translate(None, b'"')
    # Drop the strings without structure first (a pair of quotes that touch: one string, or
    # the end of one and the start of the next, whose contents merge), then the rest, by
    # splitting a window at a time: a window's parts take bounded memory, and the GIL is let
    # go between windows.
    reduced = reduced.replace(b'""', b"")
    kept = []
    inside = 0
    for start in range(0, len(reduced), _WINDOW):
        parts = reduced[start : start + _WINDOW].split(b'"')
        kept.append(b"".join(parts[inside::2]))
        inside ^= (len(parts) - 1) & 1  # an odd number of quotes in the window flips it
    return b"".join(kept)


def loads(decoder: Callable[[bytes], Any], body: bytes) -> Any:
    """`decoder(body)`; with the standard library's decoder, an integer literal over
    MAX_INT_DIGITS digits is refused before it is converted, whatever the interpreter allows:
    `Refused` where the app lifted the interpreter's own limit, the interpreter's ValueError
    where it did not (orjson, the [speedups] extra, refuses anything over 64 bits itself)."""
    if decoder is json.loads and not 0 < sys.get_int_max_str_digits() <= MAX_INT_DIGITS:
        return json.loads(body, parse_int=_int)
    return decoder(body)


def _int(literal: str) -> int:
    """An integer literal's value; Refused over MAX_INT_DIGITS digits."""
    digits = len(literal) - literal.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise Refused(f"it holds an integer of {digits:,} digits; at most {MAX_INT_DIGITS:,}")
    return int(literal)
