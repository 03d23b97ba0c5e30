"""The operations as data: one `Operation` each, over the generated operation table.

Everything an operation needs (path, query parameters, allowed sparse fields and includes,
the job fields a sparse fieldset always asks for, media type, rate limits) comes from
`klaviyo_catalog_api.catalog_spec`, which `make gen` writes from the curated spec; so the client
has one code path for all of them, and a regenerated table is all a new revision needs. The path
style and the media type are those of the generated revision, whatever `revision` header is
sent. Every argument is checked (by `_checks`) as the request is built, before any request.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from urllib.parse import quote

import attrs
from klaviyo_catalog_api.catalog_spec import OPERATIONS, REVISION, OperationSpec

from . import _checks as checks
from ._checks import CURSOR_ERRORS

__all__ = [
    "OPERATIONS",
    "REVISION",
    "Operation",
    "RequestParts",
    "operation",
]

STATUS_FILTER = 'equals(status,"{}")'


@attrs.frozen
class RequestParts:
    """A request ready for httpx, minus the client-wide headers."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]

    @property
    def target(self) -> str:
        """Path and query string, percent-encoded once, so httpx need not merge params. A
        value's surrogate escapes (a cursor's bytes that are not UTF-8) go out as those bytes."""
        if not self.params:
            return self.path
        query = "&".join(
            f"{quote(name, safe='[]')}={quote(value, safe=',', errors=CURSOR_ERRORS)}"
            for name, value in self.params.items()
        )
        return f"{self.path}?{query}"


@attrs.frozen
class Operation:
    """One endpoint of the curated spec, as the core uses it: `build` checks a call's arguments
    against the spec and makes the request's parts."""

    spec: OperationSpec

    @property
    def name(self) -> str:
        """The operation's id in the spec (get_item_update_job, ...), which names it in messages
        and rate limits."""
        return self.spec.name

    def build(
        self,
        *,
        revision: str,
        job_id: str | None = None,
        include: Iterable[str] | None = None,
        fields: Mapping[str, Iterable[str]] | None = None,
        status: str | None = None,
        cursor: str | None = None,
    ) -> tuple[RequestParts, tuple[str, ...]]:
        """Validate the arguments and build the request; raises InvalidRequestError.

        Built from the operation table that `make gen` writes beside the generated functions,
        so a call never imports the generated endpoint modules and their models (they were a
        third of start-up).
        tests/calls/test_operations.py checks the result equals the generated `_get_kwargs`' for
        every operation. Returns the request and the relationships it includes.
        """
        spec = self.spec
        query: dict[str, str] = {}
        included = checks.include(spec, include)
        if included:
            query["include"] = ",".join(included)
        checks.fields_mapping(self.name, fields)
        for json_type, names in (fields or {}).items():
            checked = checks.field_names(spec, json_type, names)
            if json_type == spec.job_type:
                # The fields the facade always reads (status and counts) are always asked for.
                checked = [*checked, *spec.core_fields]
            query[f"fields[{json_type}]"] = ",".join(dict.fromkeys(checked))
        if status is not None:
            query["filter"] = STATUS_FILTER.format(checks.status(spec, status))
        if cursor is not None:
            query["page[cursor]"] = checks.cursor(cursor)
        checks.parameters(spec, query)
        path = spec.path
        if "{job_id}" in path:
            # One path segment whatever the id holds: "/", "?", "#" and "+" are escaped too.
            path = path.format(job_id=quote(checks.job_id(spec, job_id), safe=""))
        parts = RequestParts(
            method="GET",
            path=path,
            params=query,
            headers={"revision": revision},
        )
        return parts, included


@functools.cache
def operation(name: str) -> Operation:
    """The Operation of a name in the spec, built once."""
    return Operation(OPERATIONS[name])
