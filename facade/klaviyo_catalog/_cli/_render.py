"""How the CLI shows jobs: aligned tables for people, JSON for scripts, and a wait display."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

import attrs

from .._models import BulkJob, JobError, ResourceRef
from .._resources import Resource

SHORT_KINDS = {
    "catalog-item-bulk-create-job": "item-create",
    "catalog-item-bulk-update-job": "item-update",
    "catalog-variant-bulk-update-job": "variant-update",
    "catalog-category-bulk-update-job": "category-update",
}
RELATIONSHIPS = ("items", "variants", "categories")
# The attributes worth a column for each relationship; the id always comes first.
RESOURCE_COLUMNS = {
    "items": (("TITLE", "title"), ("PRICE", "price")),
    "variants": (
        ("SKU", "sku"),
        ("TITLE", "title"),
        ("PRICE", "price"),
        ("STOCK", "inventory_quantity"),
    ),
    "categories": (("NAME", "name"),),
}
NUMERIC = frozenset({"PRICE", "STOCK", "DONE", "COMPLETED", "FAILED", "TOTAL"})
SHOWN_ERRORS = 5


# --- JSON ------------------------------------------------------------------------------------


def to_json(value: Any, *, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)  # never fail half-way through a listing on an odd value


def job_json(job: BulkJob) -> dict[str, Any]:
    """A job as plain JSON: datetimes ISO 8601, status a string, related resources JSON:API."""
    document: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "status": str(job.status),
        "created_at": job.created_at,
        "completed_at": job.completed_at,
        "expires_at": job.expires_at,
        "total_count": job.total_count,
        "completed_count": job.completed_count,
        "failed_count": job.failed_count,
        "progress": round(job.progress, 4),
        "errors": [attrs.asdict(error) for error in job.errors],
    }
    for name in RELATIONSHIPS:
        related = getattr(job, name)
        if related is not None:
            # Each resource as the server sent it; one it did not include keeps the bare
            # JSON:API linkage, type and id.
            document[name] = [
                {"type": r.type, "id": r.id} if isinstance(r, ResourceRef) else dict(r.raw)
                for r in related
            ]
    return document


# --- text ------------------------------------------------------------------------------------


def when(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    if value.utcoffset() == dt.timedelta(0):
        return f"{value:%Y-%m-%d %H:%M:%S} UTC"
    return value.isoformat(sep=" ", timespec="seconds")


def percent(job: BulkJob) -> str:
    return f"{job.progress:.0%}"


def counts(job: BulkJob) -> str:
    return f"{job.completed_count} completed, {job.failed_count} failed, {job.total_count} total"


def describe_error(error: JobError) -> str:
    external_id = (error.meta or {}).get("external_id")
    return f"{error.detail} [{external_id}]" if external_id else error.detail


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Aligned columns; numbers right-aligned."""
    cells = [list(row) for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    return [_row(headers, widths, headers), *(_row(row, widths, headers) for row in cells)]


def _row(cells: Sequence[str], widths: Sequence[int], headers: Sequence[str]) -> str:
    padded = (
        cell.rjust(width) if header in NUMERIC else cell.ljust(width)
        for cell, width, header in zip(cells, widths, headers, strict=True)
    )
    return "  ".join(padded).rstrip()


class JobTable:
    """The `jobs list` table, printed row by row as pages arrive.

    Fixed column widths (job ids are 26-character ULIDs) let it print before the listing
    ends, so a long listing shows at once and memory holds one page at a time.
    """

    HEADERS = ("ID", "STATUS", "DONE", "COMPLETED", "FAILED", "TOTAL", "CREATED")
    WIDTHS = (26, 10, 4, 9, 6, 7, 0)

    def header(self) -> str:
        return _row(self.HEADERS, self.WIDTHS, self.HEADERS)

    def row(self, job: BulkJob) -> str:
        cells = (
            job.id,
            str(job.status),
            percent(job),
            str(job.completed_count),
            str(job.failed_count),
            str(job.total_count),
            when(job.created_at),
        )
        return _row(cells, self.WIDTHS, self.HEADERS)


def job_lines(job: BulkJob) -> list[str]:
    """The `jobs get` view: the job's fields, its errors, then any included resources."""
    fields = (
        ("Job", job.id),
        ("Kind", SHORT_KINDS.get(job.kind, job.kind)),
        ("Status", str(job.status)),
        ("Progress", f"{percent(job)}  ({counts(job)})"),
        ("Created", when(job.created_at)),
        ("Completed", when(job.completed_at)),
        ("Expires", when(job.expires_at)),
        ("Errors", str(len(job.errors))),
    )
    lines = [f"{name:<10} {value}" for name, value in fields]
    lines += [f"  - {describe_error(error)}" for error in job.errors[:SHOWN_ERRORS]]
    if len(job.errors) > SHOWN_ERRORS:
        lines.append(f"  ... and {len(job.errors) - SHOWN_ERRORS} more (--json lists them all)")
    for name in RELATIONSHIPS:
        related = getattr(job, name)
        if related is not None:
            lines += ["", f"{name.capitalize()} ({len(related)})", *related_table(name, related)]
    return lines


def related_table(name: str, resources: Sequence[Resource[Any] | ResourceRef]) -> list[str]:
    columns = RESOURCE_COLUMNS[name]
    rows = []
    for resource in resources:
        if isinstance(resource, ResourceRef):  # named by the job, but the server sent no body
            rows.append([resource.id, "(not included)", *[""] * (len(columns) - 1)])
        else:
            rows.append([resource.id, *(_cell(resource, field) for _, field in columns)])
    return table(["ID", *(header for header, _ in columns)], rows)


def _cell(resource: Resource[Any], field: str) -> str:
    value = getattr(resource, field)  # the view's typed attribute; None when absent
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if field == "price" else f"{value:g}"
    return str(value)


# --- jobs wait -------------------------------------------------------------------------------


class Progress:
    """`on_progress` for `jobs wait`: a bar redrawn in place on a terminal, else a line per poll.

    The plain form keeps logs and pipes free of carriage returns and escape codes.
    """

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self.out = out
        self.live = live
        self.started = time.monotonic()
        self._drawn = False
        encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "")
        self._marks = ("█", "░") if encoding == "utf8" else ("#", "-")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, job: BulkJob) -> None:
        status, done = f"{job.status!s:<10}", f"{percent(job):>4}"
        if self.live:
            text = f"{done}  {status}  {counts(job)}  {self.elapsed:.1f}s"
            columns = shutil.get_terminal_size().columns
            size = max(10, min(30, columns - len(text) - 4))  # the bar takes the spare room
            filled = round(job.progress * size)
            bar = self._marks[0] * filled + self._marks[1] * (size - filled)
            # Never wider than the terminal: a wrapped line cannot be redrawn with \r.
            self.out.write(f"\r[{bar}] {text}"[:columns] + "\x1b[K")
            self._drawn = True
        else:
            self.out.write(f"{self.elapsed:6.1f}s  {status} {done}  {counts(job)}\n")
        self.out.flush()

    def close(self) -> None:
        """End the bar's line, so what follows (a summary, an error) starts on its own."""
        if self._drawn:
            self.out.write("\n")
            self.out.flush()
            self._drawn = False
