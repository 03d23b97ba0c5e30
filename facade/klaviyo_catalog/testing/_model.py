"""What the fake serves: the job kinds, the five endpoints, and how each revision shapes them.

Everything revision-dependent is a property of `Shape`, so the renderer never compares dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from klaviyo_catalog_api.catalog_spec import REVISION

DEFAULT_REVISION = REVISION  # the generated package's revision (openapi/klaviyo-catalog-jobs.yaml)
FIRST_REVISION = "2022-10-17"  # the catalog bulk-job endpoints first appeared here

_REVISION = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[A-Za-z0-9_-]+)?$")


@dataclass(frozen=True)
class JobKind:
    """One kind of bulk job and the catalog resource its relationship points at."""

    name: str  # short name accepted by FakeKlaviyo.add_job, e.g. "item-update"
    type: str  # JSON:API type of the job
    collection: str  # path segment of the job's endpoints
    relationship: str  # relationship name, also the only `include` value
    related_type: str  # JSON:API type of the related resources
    related_collection: str  # path segment of the related resources (for links)


ITEM_UPDATE = JobKind(
    "item-update",
    "catalog-item-bulk-update-job",
    "catalog-item-bulk-update-jobs",
    "items",
    "catalog-item",
    "catalog-items",
)
VARIANT_UPDATE = JobKind(
    "variant-update",
    "catalog-variant-bulk-update-job",
    "catalog-variant-bulk-update-jobs",
    "variants",
    "catalog-variant",
    "catalog-variants",
)
CATEGORY_UPDATE = JobKind(
    "category-update",
    "catalog-category-bulk-update-job",
    "catalog-category-bulk-update-jobs",
    "categories",
    "catalog-category",
    "catalog-categories",
)
ITEM_CREATE = JobKind(
    "item-create",
    "catalog-item-bulk-create-job",
    "catalog-item-bulk-create-jobs",
    "items",
    "catalog-item",
    "catalog-items",
)
JOB_KINDS: tuple[JobKind, ...] = (ITEM_UPDATE, VARIANT_UPDATE, CATEGORY_UPDATE, ITEM_CREATE)


@dataclass(frozen=True)
class Endpoint:
    """One of the five GET operations: a job kind, served one at a time or as pages."""

    kind: JobKind
    is_list: bool

    @property
    def operation(self) -> str:
        """The operation's name in the generated spec, e.g. get_item_update_job."""
        name = self.kind.name.replace("-", "_")
        return f"list_{name}_jobs" if self.is_list else f"get_{name}_job"


# The whole routing table: everything else about an endpoint follows from its kind.
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(ITEM_UPDATE, is_list=False),
    Endpoint(VARIANT_UPDATE, is_list=False),
    Endpoint(CATEGORY_UPDATE, is_list=False),
    Endpoint(ITEM_CREATE, is_list=True),
    Endpoint(VARIANT_UPDATE, is_list=True),
)

# Job attributes in the order Klaviyo serves them (job_id only up to 2023-10-15).
JOB_FIELDS: tuple[str, ...] = (
    "status",
    "created_at",
    "total_count",
    "completed_count",
    "failed_count",
    "completed_at",
    "expires_at",
    "errors",
)
_ITEM_FIELDS = (
    "external_id",
    "title",
    "description",
    "price",
    "url",
    "image_full_url",
    "image_thumbnail_url",
    "images",
    "custom_metadata",
    "published",
    "created",
    "updated",
)
RELATED_FIELDS: dict[str, tuple[str, ...]] = {
    "catalog-item": _ITEM_FIELDS,
    "catalog-variant": (
        *_ITEM_FIELDS[:3],
        "sku",
        "inventory_policy",
        "inventory_quantity",
        *_ITEM_FIELDS[3:],
    ),
    "catalog-category": ("external_id", "name", "updated"),
}


def find_kind(kind: str | JobKind) -> JobKind:
    """A job kind by short name ("item-update"), job type, or itself."""
    if isinstance(kind, JobKind):
        return kind
    for candidate in JOB_KINDS:
        if kind in (candidate.name, candidate.type):
            return candidate
    names = ", ".join(k.name for k in JOB_KINDS)
    raise ValueError(f"unknown job kind {kind!r}; use a job type or one of {names}")


def valid_revision(revision: str) -> bool:
    match = _REVISION.match(revision)
    return match is not None and match.group(1) >= FIRST_REVISION


@dataclass(frozen=True)
class Shape:
    """How one revision lays out the documents, from the published specs' history."""

    revision: str

    @property
    def date(self) -> str:
        return self.revision[:10]  # "YYYY-MM-DD[.suffix]" compares by its date

    @property
    def trailing_slash(self) -> bool:
        return self.date < "2024-10-15"

    @property
    def job_id_attribute(self) -> bool:
        """Up to 2023-10-15 the id is `attributes.job_id`; later it is `data.id`."""
        return self.date < "2023-12-15"

    @property
    def content_type(self) -> str:
        return "application/json" if self.date < "2024-10-15" else "application/vnd.api+json"

    @property
    def relationship_links(self) -> bool:
        return self.date >= "2023-12-15"

    @property
    def document_self_link(self) -> bool:
        """Single-job documents carry a top-level `links.self` from 2026-01-15."""
        return self.date >= "2026-01-15"

    @property
    def first_last_links(self) -> bool:
        return self.date < "2026-04-15"

    @property
    def id_is_a_field(self) -> bool:
        """From 2026-04-15 `id` is accepted (and ignored) in sparse fieldsets."""
        return self.date >= "2026-04-15"

    def job_fields(self) -> tuple[str, ...]:
        return ("job_id", *JOB_FIELDS) if self.job_id_attribute else JOB_FIELDS

    def allowed_fields(self, json_type: str) -> frozenset[str]:
        fields = RELATED_FIELDS.get(json_type) or self.job_fields()
        return frozenset(fields) | ({"id"} if self.id_is_a_field else set())

    def path(self, *segments: str) -> str:
        return "/api/" + "/".join(segments) + ("/" if self.trailing_slash else "")
