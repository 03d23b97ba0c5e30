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
import email.utils
import re
from collections.abc import Mapping

from ._ratelimit import MAX_BUDGET, Observation

#: Digits past this many (leading zeros aside) are read as `SATURATED`: every bound a caller
#: applies (a year of seconds, a billion requests) is far below it, and a header of thousands
#: of digits is never converted (CPython refuses over 4,300 anyway, with a ValueError).
MAX_DIGITS = 15
SATURATED = 10**MAX_DIGITS

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


# RFC 9110 §5.6.7's three forms of an HTTP-date (IMF-fixdate, and the obsolete RFC 850 and
# asctime forms), which a recipient must accept; re.ASCII: \d is 0-9 only. `email.utils` reads
# a date that matches one, but on its own it takes far more (zones, lower case, no seconds).
_DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"\d\d:\d\d:\d\d"
_HTTP_DATE = re.compile(
    rf"{_DAY}, \d\d {_MONTH} \d{{4}} {_TIME} GMT"
    rf"|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \d\d-{_MONTH}-\d\d {_TIME} GMT"
    rf"|{_DAY} {_MONTH} [ \d]\d {_TIME} \d{{4}}",
    re.ASCII,
)


def http_date(value: str) -> dt.datetime | None:
    """`value` as an RFC 9110 HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime
    forms), in UTC; None if it is none of them or names no real instant (31 Feb, 25:00)."""
    value = value.strip(_OWS)
    if not _HTTP_DATE.fullmatch(value):
        return None
    try:
        return email.utils.parsedate_to_datetime(value).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def rate_limit_observation(headers: Mapping[str, str], max_reset: float) -> Observation | None:
    """A success's RateLimit-Limit, -Remaining and -Reset as an `Observation`; None unless all
    three read per their grammar, with counts of at most `MAX_BUDGET`.

    The reset is capped at `max_reset` (the client's `max_retry_after`, as a Retry-After is):
    it says how long the server's remaining budget holds, and so how long the limiter may hold
    the account's later calls, in this process and, through Redis, in every other one.
    """
    limit = _quota(headers.get("ratelimit-limit", ""))
    remaining = _count(headers.get("ratelimit-remaining", ""))
    reset = read_digits(headers.get("ratelimit-reset", ""))
    if limit is None or remaining is None or reset is None:
        return None
    return Observation(limit, remaining, min(float(reset), max_reset))


def _count(value: str) -> int | None:
    """A count of requests, if it is digits and at most `MAX_BUDGET`."""
    count = read_digits(value)
    return count if count is not None and count <= MAX_BUDGET else None


def _quota(value: str) -> int | None:
    """RateLimit-Limit: a bare quota (`750`), or the draft's list of the quota the other two
    headers describe followed by each window's (`75, 75;w=1, 750;w=60`). From a list, the
    quota of the longest window: Remaining is never more than that, whichever window it
    counts, so it caps Remaining without ever cutting a real budget short. Any malformed item
    and the whole header is not believed."""
    items = value.split(",", MAX_LIMIT_ITEMS)  # at most MAX_LIMIT_ITEMS + 1 pieces
    if len(items) > MAX_LIMIT_ITEMS:
        return None
    best = (-1, 0)  # (window seconds, quota); a bare quota's window is 0
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
        if window > best[0]:
            best = (window, quota)
    return best[1]
