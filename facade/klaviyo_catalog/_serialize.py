"""Plain JSON for results: what the `to_dict()` of every result shares.

One shape for everything: an object's public attributes under their Python names, flat, with
datetimes as ISO 8601 strings (with their UTC offset), statuses as strings, and nested results
as their own `to_dict()`. So a job and the items it includes read the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from klaviyo_catalog_api.views import JSONable


def json_ready(value: Any) -> Any:
    """`value` (a result's attribute: JSON as sent, or of the types the results read it as)
    with every datetime, status, mapping, sequence and result made plain JSON."""
    if isinstance(value, str):
        return str(value)  # a StrEnum (JobStatus) becomes its plain value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, JSONable):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [json_ready(v) for v in value]
    return value  # None, a bool or a number
