"""Numbers in response headers (Retry-After, RateLimit-*), read per the HTTP grammar and
bounded where they are read: a server, or anything between it and us, may send any text.

- RFC 9110 §10.2.3: `Retry-After = HTTP-date / delay-seconds`, `delay-seconds = 1*DIGIT`.
- `RateLimit-Remaining` and `RateLimit-Reset` (draft-ietf-httpapi-ratelimit-headers, the form
  Klaviyo sends) are such digits too; `RateLimit-Limit` is a quota, or the draft's list of the
  quota and each window's (`75, 75;w=1, 750;w=60`).

Python's own `int()` and `float()` accept far more ("5_0", "1e308", "+5", " ٣", "inf"), which
is why neither is ever applied to a header here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from ._ratelimit import MAX_BUDGET, Observation

#: Digits past this many (leading zeros aside) are read as `SATURATED`: every bound a caller
#: applies (a year of seconds, a billion requests) is far below it, and a header of thousands
#: of digits is never converted (CPython refuses over 4,300 anyway, with a ValueError).
MAX_DIGITS = 15
SATURATED = 10**MAX_DIGITS

#: An HTTP-date is 29 characters (asctime's 24): a longer value is not one, and is not parsed.
MAX_DATE_LENGTH = 32

#: The most items read from a RateLimit-Limit list: Klaviyo sends three (the quota, then each
#: window's), four with a daily window. A longer list is not believed, and not read further.
MAX_LIMIT_ITEMS = 16

_OWS = " \t"


def read_digits(value: str) -> int | None:
    """`value` (optional whitespace around it) as `1*DIGIT`, the ASCII digits 0-9 only;
    None for anything else. More than `MAX_DIGITS` significant digits read as `SATURATED`."""
    digits = value.strip(_OWS)
    if not (digits.isascii() and digits.isdigit()):  # isdigit alone takes "²" and "٣"
        return None
    digits = digits.lstrip("0") or "0"
    return SATURATED if len(digits) > MAX_DIGITS else int(digits)


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_TIME = r"(\d\d):(\d\d):(\d\d)"
# RFC 9110 §5.6.7's three forms; a recipient must accept all of them. re.ASCII: \d is 0-9 only.
_IMF_FIXDATE = re.compile(rf"{_DAY}, (\d\d) ([A-Z][a-z]{{2}}) (\d{{4}}) {_TIME} GMT", re.ASCII)
_RFC850_DATE = re.compile(rf"{_LONG_DAY}, (\d\d)-([A-Z][a-z]{{2}})-(\d\d) {_TIME} GMT", re.ASCII)
_ASCTIME_DATE = re.compile(rf"{_DAY} ([A-Z][a-z]{{2}}) ([ \d]\d) {_TIME} (\d{{4}})", re.ASCII)


def http_date(value: str) -> dt.datetime | None:
    """`value` as an RFC 9110 HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime
    forms), in UTC; None if it is none of them or names no real instant (31 Feb, 25:00)."""
    value = value.strip(_OWS)
    if len(value) > MAX_DATE_LENGTH:
        return None
    if match := _IMF_FIXDATE.fullmatch(value):
        day, month, year, hour, minute, second = match.groups()
    elif match := _ASCTIME_DATE.fullmatch(value):
        month, day, hour, minute, second, year = match.groups()
    elif match := _RFC850_DATE.fullmatch(value):
        day, month, short_year, hour, minute, second = match.groups()
        # RFC 9110: a two-digit year more than 50 years ahead is the last such year past.
        this_year = dt.datetime.now(dt.UTC).year
        full_year = this_year - this_year % 100 + int(short_year)
        year = str(full_year - 100 if full_year > this_year + 50 else full_year)
    else:
        return None
    if month not in _MONTHS:
        return None
    try:
        return dt.datetime(
            int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=dt.UTC
        )
    except ValueError:
        return None


def rate_limit_observation(headers: Mapping[str, str], max_reset: float) -> Observation | None:
    """A success's RateLimit-Limit, -Remaining and -Reset as an `Observation`; None unless all
    three read per their grammar, with counts of at most `MAX_BUDGET`.

    The reset is capped at `max_reset` (the client's `max_retry_after`, as a Retry-After is):
    it says how long the server's remaining budget holds, and so how long the limiter may hold
    the account's later calls, in this process and, through Redis, in every other one.
    """
    limit = _quota(headers.get("ratelimit-limit"))
    remaining = _count(headers.get("ratelimit-remaining"))
    raw_reset = headers.get("ratelimit-reset")
    reset = None if raw_reset is None else read_digits(raw_reset)
    if limit is None or remaining is None or reset is None:
        return None
    return Observation(limit, remaining, min(float(reset), max_reset))


def _count(value: str | None) -> int | None:
    """A count of requests, if it is digits and at most `MAX_BUDGET`."""
    count = None if value is None else read_digits(value)
    return count if count is not None and count <= MAX_BUDGET else None


def _quota(value: str | None) -> int | None:
    """RateLimit-Limit: a bare quota (`750`), or the draft's list of the quota the other two
    headers describe followed by each window's (`75, 75;w=1, 750;w=60`). From a list, the
    quota of the longest window: Remaining is never more than that, whichever window it
    counts, so it caps Remaining without ever cutting a real budget short. Any malformed item
    and the whole header is not believed."""
    if value is None:
        return None
    items = value.split(",", MAX_LIMIT_ITEMS)  # at most MAX_LIMIT_ITEMS + 1 pieces
    if len(items) > MAX_LIMIT_ITEMS:
        return None
    best: tuple[int, int] | None = None  # (window seconds, quota); a bare quota's window is 0
    for item in items:
        number, *parameters = item.split(";")
        quota = _count(number)
        if quota is None:
            return None
        window = 0
        for parameter in parameters:
            name, _, text = parameter.strip(_OWS).partition("=")
            if name == "w":
                seconds = read_digits(text)
                if seconds is None:
                    return None
                window = seconds
            # Any other parameter (a policy name, a comment) says nothing about the quota.
        if best is None or window > best[0]:
            best = (window, quota)
    return None if best is None else best[1]
