"""What the facade returns: `BulkJob`, `JobFailure`, `JobStatus`, `Page` and `ResourceRef`."""

from __future__ import annotations

import functools
import importlib
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
from klaviyo_catalog_api.catalog_spec import RELATIONSHIPS
from klaviyo_catalog_api.views import JOB_ATTRIBUTES, JOB_MODELS, JobFields, JobStatus, JSONable

from . import _serialize
from ._docs import document_attributes
from ._resources import Resource, ResourceRef
from .errors import APIErrorDetail, InvalidResponseError, PaginationError

if TYPE_CHECKING:
    from klaviyo_catalog_api.views import JobModel

__all__ = ["BulkJob", "JobFailure", "JobStatus", "Page", "ResourceRef", "ResponseInfo"]


DONE_STATUSES = frozenset({JobStatus.COMPLETE, JobStatus.CANCELLED})


def _read_only(headers: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(headers))


@attrs.frozen
class ResponseInfo:
    """The HTTP response a result was read from: `job.response_info`, `page.response_info`.

    - `request_id`: Klaviyo's `X-Klaviyo-Req-Id` (quote it to Klaviyo's support), or None.
    - `status_code`: the HTTP status, e.g. 200.
    - `headers`: the response headers, names lower-cased, read-only; cookies and anything
      carrying a credential are left out.
    - `elapsed`: seconds from sending the final attempt until its response was read.
    - `attempts`: how many requests the call made, retries included (1 without retries).
    """

    request_id: str | None
    status_code: int
    # Read-only; not hashed (a mappingproxy is not hashable), but compared.
    headers: Mapping[str, str] = attrs.field(repr=False, hash=False, converter=_read_only)
    elapsed: float
    attempts: int = 1

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors carrying a job must pickle, and a mappingproxy does not: the headers go as a
        # dict, read-only again once loaded.
        fields = (self.request_id, self.status_code, dict(self.headers), self.elapsed)
        return ResponseInfo, (*fields, self.attempts)


def _job_model(raw: Mapping[str, Any]) -> JobModel:
    """The generated model of a job resource, or InvalidResponseError saying why not."""
    models = importlib.import_module("klaviyo_catalog_api.models")
    try:
        model: JobModel = getattr(models, JOB_MODELS[raw["type"]]).from_dict(raw)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidResponseError(
            f"job {raw.get('id')!r} does not match the generated model: {exc!s:.120}"
        ) from exc
    return model


