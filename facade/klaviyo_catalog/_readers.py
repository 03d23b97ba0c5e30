"""Typed readers over a decoded JSON document's plain dicts. No I/O here.

Each reads one member and checks its type: the value (converted where the facade surfaces a
richer type), None where it is absent or null, or `Invalid` naming where the document went
wrong. `_jsonapi` reads whole documents with them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from klaviyo_catalog_api.views import parse_datetime

from ._models import JobStatus


class Invalid(Exception):
    """A schema mismatch inside a document; the caller adds the status and excerpt."""


Reader = Callable[[Mapping[str, Any], str, str], Any]

# How a type is named in an error ("data.id should be a string, got int").
_NOUNS: dict[object, str] = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "a list",
}


def obj(value: Any, where: str) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else Invalid naming `where`."""
    if not isinstance(value, dict):
        raise Invalid(f"{where} should be an object, got {type(value).__name__}")
    return value


def seq(value: Any, where: str) -> list[Any]:
    """`value` if it is a JSON array, else Invalid naming `where`."""
    if not isinstance(value, list):
        raise Invalid(f"{where} should be a list, got {type(value).__name__}")
    return value


def typed(
    kinds: type | tuple[type, ...],
    convert: Callable[[Any], Any] | None = None,
    meaning: str = "",
) -> Reader:
    """The reader of a member of the JSON type(s) `kinds`: `d[key]` (through `convert`, whose
    ValueError or OverflowError says it is not `meaning`), None if absent or null; a value of
    another type is Invalid, and so is a bool where a number is expected (JSON has no bool
    numbers)."""
    noun = _NOUNS.get(kinds, "a number")

    def read(d: Mapping[str, Any], key: str, where: str) -> Any:
        value = d.get(key)
        if value is None:
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
            raise Invalid(f"{where}.{key} should be {noun}, got {type(value).__name__}")
        if convert is None:
            return value
        try:
            return convert(value)
        except (ValueError, OverflowError) as exc:  # OverflowError: an integer past any float
            raise Invalid(f"{where}.{key} is not {meaning}: {value!r:.40}") from exc

    return read


opt_str = typed(str)
opt_int = typed(int)
# Timezone-aware, a naive value read as UTC: the views' parser, one reading of dates everywhere.
opt_datetime = typed(str, parse_datetime, "an ISO 8601 date-time")


def req_str(d: Mapping[str, Any], key: str, where: str) -> str:
    """`d[key]`, which must be a string: absent, null or another type is Invalid."""
    value: str | None = opt_str(d, key, where)
    if value is None:
        raise Invalid(f"{where}.{key} is missing")
    return value


def count(d: Mapping[str, Any], key: str, where: str) -> int:
    """A job's count `d[key]`: 0 when null or absent (as the spec defaults it); a bool or any
    other non-integer is Invalid."""
    value: int | None = opt_int(d, key, where)
    # Not a spec fact the curated spec holds: Klaviyo's spec gives completed_count and
    # failed_count `default: 0` (and makes them nullable from 2024-02-15), but the curation
    # keeps no defaults, and total_count has none. So every integer `*_count` is a count
    # (scripts/generate.py, `JOB_ATTRIBUTES`), read alike at every revision: null or absent
    # is 0, as Klaviyo documents it.
    return 0 if value is None else value


def opt_status(d: Mapping[str, Any], key: str, where: str) -> JobStatus | str | None:
    """`d[key]` as a `JobStatus`, or the string of a status newer than this client; None if
    absent or null; a non-string is Invalid."""
    text = opt_str(d, key, where)
    return None if text is None else JobStatus.parse(text)
