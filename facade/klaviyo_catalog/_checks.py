"""Every argument check of the library, and the one rule for which error a bad argument gets.

The rule:

- **What configures a client** is refused with `ConfigurationError`, when the client is built:
  the arguments of `CatalogJobs` / `AsyncCatalogJobs` and of `with_options()`, the fields
  of a `RetryPolicy` and of a `Rate`, and the arguments of the rate limiters
  (`MemoryRateLimiter`, `RedisRateLimiter`; checked where they are defined).
- **What a call is given** is refused with `InvalidRequestError`, when the call is made and
  before any request: a job id, `include`, `fields`, `status`, `cursor`, `max_pages`, and the
  waits' `poll_interval`, `max_poll_interval`, `timeout`, `quota_share` and `kind`. `iter_*`
  checks its arguments when called, not at the first page.
- **TypeError only where Python itself raises it**: an argument a method does not take, one
  missing, too many positional ones.

A value of the wrong type (a str of seconds, a bool for a count, a float for a number of
retries) is a bad value like any other: it gets its rule's error, not a TypeError. Both
errors are `KlaviyoError`s and `ValueError`s. Each message names the argument and what it
must be, and quotes the value given, shortened (never a credential: those are checked in
`_auth`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard
from urllib.parse import quote

import httpx
from klaviyo_catalog_api.catalog_spec import JOB_STATUSES, OPERATIONS, OperationSpec

from ._ratelimit import MAX_WAIT, Rate
from .errors import ConfigurationError, InvalidRequestError

# The `rate_limits` a client takes: one list for every operation, or lists by operation name.
RateLimits = Sequence[Rate] | Mapping[str, Sequence[Rate]] | None
# Which of the two errors a check raises: the rule above decides, by who gives the value.
Refusal = type[ConfigurationError] | type[InvalidRequestError]

# Limits on what an argument may add to the URL (httpx refuses URLs over 64 KiB). Klaviyo's job
# ids are 26 characters, its cursors a few hundred characters.
MAX_JOB_ID_CHARS = 1_024
MAX_CURSOR_URL_CHARS = 32_768  # once percent-encoded
# How a cursor's bytes that are not UTF-8 are held in its str, both ways (see
# `_jsonapi.next_page`): "%FF" is "\udcff", sent back as "%FF".
CURSOR_ERRORS = "surrogateescape"
#: The largest `max_retry_after`: a Retry-After beyond a year is not a wait but garbage, and
#: the limiters' own ceiling on any pause or hint.
MAX_RETRY_AFTER = MAX_WAIT


# --- numbers, for either rule ------------------------------------------------------------------


def _number(value: object) -> TypeGuard[int | float]:
    """An int or a float, not a bool (True is no number of seconds)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def seconds(
    value: object, name: str, *, refusal: Refusal = ConfigurationError, zero: bool = False
) -> float:
    """A finite, positive number of seconds (or zero, with `zero`)."""
    if not (_number(value) and math.isfinite(value) and (value > 0 or (zero and value == 0))):
        raise refusal(
            f"{name} must be a finite number of seconds {'>=' if zero else '>'} 0, "
            f"got {value!r:.40}"
        )
    return float(value)


def optional_seconds(value: object, name: str) -> float | None:
    """A finite, positive number of seconds, or None (what configures a client)."""
    if value is None:
        return None
    if not (_number(value) and math.isfinite(value) and value > 0):
        raise ConfigurationError(
            f"{name} must be a finite number of seconds > 0 (or None), got {value!r:.40}"
        )
    return float(value)


