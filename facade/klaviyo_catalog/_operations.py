"""The five operations as data: one `Operation` each, over the generated operation table.

Everything an operation needs (path, query parameters, allowed sparse fields and includes,
the job fields a sparse fieldset always asks for, media type, rate limits) comes from
`klaviyo_catalog_api.catalog_spec`, which `make gen` writes from the curated spec; so the client
has one code path for all five, and a regenerated table is all a new revision needs. The path
style and the media type are those of the generated revision, whatever `revision` header is
sent. Validation happens here, before any request.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from urllib.parse import quote

import attrs
from klaviyo_catalog_api.catalog_spec import (
    JOB_STATUSES,
    MEDIA_TYPE,
    OPERATIONS,
    REVISION,
    OperationSpec,
)

from .errors import InvalidRequestError

__all__ = [
    "OPERATIONS",
    "REVISION",
    "Operation",
    "RequestParts",
    "operation",
    "operation_for_job_type",
]

STATUS_FILTER = 'equals(status,"{}")'
# Limits on what an argument may add to the URL (httpx refuses URLs over 64 KiB). Klaviyo's job
# ids are 26 characters, its cursors a few hundred characters.
MAX_JOB_ID_CHARS = 1_024
MAX_CURSOR_URL_CHARS = 32_768  # once percent-encoded
# How a cursor's bytes that are not UTF-8 are held in its str, both ways (see
# `_jsonapi.next_page`): "%FF" is "\udcff", sent back as "%FF".
CURSOR_ERRORS = "surrogateescape"


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
        tests/test_operations.py checks the result equals the generated `_get_kwargs`' for
        every operation. Returns the request and the relationships it includes.
        """
        query: dict[str, str] = {}
        included = self._include(include)
        if included:
            query["include"] = ",".join(included)
        if fields is not None and not isinstance(fields, Mapping):
            raise InvalidRequestError(f"{self.name}: fields must map a type to field names")
        for json_type, names in (fields or {}).items():
            query[f"fields[{json_type}]"] = self._fields(json_type, names)
        if status is not None:
            query["filter"] = STATUS_FILTER.format(self._status(status))
        if cursor is not None:
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
            query["page[cursor]"] = cursor
        unknown = [wire for wire in query if wire not in self.spec.query]
        if unknown:
            raise InvalidRequestError(f"{self.name} does not take {', '.join(unknown)}")
        path = self.spec.path
        if "{job_id}" in path:
            # One path segment whatever the id holds: "/", "?", "#" and "+" are escaped too.
            path = path.format(job_id=quote(self._job_id(job_id), safe=""))
        parts = RequestParts(
            method="GET",
            path=path,
            params=query,
            headers={"revision": revision},
        )
        return parts, included

    # --- validation: every message names the bad value and what is allowed ---

    @property
    def accept(self) -> str:
        """The media type to ask for: the generated revision's."""
        return MEDIA_TYPE

    def _include(self, include: Iterable[str] | None) -> tuple[str, ...]:
        """The relationships to include, each one the spec allows, without repeats; a lone string
        is taken as a list of one."""
        if include is None:
            return ()
        if isinstance(include, str):
            include = [include]  # a lone "items" is a common, harmless slip
        if not isinstance(include, Iterable):
            raise InvalidRequestError(f"{self.name}: include must be a list of relationships")
        names = list(include)
        for name in names:  # checked before dedup, which would need hashable names
            if name not in self.spec.include:
                allowed = ", ".join(self.spec.include) or "nothing (this endpoint has no include)"
                raise InvalidRequestError(
                    f"{self.name}: cannot include {name!r}; allowed: {allowed}"
                )
        return tuple(dict.fromkeys(names))

    def _fields(self, json_type: str, names: Iterable[str]) -> str:
        """The `fields[json_type]` value: the requested names, each one the spec allows, plus,
        for the job's own type, the fields the facade always reads (status and counts)."""
        allowed = self.spec.fields.get(json_type) if isinstance(json_type, str) else None
        if allowed is None:
            types = ", ".join(self.spec.fields)
            raise InvalidRequestError(
                f"{self.name}: no sparse fieldset for type {json_type!r}; types: {types}"
            )
        if not isinstance(names, str) and isinstance(names, Iterable):
            names = list(names)  # read once: an iterator is consumed by the checks below
        if isinstance(names, str) or not isinstance(names, Iterable) or not names:
            raise InvalidRequestError(
                f"{self.name}: fields[{json_type}] must be a non-empty list of field names"
            )
        for name in names:
            if name not in allowed:
                raise InvalidRequestError(
                    f"{self.name}: {json_type} has no field {name!r}; fields: {', '.join(allowed)}"
                )
        if json_type == self.spec.job_type:
            names = [*names, *self.spec.core_fields]
        return ",".join(dict.fromkeys(names))

    def _status(self, status: str) -> str:
        """The list filter's status, one the spec knows; InvalidRequestError for anything else,
        before any request."""
        if not self.spec.is_list:
            raise InvalidRequestError(f"{self.name} does not filter by status")
        # Only the statuses the spec knows: Klaviyo answers an unknown one with an empty list,
        # which a typo ("processin") would turn into a silent "nothing to do". Checking against
        # the list also keeps quotes and parentheses out of the filter expression.
        if not isinstance(status, str):  # str(True) would go out as "True"
            raise InvalidRequestError(
                f"{self.name}: status must be a str such as 'processing', "
                f"got {type(status).__name__}"
            )
        if status not in JOB_STATUSES:
            raise InvalidRequestError(
                f"{self.name}: {status!r:.60} is not a job status; "
                f"known statuses: {', '.join(JOB_STATUSES)}"
            )
        return str(status)

    def _job_id(self, job_id: str | None) -> str:
        """A job id that can be sent as one path segment: a non-empty, encodable string of
        bounded length that is no path step."""
        if not isinstance(job_id, str) or not job_id.strip():
            raise InvalidRequestError(f"{self.name}: job_id must be a non-empty string")
        if len(job_id) > MAX_JOB_ID_CHARS:
            raise InvalidRequestError(
                f"{self.name}: job_id is {len(job_id)} characters long; "
                f"at most {MAX_JOB_ID_CHARS} are accepted"
            )
        if job_id in (".", ".."):  # would be read as a path step, not as an id
            raise InvalidRequestError(f"{self.name}: {job_id!r} is not a job id")
        if not _utf8(job_id):
            raise InvalidRequestError(f"{self.name}: job_id is not valid Unicode: {job_id!r:.60}")
        return job_id


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


@functools.cache
def operation(name: str) -> Operation:
    """The Operation of a name in the spec, built once."""
    return Operation(OPERATIONS[name])


@functools.cache
def operation_for_job_type(job_type: str) -> Operation:
    """The single-job GET for a job type, for polling it."""
    for spec in OPERATIONS.values():
        if spec.job_type == job_type and not spec.is_list:
            return operation(spec.name)
    raise InvalidRequestError(
        f"there is no single-job endpoint for {job_type!r} jobs, so they cannot be polled"
    )
