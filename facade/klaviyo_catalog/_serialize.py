"""Plain JSON for results: what `to_dict()` and `to_json()` of every result share.

One shape for everything: an object's public attributes under their Python names, flat, with
datetimes as ISO 8601 strings (with their UTC offset), statuses as strings, and nested results
as their own `to_dict()`. So a job and the items it includes read the same way.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from typing import Any

from klaviyo_catalog_api.views import json_text


def json_ready(value: Any) -> Any:
    """`value` with every datetime, enum, mapping, sequence and result made plain JSON."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # a StrEnum (JobStatus) becomes its plain value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return json_ready(value.value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, Sequence | set | frozenset):
        return [json_ready(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not JSON-ready")


def dumps(document: Mapping[str, Any], indent: int | None) -> str:
    """Strict JSON text, which never fails on what a server sent (`json_text`, shared with the
    views): NaN and ±Infinity as null, a lone surrogate escaped; non-ASCII otherwise kept."""
    return json_text(document, indent)