def _count(value: object, name: str, least: int, refusal: Refusal) -> int:
    """An int >= `least` (a bool is no count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise refusal(f"{name} must be an int >= {least}, got {value!r:.40}")
    return value


# --- what configures a client: ConfigurationError ----------------------------------------------


def timeout(value: object) -> httpx.Timeout:
    """An httpx.Timeout from a number of seconds, or one given whose phases are each a number of
    seconds or None; all finite and > 0."""
    if isinstance(value, httpx.Timeout):
        for phase in ("connect", "read", "write", "pool"):
            optional_seconds(getattr(value, phase), f"timeout.{phase}")
        return value
    return httpx.Timeout(seconds(value, "timeout"))


def retries(value: object) -> int:
    """A number of retries: an int >= 0."""
    return _count(value, "max_retries", 0, ConfigurationError)


def byte_count(value: object) -> int:
    """A response size cap: an int >= 1."""
    return _count(value, "max_response_bytes", 1, ConfigurationError)


def retry_after_ceiling(value: object) -> float:
    """The longest Retry-After waited out: 0 to a year of seconds."""
    if not (_number(value) and 0 <= value <= MAX_RETRY_AFTER):
        raise ConfigurationError(
            f"max_retry_after must be between 0 and {MAX_RETRY_AFTER:.0f} seconds (a year), "
            f"got {value!r:.40}"
        )
    return float(value)


def rate_limits(value: RateLimits) -> RateLimits:
    """`rate_limits` checked: lists of Rate, for known operations only; as a list, or a dict by
    operation. Each list becomes a tuple: the limiter knows a tuple it has seen by its
    identity."""

    def check(rates: Any, where: str) -> tuple[Rate, ...]:
        if isinstance(rates, Rate):
            rates = [rates]
        if (
            not isinstance(rates, Sequence)
            or not rates
            or not all(isinstance(r, Rate) for r in rates)
        ):
            raise ConfigurationError(f"{where} must be a non-empty list of klaviyo_catalog.Rate")
        return tuple(rates)

    if value is None:
        return None
    if isinstance(value, Mapping):
        unknown = sorted(str(op) for op in value if op not in OPERATIONS)
        if unknown:
            raise ConfigurationError(
                f"rate_limits names no such operation: {', '.join(unknown)}; "
                f"operations: {', '.join(sorted(OPERATIONS))}"
            )
        return {str(op): check(rates, f"rate_limits[{op!r}]") for op, rates in value.items()}
    return check(value, "rate_limits")


# --- what a call is given: InvalidRequestError ------------------------------------------------


def max_pages(value: object) -> int | None:
    """A walk's page budget: a positive int, or None (no budget)."""
    return None if value is None else _count(value, "max_pages", 1, InvalidRequestError)


def wait_timeout(value: object) -> float:
    """How long a wait may take: seconds >= 0 (inf: no limit)."""
    if not (_number(value) and value >= 0 and not math.isnan(value)):
        raise InvalidRequestError(f"timeout must be >= 0, got {value!r:.40}")
    return float(value)


def max_poll_interval(value: object, poll_interval: float) -> float | None:
    """The longest interval between polls: seconds >= `poll_interval`, or None."""
    if value is not None and not (
        _number(value) and math.isfinite(value) and value >= poll_interval
    ):
        raise InvalidRequestError(f"max_poll_interval must be >= poll_interval, got {value!r:.40}")
    return None if value is None else float(value)


def quota_share(value: object) -> float:
    """The share of each rate limit a wait may use: in (0, 1]."""
    if not (_number(value) and 0 < value <= 1):
        raise InvalidRequestError(f"quota_share must be in (0, 1], got {value!r:.40}")
    return float(value)


def fields_mapping(operation: str, fields: object) -> None:
    """`fields` is a mapping (of a JSON:API type to field names), or None."""
    if fields is not None and not isinstance(fields, Mapping):
        raise InvalidRequestError(f"{operation}: fields must map a type to field names")


def include(spec: OperationSpec, include: object) -> tuple[str, ...]:
    """The relationships to include, each one the spec allows, without repeats; a lone string
    is taken as a list of one."""
    if include is None:
        return ()
    if isinstance(include, str):
        include = [include]  # a lone "items" is a common, harmless slip
    if not isinstance(include, Iterable):
        raise InvalidRequestError(f"{spec.name}: include must be a list of relationships")
    names = list(include)
    for name in names:  # checked before dedup, which would need hashable names
        if name not in spec.include:
            allowed = ", ".join(spec.include) or "nothing (this endpoint has no include)"
            raise InvalidRequestError(f"{spec.name}: cannot include {name!r}; allowed: {allowed}")
    return tuple(dict.fromkeys(names))


def parameters(spec: OperationSpec, query: Mapping[str, str]) -> None:
    """Every query parameter of a request is one its operation takes."""
    unknown = [wire for wire in query if wire not in spec.query]
    if unknown:
        raise InvalidRequestError(f"{spec.name} does not take {', '.join(unknown)}")