class RawJSON(dict[str, Any]):
    """A job's JSON as received: `BulkJob.raw`, a plain dict.

    `raw` was the generated model until 0.1; reading one of the model's attributes here
    (`job.raw.attributes`) still works, with a DeprecationWarning: use `job.model`.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        model_class = getattr(
            importlib.import_module("klaviyo_catalog_api.models"),
            JOB_MODELS.get(str(self.get("type")), ""),
            None,
        )
        if name.startswith("__") or model_class is None or not hasattr(model_class, name):
            raise AttributeError(name)
        warnings.warn(
            "BulkJob.raw is the job's JSON (a dict) now; use BulkJob.model for the generated model",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_job_model(self), name)


Related = Resource[Any] | ResourceRef
# Where a job error points into the job's request: /data/attributes/<relationship>/data/<index>.
_POINTER = re.compile(r"/data/attributes/([^/]+)/data/(\d+)(?:/.*)?")
_MAX_INDEX_DIGITS = 9


@attrs.frozen
class JobFailure(JSONable):
    """One of a job's errors, with the resource it concerns when that can be told.

    `resource` is the included `Item`/`Variant`/`Category` (or the `ResourceRef` of one the
    server named but did not include), or None when the error names no resource, or the job
    was fetched without `include=`.
    """

    error: APIErrorDetail
    resource: Related | None = None

    def to_dict(self) -> dict[str, Any]:
        """`{"error": error.to_dict(), "resource": resource.to_dict() or None}`."""
        return {
            "error": self.error.to_dict(),
            "resource": None if self.resource is None else self.resource.to_dict(),
        }


@attrs.frozen
class BulkJob(JobFields[JobStatus | str, APIErrorDetail], JSONable):
    """A catalog bulk job, whichever of the kinds the spec has.

    `id`, `kind` (one of the spec's nine, e.g. "item-update"; `type` is the JSON:API type, e.g.
    "catalog-item-bulk-update-job") and one typed attribute per attribute the spec gives job
    resources (generated from the spec, in `JobFields`; keyword-only): `status` (a
    `JobStatus`, or the string of a status newer than this client), `created_at`,
    `completed_at`, `expires_at` (timezone-aware), `total_count`, `completed_count`,
    `failed_count` (0 when the server sends none), `errors` (`APIErrorDetail`s), and any
    attribute a newer spec adds, once regenerated with `make gen`.

    Its relationships (`items`, `variants`, `categories`: generated from the spec, in
    `JobRelationships`) list the resources the job concerns, in the server's order: the
    resource itself where the job was fetched with `include=` for it, else a `ResourceRef`
    (list pages name each job's resources by type and id). None when the response named none.
    `include` holds the relationships the job was fetched with `include=` for.
    """

    #: The relationships this job was fetched with `include=` for (polling keeps them).
    include: tuple[str, ...] = attrs.field(default=(), converter=tuple, repr=False, eq=False)

    #: The job resource as received (a dict); `model` is the generated model of it.
    raw: RawJSON = attrs.field(factory=RawJSON, converter=RawJSON, repr=False, eq=False)
    #: The response this job was read from (shared by the jobs of one page); None when the
    #: job was built by hand.
    response_info: ResponseInfo | None = attrs.field(default=None, repr=False, eq=False)

    @functools.cached_property
    def model(self) -> JobModel:
        """The generated model of this job, for anything the facade does not surface; built
        on first use."""
        return _job_model(self.raw)

    def to_dict(self) -> dict[str, Any]:
        """The job as plain JSON, e.g. for `json.dumps` or an API of the app's own.

        Keys: `id`, `kind`, `type`, then every job attribute of the spec in its order (`status` as a
        string; `created_at`, `completed_at`, `expires_at` in ISO 8601 with the UTC offset, or
        None; the three counts; `errors`, each `APIErrorDetail.to_dict()`), `progress` (0..1),
        and `items`/`variants`/`categories` when the response named them (each resource's
        `to_dict()`: flat, like the job; `{"type", "id"}` for a `ResourceRef`).
        """
        document: dict[str, Any] = {"id": self.id, "kind": self.kind, "type": self.type}
        for name in JOB_ATTRIBUTES:
            document[name] = _serialize.json_ready(getattr(self, name))
        document["progress"] = round(self.progress, 4)
        for name in RELATIONSHIPS:
            related: Sequence[Any] | None = getattr(self, name, None)
            if related is not None:
                document[name] = [resource.to_dict() for resource in related]
        return document

    @functools.cached_property
    def failures(self) -> Sequence[JobFailure]:
        """Each of `errors`, in order, paired with the resource it concerns.

        An error is paired the ways Klaviyo names a resource: by `meta.id` (the resource's full
        id, as update and delete jobs report it), by `meta.external_id` (the resource with that
        `external_id`, or whose id ends in `:::<external_id>`, as create jobs report it), else
        by an indexed source pointer `/data/attributes/<relationship>/data/<n>` (the n-th
        related resource). The resource is the included `Item`/`Variant`/`Category` where the
        job was fetched with `include=`, else the `ResourceRef` the response named (list pages
        name them). Unpaired errors are kept, with `resource=None`.

            job = kc.get_item_update_job(job_id, include=["items"])
            for failure in job.failures:
                print(failure.error.detail, failure.resource and failure.resource.id)
        """
        related: dict[str, Sequence[Related]] = {
            name: value
            for name in RELATIONSHIPS
            if (value := getattr(self, name, None)) is not None
        }
        by_id: dict[str, Related] = {}
        by_external_id: dict[str, Related] = {}
        for resources in related.values():
            for resource in resources:
                by_id.setdefault(resource.id, resource)
                key = _external_id(resource)
                if key is not None:
                    by_external_id.setdefault(key, resource)
        return [
            JobFailure(error, _pair(error, by_id, by_external_id, related)) for error in self.errors
        ]

    @property
    def is_done(self) -> bool:
        """True once the job is complete or cancelled."""
        return self.status in DONE_STATUSES

    @property
    def progress(self) -> float:
        """Processed (completed + failed) over total, in 0..1."""
        if self.total_count <= 0:
            return 1.0 if self.is_done else 0.0
        processed = self.completed_count + self.failed_count
        # Clamped before dividing: counts past the float range would raise OverflowError.
        if processed <= 0:
            return 0.0
        if processed >= self.total_count:
            return 1.0
        return processed / self.total_count


T = TypeVar("T")


@attrs.frozen
class Page(JSONable, Generic[T]):
    """One page of a listing. Iterating it yields its jobs.

    `cursor` is the cursor this page was requested with (None for the first page). When the
    server's `links.next` names no usable cursor, the page keeps its data, `has_next` is True
    (the server did point onward) and `next_cursor` raises `PaginationError`.
    """

    data: Sequence[T]
    # The `page[cursor]` of the next page, or None on the last page.
    _next_cursor: str | None = attrs.field(alias="next_cursor")
    cursor: str | None = None
    #: The response this page was read from.
    response_info: ResponseInfo | None = attrs.field(default=None, repr=False, eq=False)
    # Why `links.next` is unusable, and what it was: set only when it is.
    _unusable_next: tuple[str, str] | None = attrs.field(
        default=None, alias="unusable_next", repr=False
    )

    @property
    def next_cursor(self) -> str | None:
        """The cursor of the next page; None on the last page.

        The percent-decoded `page[cursor]` of the server's `links.next`, as text; a byte that
        is not UTF-8 is held as a surrogate escape (`%FF` as `"\\udcff"`), so that the cursor
        goes back, as `cursor=`, as exactly the bytes the server sent.

        Raises `PaginationError` (with `.cursor`, this page's own cursor) when the server
        pointed to a next page this client cannot ask for: never a silent end of the listing.
        """
        if self._unusable_next is not None:
            problem, link = self._unusable_next
            raise PaginationError(
                f"cannot ask for the page after this one: {problem}; "
                f"resume from this page's cursor ({self.cursor!r:.60}) later",
                cursor=self.cursor,
                next_link=link,
            )
        return self._next_cursor

    @property
    def has_next(self) -> bool:
        """True when the server says another page follows (even one it gave no cursor for)."""
        return self._next_cursor is not None or self._unusable_next is not None

    def to_dict(self) -> dict[str, Any]:
        """`{"data": [each job's to_dict()], "next_cursor": ..., "has_next": ...}`.

        A page whose next link was unusable gives `next_cursor` None and `has_next` true.
        """
        return {
            "data": [_serialize.json_ready(entry) for entry in self.data],
            "next_cursor": self._next_cursor,
            "has_next": self.has_next,
        }

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


# help() and pydoc: each public attribute with its type (see _docs).
for _documented in (ResponseInfo, JobFailure, BulkJob, Page):
    document_attributes(_documented)


def _external_id(resource: Related) -> str | None:
    """The resource's `external_id` attribute, else what follows the last `:::` of its id (a
    `$custom:::$default:::SKU` id), else None."""
    # Read raw: a mistyped attribute must not make `failures` raise.
    value = resource.attributes.get("external_id") if isinstance(resource, Resource) else None
    if isinstance(value, str) and value:
        return value
    _, sep, tail = resource.id.rpartition(":::")
    return tail if sep and tail else None


def _pair(
    error: APIErrorDetail,
    by_id: Mapping[str, Related],
    by_external_id: Mapping[str, Related],
    related: Mapping[str, Sequence[Related]],
) -> Related | None:
    meta = error.meta or {}
    for key, table in (("id", by_id), ("external_id", by_external_id)):
        value = meta.get(key)
        if isinstance(value, str) and value in table:
            return table[value]
    match = _POINTER.fullmatch(error.source_pointer or "")
    # An index longer than any list of related resources cannot point into one (and int() of
    # thousands of digits is refused, or slow).
    if match is not None and len(match.group(2)) <= _MAX_INDEX_DIGITS:
        resources = related.get(match.group(1))
        index = int(match.group(2))
        if resources is not None and index < len(resources):
            return resources[index]
    return None
