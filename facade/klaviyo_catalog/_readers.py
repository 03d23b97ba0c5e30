"""Typed readers over a decoded JSON document's plain dicts. No I/O here.

Each reads one member and checks its type: the value (converted where the facade surfaces a
richer type), None where it is absent or null, or `Invalid` naming where the document went
wrong. `_jsonapi` reads whole documents with them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from klaviyo_catalog_api.views import parse_datetime

from ._models import JobStatus


class Invalid(Exception):
    """A schema mismatch inside a document; the caller adds the status and excerpt."""


# --- one member each --------------------------------------------------------------


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


def opt_str(d: Mapping[str, Any], key: str, where: str) -> str | None:
    """`d[key]` if a string, None if absent or null; any other type is Invalid."""
    value = d.get(key)
    if value is None or isinstance(value, str):
        return value
    raise Invalid(f"{where}.{key} should be a string, got {type(value).__name__}")


def req_str(d: Mapping[str, Any], key: str, where: str) -> str:
    """`d[key]`, which must be a string: absent, null or another type is Invalid."""
    value = opt_str(d, key, where)
    if value is None:
        raise Invalid(f"{where}.{key} is missing")
    return value


def opt_int(d: Mapping[str, Any], key: str, where: str) -> int | None:
    """`d[key]` if an integer, None if absent or null; a bool or any other type is Invalid."""
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{where}.{key} should be an integer, got {value!r:.40}")
    return value


def count(d: Mapping[str, Any], key: str, where: str) -> int:
    """A job's count `d[key]`: 0 when null or absent (as the spec defaults it); a bool or any
    other non-integer is Invalid."""
    value = opt_int(d, key, where)
    # Not a spec fact the curated spec holds: Klaviyo's spec gives completed_count and
    # failed_count `default: 0` (and makes them nullable from 2024-02-15), but the curation
    # keeps no defaults, and total_count has none. So every integer `*_count` is a count
    # (scripts/generate.py, `JOB_ATTRIBUTES`), read alike at every revision: null or absent
    # is 0, as Klaviyo documents it.
    return 0 if value is None else value


def opt_datetime(d: Mapping[str, Any], key: str, where: str) -> dt.datetime | None:
    """`d[key]` as a timezone-aware datetime (a naive one read as UTC), None if absent or null; a
    string that is no ISO 8601 date-time is Invalid."""
    text = opt_str(d, key, where)
    if text is None:
        return None
    try:
        return parse_datetime(text)  # the views' parser: one reading of dates everywhere
    except ValueError as exc:
        raise Invalid(f"{where}.{key} is not an ISO 8601 date-time: {text!r:.40}") from exc


def opt_number(d: Mapping[str, Any], key: str, where: str) -> float | None:
    """`d[key]` as a float (JSON does not tell 1 from 1.0), None if absent or null; a bool or
    any other type is Invalid."""
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):  # JSON: no bool numbers
        raise Invalid(f"{where}.{key} should be a number, got {value!r:.40}")
    try:
        return float(value)
    except OverflowError as exc:  # an integer no float can hold
        raise Invalid(f"{where}.{key} is out of range: {value!r:.40}") from exc


def opt_bool(d: Mapping[str, Any], key: str, where: str) -> bool | None:
    """`d[key]` if a boolean, None if absent or null; any other type is Invalid."""
    value = d.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise Invalid(f"{where}.{key} should be a boolean, got {value!r:.40}")


def opt_object(d: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    """`d[key]` if a JSON object (a copy), None if absent or null; any other type is Invalid."""
    value = d.get(key)
    return None if value is None else dict(obj(value, f"{where}.{key}"))


def opt_list(d: Mapping[str, Any], key: str, where: str) -> list[Any] | None:
    """`d[key]` if a JSON array, None if absent or null; any other type is Invalid."""
    value = d.get(key)
    return None if value is None else seq(value, f"{where}.{key}")


def opt_strings(d: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    """`d[key]` if an array of strings, None if absent or null; anything else is Invalid."""
    values = opt_list(d, key, where)
    for i, value in enumerate(values or ()):
        if not isinstance(value, str):
            raise Invalid(f"{where}.{key}[{i}] should be a string, got {type(value).__name__}")
    return values


def opt_status(d: Mapping[str, Any], key: str, where: str) -> JobStatus | str | None:
    """`d[key]` as a `JobStatus`, or the string of a status newer than this client; None if
    absent or null; a non-string is Invalid."""
    text = opt_str(d, key, where)
    return None if text is None else JobStatus.parse(text)
