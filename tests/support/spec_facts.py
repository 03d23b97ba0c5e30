"""Revision facts of the generated package, for tests that must hold at any curated revision.

`make curate SPEC=<any revision> && make gen` changes these (the revision string, the trailing
slash, the media type, the job fieldset, the rate limits); tests read them here, never as
literals, so that `make test` stays green on whichever revision was generated.
"""

from __future__ import annotations

from klaviyo_catalog import Rate
from klaviyo_catalog_api.catalog_spec import MEDIA_TYPE, OPERATIONS, REVISION, OperationSpec

__all__ = ["MEDIA_TYPE", "REVISION", "SLASH", "job_fields", "path_prefix", "rates"]

#: "/" if the generated revision's paths end with a slash (up to 2024-07-15), else "".
SLASH = "/" if OPERATIONS["get_item_update_job"].path.endswith("/") else ""


def spec(name: str) -> OperationSpec:
    return OPERATIONS[name]


def job_fields(name: str) -> tuple[str, ...]:
    """The sparse fields of the operation's job type at the generated revision."""
    op = OPERATIONS[name]
    return op.fields[op.job_type]


def rates(name: str) -> list[Rate]:
    """The operation's published limits at the generated revision, as the client's Rates."""
    return [Rate(count, seconds) for count, seconds in OPERATIONS[name].rate_limits]


def path_prefix(name: str) -> str:
    """The operation's path up to its job id (the collection path for a list)."""
    return OPERATIONS[name].path.partition("{job_id}")[0].rstrip("/") + "/"
