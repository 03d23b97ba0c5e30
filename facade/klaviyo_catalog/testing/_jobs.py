"""Stateful jobs: their attributes, their related catalog resources, and how they progress."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ._model import JobKind

Schemas = Mapping[str, Mapping[str, Any]]  # attribute name -> its schema in the spec

EXPIRY = timedelta(days=7)  # jobs stay readable this long after creation (the fake's choice)
# How far a job without scripted progression has got, by status; other statuses count as 0.
PROGRESS_BY_STATUS = {"queued": 0.0, "processing": 0.5, "cancelled": 0.5, "complete": 1.0}
_CUSTOM_ID = "$custom:::$default:::"
SAMPLE_TIME = "2024-01-01T00:00:00+00:00"


@dataclass(frozen=True)
class Related:
    """A catalog item, variant or category linked from a job."""

    id: str
    attributes: dict[str, Any]


def timestamp(value: str | datetime | None) -> str:
    """ISO 8601; a datetime is formatted as given (a naive one stays naive), a string is kept."""
    if value is None:
        return datetime.now(UTC).isoformat()
    return value if isinstance(value, str) else value.isoformat()


def _later(created_at: str, delta: timedelta) -> str | None:
    """created_at + delta in the same style (offset or naive), or None if unparseable."""
    try:
        return (datetime.fromisoformat(created_at) + delta).isoformat()
    except ValueError:
        return None


def _now_like(created_at: str) -> str:
    """Now, naive if the job's created_at is naive, so one job never mixes the two styles."""
    try:
        naive = datetime.fromisoformat(created_at).tzinfo is None
    except ValueError:
        naive = False
    now = datetime.now(UTC)
    return (now.replace(tzinfo=None) if naive else now).isoformat()


def sample_value(name: str, schema: Mapping[str, Any], index: int) -> Any:
    """A plausible value of an attribute, from its type in the spec."""
    kind = schema.get("type")
    if kind == "string":
        if "date-time" in (schema.get("x-format"), schema.get("format")):
            return SAMPLE_TIME
        return f"{name.replace('_', ' ').capitalize()} {index}"
    if kind == "number":
        return round(9.99 + index, 2)
    if kind == "integer":
        known = schema.get("x-known-values") or schema.get("enum")
        return known[0] if known else index
    if kind == "boolean":
        return True
    if kind == "array":
        items = schema.get("items", {})
        return [sample_value(name, items, index)] if items.get("type") == "string" else []
    return {} if kind == "object" else None


def generated_resource(related_type: str, index: int, schemas: Schemas) -> Related:
    """A plausible resource with every attribute the spec gives its type, the same for the
    same (type, index) in every job."""
    external_id = f"{related_type.removeprefix('catalog-').upper()}-{index}"
    attrs = {name: sample_value(name, schema, index) for name, schema in schemas.items()}
    if "external_id" in attrs:
        attrs["external_id"] = external_id  # Klaviyo's resource ids are made from it
    return Related(_CUSTOM_ID + external_id, attrs)


def custom_resource(
    related_type: str, index: int, given: Mapping[str, Any], schemas: Schemas
) -> Related:
    """A resource from a test's dict: "id" and any attributes, the rest generated."""
    unknown = set(given) - set(schemas) - {"id"}
    if unknown:
        raise ValueError(f"{related_type} has no attribute(s) {sorted(unknown)}")
    base = generated_resource(related_type, index, schemas)
    attrs = {**base.attributes, **{k: v for k, v in given.items() if k != "id"}}
    default_id = _CUSTOM_ID + str(given["external_id"]) if "external_id" in given else base.id
    return Related(str(given.get("id", default_id)), attrs)


