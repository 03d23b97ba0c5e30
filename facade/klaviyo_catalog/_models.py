"""What the facade returns: `BulkJob`, `JobError`, `JobStatus`, `Page` and `ResourceRef`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any, Generic, TypeVar

import attrs
from klaviyo_catalog_api.models import (
    CatalogCategory,
    CatalogItem,
    CatalogVariant,
    CategoryUpdateJob,
    ItemCreateJob,
    ItemUpdateJob,
    VariantUpdateJob,
)

__all__ = ["BulkJob", "JobError", "JobStatus", "Page", "RawJob", "ResourceRef"]

RawJob = ItemUpdateJob | VariantUpdateJob | CategoryUpdateJob | ItemCreateJob


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
class ResourceRef:
    """A related resource the server named but did not include (e.g. a deleted item)."""

    type: str
    id: str


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
class BulkJob:
    """A catalog bulk job, whichever of the four kinds.

    `items`, `variants` and `categories` are None unless that relationship was requested with
    `include=`; then they list the related resources in the server's order, with a
    `ResourceRef` where a resource was not included.
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
    raw: RawJob = attrs.field(repr=False, eq=False)
    items: Sequence[CatalogItem | ResourceRef] | None = attrs.field(default=None, repr=False)
    variants: Sequence[CatalogVariant | ResourceRef] | None = attrs.field(default=None, repr=False)
    categories: Sequence[CatalogCategory | ResourceRef] | None = attrs.field(
        default=None, repr=False
    )

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
        return min(1.0, max(0.0, processed / self.total_count))


T = TypeVar("T")


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing. Iterating it yields its jobs."""

    data: Sequence[T]
    next_cursor: str | None  # the `page[cursor]` of the next page, or None on the last page
    raw: Any = attrs.field(repr=False, eq=False, default=None)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
