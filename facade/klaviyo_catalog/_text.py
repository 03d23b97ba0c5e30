"""Text a server sent, made safe to show a person: on a terminal, in a log line, in a sheet.

Job ids, statuses, error details (which quote a merchant's catalog: anyone with catalog write
access writes them), reason phrases and request ids may hold terminal controls (ESC and OSC
sequences, BEL), CR/LF that forge log lines, bidi overrides that reorder what a reader sees,
invisible characters that make two ids look alike, and lone surrogates that no encoder takes.
`escape` shows each of them as an escape (`\\x1b`, `\\u202e`, `\\ud800`), never dropping one.
The library's objects keep the server's exact values; only what crosses to a person (the
CLI's renderers, the arguments of the library's log calls) goes through here.
"""

from __future__ import annotations

import re

__all__ = ["UNSAFE", "Shown", "csv_cell", "escape", "escape_json"]

# Every character not shown as itself: C0 and C1 controls and DEL (Cc), format characters (Cf:
# bidi marks, overrides and isolates, zero-width ones, the invisible tag characters) except
# ZWNJ and ZWJ (U+200C, U+200D), which scripts and emoji sequences need, the line and paragraph
# separators (Zl, Zp), and surrogates (Cs: a lone one cannot be encoded). Listed rather than
# read from unicodedata at import, which takes a quarter of a second;
# tests/cli/test_safe_text.py checks it against unicodedata.
_UNSAFE_CLASS = (
    "\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
UNSAFE = re.compile(f"[{_UNSAFE_CLASS}]")
# The same, less the C0 controls, which JSON text already escapes (and whose LF and spaces an
# indented document uses between its values).
_JSON_UNSAFE = re.compile(f"[{_UNSAFE_CLASS.removeprefix(chr(0) + '-' + chr(0x1F))}]")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (OWASP's CSV injection advice: = + - @ tab CR), and the full-width forms some locales read
# alike. Tab and CR never start an escaped cell; they are listed for a caller that does not
# escape first.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _python_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """`text` with every control, format, separator and surrogate character written as a
    Python-style escape (`\\x1b`, `\\u202e`, `\\U000e0041`); the rest, non-ASCII letters and
    emoji included, as it is. Backslashes are kept as they are: the result is for reading."""
    return UNSAFE.sub(_python_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON writes a character beyond the BMP as its UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def escape_json(text: str) -> str:
    """JSON text (from `json.dumps(..., ensure_ascii=False)`) with the characters `escape`
    shows escaped as JSON `\\uXXXX` escapes. Parsed, it gives exactly the same values: only the
    spelling differs. They can only occur inside strings, where such an escape is valid."""
    return _JSON_UNSAFE.sub(_json_escape, text)


def csv_cell(text: str) -> str:
    """A cell for a CSV meant for a spreadsheet: `escape`d, and, if it would start a formula,
    behind a `'` (which spreadsheets show as text and do not display)."""
    cell = escape(text)
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


class Shown:
    """A log call's argument, escaped when (and only if) the record is formatted:
    `logger.info("... %s", Shown(error))` costs no escaping while the level is off."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return escape(str(self.value))

    def __repr__(self) -> str:
        return escape(repr(self.value))