@dataclass
class Job:
    """One job. `attributes` holds exactly what is served, in Klaviyo's order."""

    kind: JobKind
    id: str
    seq: int  # insertion order; lists are served in it and cursors point into it
    attributes: dict[str, Any]
    related: Sequence[Related] | int  # an int is a count, generated on demand (cheap seeding)
    failed: int = 0  # how many operations fail by completion
    polls_to_complete: int | None = None
    auto_errors: bool = True  # derive `errors` from the failures so far
    polls: int = field(default=0)
    schemas: Schemas = field(default_factory=dict, repr=False)  # of the related resources
    # Progress over time (time.monotonic()): from `scheduled_at` to completion at `finishes_at`.
    scheduled_at: float | None = None
    finishes_at: float | None = None
    # Progress over time once served: the first poll schedules completion this many seconds on.
    finish_when_seen: float | None = None

    def related_resources(self) -> list[Related]:
        """The job's catalog resources, generated on demand when only their count was given."""
        if isinstance(self.related, int):
            return [
                generated_resource(self.kind.related_type, i + 1, self.schemas)
                for i in range(self.related)
            ]
        return list(self.related)

    def settle(self, status: str, fraction: float) -> None:
        """Set status and counts as `fraction` of the way to completion."""
        total = int(self.attributes["total_count"] or 0)
        failed = math.floor(self.failed * fraction)
        self.attributes["status"] = status
        self.attributes["completed_count"] = math.floor((total - self.failed) * fraction)
        self.attributes["failed_count"] = failed
        if status in ("complete", "cancelled"):
            self.attributes["completed_at"] = _now_like(self.attributes["created_at"])
        if self.auto_errors:
            self.attributes["errors"] = self._failure_errors(failed)

    def advance(self, now: float) -> None:
        """Progress on its own: processing, proportionally, until `finishes_at`, then complete."""
        if self.finishes_at is None or self.scheduled_at is None:
            return
        if now >= self.finishes_at:
            self.settle("complete", 1.0)
            self.finishes_at = self.scheduled_at = None
            return
        span = self.finishes_at - self.scheduled_at
        self.settle("processing", (now - self.scheduled_at) / span if span > 0 else 0.0)

    def poll(self) -> None:
        """Advance one step: the first poll shows the job as created, the Nth shows it complete.
        A job with `finish_when_seen` instead starts its clock (see `advance`)."""
        if self.finish_when_seen is not None:
            self._start_clock(time.monotonic(), self.finish_when_seen)
            self.finish_when_seen = None
            return
        if self.polls_to_complete is None:
            return
        self.polls += 1
        if self.polls >= self.polls_to_complete:
            self.settle("complete", 1.0)
        elif self.polls > 1:
            self.settle("processing", (self.polls - 1) / (self.polls_to_complete - 1))

    def _start_clock(self, now: float, seconds: float) -> None:
        """Complete `seconds` from now, from the progress shown so far (a seeded job half done
        goes on from half, rather than back to 0)."""
        total = int(self.attributes["total_count"] or 0) - self.failed
        done = int(self.attributes["completed_count"] or 0) / total if total > 0 else 0.0
        done = min(max(done, 0.0), 0.99)  # 0.99: a job shown complete but running still moves
        self.scheduled_at = now - seconds * done / (1 - done)
        self.finishes_at = now + seconds
        self.advance(now)

    def _failure_errors(self, count: int) -> list[dict[str, Any]]:
        """Errors in the minimal shapes live jobs use (no id, code or title): a create job names
        the failed resource by `meta.external_id` and an indexed pointer; an update or delete
        job by `meta.id` (the resource's full id) and a pointer without an index."""
        if count <= 0:
            return []  # without generating the resources: time-driven jobs settle often
        resources = self.related_resources()
        verb = self.kind.name.rpartition("-")[2]
        why = {"delete": "it does not exist"}.get(verb, "invalid value")
        detail = f"The {self.kind.related_type} could not be {verb}d: {why}."
        errors = []
        for i in range(count):
            resource = resources[i] if i < len(resources) else None
            pointer = f"/data/attributes/{self.kind.relationship}/data"
            if verb == "create":
                external_id = resource.attributes.get("external_id") if resource else None
                meta = {"external_id": external_id or f"unknown-{i}"}
                pointer += f"/{i}"
            else:
                meta = {"id": resource.id if resource else f"unknown-{i}"}
                pointer += "/id"
            errors.append({"detail": detail, "meta": meta, "source": {"pointer": pointer}})
        return errors


def new_job(
    kind: JobKind,
    job_id: str,
    seq: int,
    *,
    schemas: Schemas,
    job_schemas: Schemas,
    status: str,
    total: int | None,
    items: Sequence[Mapping[str, Any]] | int | None,
    failed: int,
    polls_to_complete: int | None,
    errors: Sequence[Mapping[str, Any]] | None,
    created_at: str | datetime | None,
    completed_at: str | datetime | None,
    expires_at: str | datetime | None,
) -> Job:
    """A job as `FakeKlaviyo.add_job` describes it: related resources given or generated, counts
    settled for its status, timestamps in the style given."""
    if polls_to_complete is not None and polls_to_complete < 1:
        raise ValueError("polls_to_complete must be at least 1")
    related: Sequence[Related] | int
    if isinstance(items, int):
        related = items
    elif items is None:
        related = 10 if total is None else total
    else:
        related = [
            custom_resource(kind.related_type, i + 1, d, schemas) for i, d in enumerate(items)
        ]
    count = related if isinstance(related, int) else len(related)
    created = timestamp(created_at)
    job = Job(
        kind,
        job_id,
        seq,
        attributes={
            "status": status,
            "created_at": created,
            "total_count": count if total is None else total,
            "completed_count": 0,
            "failed_count": 0,
            "completed_at": None,
            "expires_at": timestamp(expires_at) if expires_at else _later(created, EXPIRY),
            "errors": [],
        },
        related=related,
        failed=failed,
        polls_to_complete=polls_to_complete,
        auto_errors=errors is None,
        schemas=schemas,
    )
    # Any other attribute the spec gives jobs (one newer than this fake's progress logic)
    # gets a plausible value of its type, as the related resources' attributes do.
    for name, schema in job_schemas.items():
        job.attributes.setdefault(name, sample_value(name, schema, 1))
    job.settle(status, PROGRESS_BY_STATUS.get(status, 0.0))
    if errors is not None:
        job.attributes["errors"] = [dict(e) for e in errors]
    if completed_at is not None:
        job.attributes["completed_at"] = timestamp(completed_at)
    return job