def field_names(spec: OperationSpec, json_type: object, names: object) -> list[str]:
    """The sparse fields asked for one type: a non-empty list of names the spec allows for it
    (an iterator is read once)."""
    allowed = spec.fields.get(json_type) if isinstance(json_type, str) else None
    if allowed is None:
        types = ", ".join(spec.fields)
        raise InvalidRequestError(
            f"{spec.name}: no sparse fieldset for type {json_type!r}; types: {types}"
        )
    if not isinstance(names, str) and isinstance(names, Iterable):
        names = list(names)  # read once: an iterator is consumed by the checks below
    if isinstance(names, str) or not isinstance(names, list) or not names:
        raise InvalidRequestError(
            f"{spec.name}: fields[{json_type}] must be a non-empty list of field names"
        )
    for name in names:
        if name not in allowed:
            raise InvalidRequestError(
                f"{spec.name}: {json_type} has no field {name!r}; fields: {', '.join(allowed)}"
            )
    return names


def status(spec: OperationSpec, status: object) -> str:
    """The list filter's status, one the spec knows."""
    if not spec.is_list:
        raise InvalidRequestError(f"{spec.name} does not filter by status")
    # Only the statuses the spec knows: Klaviyo answers an unknown one with an empty list,
    # which a typo ("processin") would turn into a silent "nothing to do". Checking against
    # the list also keeps quotes and parentheses out of the filter expression.
    if not isinstance(status, str):  # str(True) would go out as "True"
        raise InvalidRequestError(
            f"{spec.name}: status must be a str such as 'processing', got {type(status).__name__}"
        )
    if status not in JOB_STATUSES:
        raise InvalidRequestError(
            f"{spec.name}: {status!r:.60} is not a job status; "
            f"known statuses: {', '.join(JOB_STATUSES)}"
        )
    return str(status)


def job_id(spec: OperationSpec, job_id: object) -> str:
    """A job id that can be sent as one path segment: a non-empty, encodable string of bounded
    length that is no path step."""
    if not isinstance(job_id, str) or not job_id.strip():
        raise InvalidRequestError(f"{spec.name}: job_id must be a non-empty string")
    if len(job_id) > MAX_JOB_ID_CHARS:
        raise InvalidRequestError(
            f"{spec.name}: job_id is {len(job_id)} characters long; "
            f"at most {MAX_JOB_ID_CHARS} are accepted"
        )
    if job_id in (".", ".."):  # would be read as a path step, not as an id
        raise InvalidRequestError(f"{spec.name}: {job_id!r} is not a job id")
    if not _utf8(job_id):
        raise InvalidRequestError(f"{spec.name}: job_id is not valid Unicode: {job_id!r:.60}")
    return job_id


def cursor(cursor: object) -> str:
    """A cursor that can be sent: a non-empty string standing for one byte string, no longer
    than MAX_CURSOR_URL_CHARS once percent-encoded."""
    if not isinstance(cursor, str) or not cursor or not _cursor_bytes(cursor):
        raise InvalidRequestError(
            "cursor must be a non-empty string of valid Unicode (or a Page.next_cursor, "
            "whose bytes that are not UTF-8 are surrogate escapes)"
        )
    encoded = len(quote(cursor, safe=",", errors=CURSOR_ERRORS))
    if encoded > MAX_CURSOR_URL_CHARS:
        raise InvalidRequestError(
            f"cursor is {encoded} characters long once URL-encoded; at most "
            f"{MAX_CURSOR_URL_CHARS} can be sent"
        )
    return cursor


def _cursor_bytes(cursor: str) -> bool:
    """True for a cursor that stands for one byte string: UTF-8 text, with any byte that is not
    UTF-8 as a surrogate escape (as `Page.next_cursor` holds it). Other lone surrogates, or
    escapes of bytes that would read as UTF-8 (which `next_cursor` never holds: they would
    read back as text), are refused."""
    try:
        raw = cursor.encode("utf-8", CURSOR_ERRORS)
    except UnicodeEncodeError:
        return False
    return raw.decode("utf-8", CURSOR_ERRORS) == cursor


def _utf8(text: str) -> bool:
    """False for a str UTF-8 cannot encode (a lone surrogate), which could not be sent."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
