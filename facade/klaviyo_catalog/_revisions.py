"""API revisions: checking a revision string, and where a revision stands in Klaviyo's lifecycle.

Klaviyo names each API revision after the day it shipped (`2026-07-15`, or `2026-07-15.pre`
for a preview). By its versioning policy a revision is stable for one year, deprecated for the
second, and retired after two: requests that name a retired revision get `410 Gone`, or are
silently served a newer revision. Everything here is computed from the revision's date alone,
so it needs no table that could go stale.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import re
import warnings

import attrs

from .errors import ConfigurationError

__all__ = [
    "KlaviyoDeprecationWarning",
    "Revision",
    "RevisionLifecycle",
    "RevisionStatus",
    "revision_lifecycle",
]

logger = logging.getLogger("klaviyo_catalog")

_REVISION = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:\.([A-Za-z0-9_-]{1,32}))?")
MOVE_ON = (
    "move to a newer revision: `make curate SPEC=<Klaviyo's spec for it> && make gen`, "
    "or upgrade klaviyo-catalog-jobs"
)


class KlaviyoDeprecationWarning(DeprecationWarning):
    """The client was configured with an API revision Klaviyo has deprecated or retired."""


class RevisionStatus(enum.Enum):
    """Where a revision stands in Klaviyo's lifecycle on a given day."""

    STABLE = "stable"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


@attrs.frozen(order=True)
class Revision:
    """A parsed revision string. Revisions compare by date; a `.suffix` preview of a date
    sorts before the release of that date.

    >>> Revision.parse("2026-07-15") > Revision.parse("2026-07-15.pre")
    True
    """

    date: dt.date
    # Orders a preview (False) before the release (True) of the same date.
    is_release: bool = attrs.field(repr=False)
    suffix: str | None = attrs.field(order=False, default=None)

    @classmethod
    def parse(cls, text: object) -> Revision:
        """Parse `YYYY-MM-DD` with an optional `.suffix`; anything else is a ConfigurationError
        (the message never echoes more than a short prefix of the bad value)."""
        match = _REVISION.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ConfigurationError(
                f"revision {text!r:.40} is not a revision: expected YYYY-MM-DD or "
                "YYYY-MM-DD.suffix, e.g. 2026-07-15"
            )
        year, month, day, suffix = match.groups()
        try:
            date = dt.date(int(year), int(month), int(day))
        except ValueError as exc:
            raise ConfigurationError(f"revision {text!r} is not a real date") from exc
        return cls(date=date, is_release=suffix is None, suffix=suffix)

    def __str__(self) -> str:
        return self.date.isoformat() + (f".{self.suffix}" if self.suffix else "")


@attrs.frozen
class RevisionLifecycle:
    """A revision's status on `today`, and the dates that bound its stages."""

    revision: str
    status: RevisionStatus
    released_on: dt.date
    deprecated_on: dt.date  # one year after release
    retired_on: dt.date  # two years after release

    def advice(self) -> str:
        """One sentence for a warning or an error: what is happening, and how to move on."""
        if self.status is RevisionStatus.RETIRED:
            when = f"was retired on {self.retired_on}"
            what = "Klaviyo answers 410 Gone or silently serves a newer revision"
        elif self.status is RevisionStatus.DEPRECATED:
            when = f"is deprecated and retires on {self.retired_on}"
            what = "after that Klaviyo answers 410 Gone or silently serves a newer revision"
        else:
            return f"revision {self.revision} is stable until {self.deprecated_on}"
        return f"Klaviyo API revision {self.revision} {when}; {what}. To {MOVE_ON}."


def _years_later(date: dt.date, years: int) -> dt.date:
    """The same day `years` later; 29 February becomes 28 February in a year without it."""
    try:
        return date.replace(year=date.year + years)
    except ValueError:  # 29 February in a year that has none
        return date.replace(year=date.year + years, day=28)


def revision_lifecycle(revision: str, today: dt.date | None = None) -> RevisionLifecycle:
    """The lifecycle of `revision` on `today` (default: today in UTC), by Klaviyo's rule:
    stable for a year from its date, deprecated for the second year, retired after.

    >>> import datetime
    >>> revision_lifecycle("2025-04-15", today=datetime.date(2026, 11, 30)).status.value
    'deprecated'

    Raises ConfigurationError for a string that is not a revision.
    """
    parsed = Revision.parse(revision)
    if today is None:
        today = dt.datetime.now(dt.UTC).date()
    deprecated_on = _years_later(parsed.date, 1)
    retired_on = _years_later(parsed.date, 2)
    if today >= retired_on:
        status = RevisionStatus.RETIRED
    elif today >= deprecated_on:
        status = RevisionStatus.DEPRECATED
    else:
        status = RevisionStatus.STABLE
    return RevisionLifecycle(str(parsed), status, parsed.date, deprecated_on, retired_on)


_logged: set[str] = set()


def warn_if_not_stable(revision: str, *, stacklevel: int) -> None:
    """Warn (KlaviyoDeprecationWarning) when a client is built for a deprecated or retired
    revision, and log it at WARNING once per process and revision."""
    lifecycle = revision_lifecycle(revision)
    if lifecycle.status is RevisionStatus.STABLE:
        return
    message = lifecycle.advice()
    warnings.warn(message, KlaviyoDeprecationWarning, stacklevel=stacklevel + 1)
    if revision not in _logged:
        _logged.add(revision)
        logger.warning("%s", message)
