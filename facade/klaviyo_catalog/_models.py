"""What the facade returns: `BulkJob`, `JobError`, `JobStatus`, `Page` and `ResourceRef`."""

from __future__ import annotations

import datetime as dt
import functools
import importlib
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
from klaviyo_catalog_api.views import JOB_MODELS, JobRelationships

from ._resources import ResourceRef
from .errors import InvalidResponseError

if TYPE_CHECKING:
    from klaviyo_catalog_api.views import JobModel as RawJob

__all__ = ["BulkJob", "JobError", "JobStatus", "Page", "ResourceRef", "ResponseInfo"]


class JobStatus(StrEnum):
    """The statuses Klaviyo documents. A job may carry another one, kept as a plain `str`."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETE = "complete"
    CANCELLED = "cancelled"

    @classmethod
    def parse(cls, value: str) -> JobStatus | str:
        try:
            return cls(value)
        except ValueError:
            return value  # a status newer than this client: keep it, never fail on it


DONE_STATUSES = frozenset({JobStatus.COMPLETE, JobStatus.CANCELLED})


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
    headers: Mapping[str, str] = attrs.field(repr=False)
    elapsed: float
    attempts: int = 1


@attrs.frozen
class JobError:
    """One failure inside a bulk job. Only `detail` is always present."""

    detail: str
    id: str | None = None
    code: str | None = None
    title: str | None = None
    source_pointer: str | None = None
    meta: Mapping[str, Any] | None = None


@attrs.frozen
class BulkJob(JobRelationships):
    """A catalog bulk job, whichever of the kinds the spec has.

    Its relationships (`items`, `variants`, `categories`: generated from the spec, in
    `JobRelationships`) are None unless requested with `include=`; then they list the related
    resources in the server's order, with a `ResourceRef` where a resource was not included.
    """

    id: str
    kind: str  # the JSON:API type, e.g. "catalog-item-bulk-update-job"
    status: JobStatus | str
    created_at: dt.datetime
    completed_at: dt.datetime | None
    expires_at: dt.datetime | None
    total_count: int
    completed_count: int
    failed_count: int
    errors: Sequence[JobError]
    # The job resource as received; `raw` parses it into the generated model on first use.
    resource: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
    #: The response this job was read from (shared by the jobs of one page); None when the
    #: job was built by hand.
    response_info: ResponseInfo | None = attrs.field(default=None, repr=False, eq=False)

    @functools.cached_property
    def raw(self) -> RawJob:
        """The generated model of this job, for anything the facade does not surface."""
        models = importlib.import_module("klaviyo_catalog_api.models")
        try:
            model: RawJob = getattr(models, JOB_MODELS[self.kind]).from_dict(self.resource)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise InvalidResponseError(
                f"job {self.id!r} does not match the generated model: {exc!s:.120}"
            ) from exc
        return model

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
class Page(Generic[T]):
    """One page of a listing. Iterating it yields its jobs."""

    data: Sequence[T]
    next_cursor: str | None  # the `page[cursor]` of the next page, or None on the last page
    #: The response this page was read from.
    response_info: ResponseInfo | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
