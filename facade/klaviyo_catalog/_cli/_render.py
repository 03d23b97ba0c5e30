"""How the CLI shows jobs: aligned tables for people, JSON for scripts, and a wait display.

Every string a server sent is escaped here, where it leaves for a person (`_text.escape`): a
table cell, a field of `jobs get`, an error's line. JSON output escapes the same characters as
JSON escapes, so it parses back to the exact values.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from klaviyo_catalog_api.catalog_spec import KINDS, RELATIONSHIPS
from klaviyo_catalog_api.views import JOB_ATTRIBUTES, VIEWS, Attr, parse_datetime

from .._models import BulkJob, ResourceRef
from .._resources import Resource
from .._text import escape, escape_json
from ..errors import APIErrorDetail

# Everything about kinds, relationships and attributes comes from the generated package.
SHORT_KINDS = {kind.job_type: kind.name for kind in KINDS.values()}
NUMERIC = {"DONE", "COMPLETED", "FAILED", "TOTAL"}  # right-aligned columns of the job table
SHOWN_ERRORS = 5
CELL_CHARS = 30  # a longer value is cut short in a table; --json has it whole
MIN_TABLE_WIDTH = 100


def view_attributes(view: type[Resource[Any]]) -> dict[str, Attr[Any]]:
    """The typed attributes of a view class, in the spec's order."""
    found: dict[str, Attr[Any]] = {}
    for cls in reversed(view.__mro__):
        found.update((n, a) for n, a in vars(cls).items() if isinstance(a, Attr))
    return found


def _columns(view: type[Resource[Any]]) -> dict[str, Attr[Any]]:
    """The attributes a text table shows: single values (no lists, objects or date-times)."""
    return {
        name: attr
        for name, attr in view_attributes(view).items()
        if attr.convert is not parse_datetime
        and all(kind in (str, int, float, bool) for kind in attr.kinds)
    }


# Per relationship: the view's one-value attributes, each a column of the text table.
RESOURCE_COLUMNS = {name: _columns(VIEWS[json_type]) for name, json_type in RELATIONSHIPS.items()}


# --- JSON ------------------------------------------------------------------------------------


def to_json(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON (RFC 8259) of `value`, safe on a terminal: non-ASCII text kept as it is;
    controls, bidi and invisible characters and lone surrogates as `\\uXXXX` escapes; NaN and
    ±Infinity, which JSON cannot write, as null."""
    try:
        text = _dumps(value, indent)
    except ValueError:  # a float JSON has no number for: the rare path walks the value
        text = _dumps(_finite(value), indent)
    return escape_json(text)


def _dumps(value: Any, indent: int | None) -> str:
    return json.dumps(
        value, indent=indent, default=_json_default, ensure_ascii=False, allow_nan=False
    )


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinite float (Python's json reads `NaN` and `1e999`) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)  # never fail half-way through a listing on an odd value


def job_json(job: BulkJob) -> dict[str, Any]:
    """A job as the CLI's --json prints it: `BulkJob.to_dict()`, the library's own shape, so
    scripts read the CLI's output and an app's serialized jobs alike."""
    return job.to_dict()


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


def external_id_of(error: APIErrorDetail) -> str | None:
    """The external id of the resource an error names: `meta.external_id` (create jobs), else
    the end of `meta.id`, the resource's full id (`$custom:::$default:::SKU`: update and delete
    jobs); None when it names none."""
    meta = error.meta or {}
    external_id = meta.get("external_id")
    if external_id is not None:
        return str(external_id)
    resource_id = meta.get("id")
    if not isinstance(resource_id, str) or not resource_id:
        return None
    return resource_id.rpartition(":::")[2] or resource_id


def describe_error(error: APIErrorDetail) -> str:
    """One line: the error's detail, and the external id it names; escaped."""
    external_id = external_id_of(error)
    text = error.detail or error.describe()
    return escape(f"{text} [{external_id}]" if external_id else text)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Iterable[str] = NUMERIC,
    width: int | None = None,
) -> list[str]:
    """Aligned columns, `numeric` ones right-aligned. With `width`, the first column and then,
    in order, each column that still fits are shown, and a last line says how many were not."""
    cells = [list(row) for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    keep = list(range(len(headers)))
    if width is not None:
        keep, used = [0], widths[0]
        for i in range(1, len(headers)):
            if used + 2 + widths[i] <= width:
                keep.append(i)
                used += 2 + widths[i]
    right = set(numeric)
    shown = [headers[i] for i in keep]
    lines = [
        _row([row[i] for i in keep], [widths[i] for i in keep], shown, right)
        for row in [list(headers), *cells]
    ]
    if len(keep) < len(headers):
        hidden = len(headers) - len(keep)
        lines.append(f"(and {hidden} more column{'s' if hidden > 1 else ''}: --json shows all)")
    return lines


def _row(
    cells: Sequence[str], widths: Sequence[int], headers: Sequence[str], right: set[str]
) -> str:
    padded = (
        cell.rjust(width) if header in right else cell.ljust(width)
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
        return _row(self.HEADERS, self.WIDTHS, self.HEADERS, NUMERIC)

    def row(self, job: BulkJob) -> str:
        cells = (
            escape(job.id),
            escape(str(job.status)),
            percent(job),
            str(job.completed_count),
            str(job.failed_count),
            str(job.total_count),
            when(job.created_at),
        )
        return _row(cells, self.WIDTHS, self.HEADERS, NUMERIC)


def job_lines(job: BulkJob) -> list[str]:
    """The `jobs get` view: the job's fields, its errors, then any included resources.

    After the status and progress (which sums up the counts), every other attribute of the
    spec's jobs has a line, in the spec's order, so a regenerated one shows here too."""
    fields = [
        ("Job", escape(job.id)),
        ("Kind", escape(SHORT_KINDS.get(job.kind, job.kind))),
        ("Status", escape(str(job.status))),
        ("Progress", f"{percent(job)}  ({counts(job)})"),
        *(
            (_label(name), _job_value(getattr(job, name), attribute.kind))
            for name, attribute in JOB_ATTRIBUTES.items()
            if name not in _SUMMED_UP
        ),
        ("Errors", str(len(job.errors))),
    ]
    width = max(len(name) for name, _ in fields)
    lines = [f"{name:<{width}}  {value}" for name, value in fields]
    lines += [f"  - {describe_error(error)}" for error in job.errors[:SHOWN_ERRORS]]
    if len(job.errors) > SHOWN_ERRORS:
        lines.append(f"  ... and {len(job.errors) - SHOWN_ERRORS} more (--json lists them all)")
    for name in RELATIONSHIPS:
        related = getattr(job, name)
        if related is not None:
            lines += ["", f"{name.capitalize()} ({len(related)})", *related_table(name, related)]
    return lines


# Job attributes the first and last lines of `jobs get` show: its status, its counts as the
# progress, and its errors.
_SUMMED_UP = frozenset({"status", "total_count", "completed_count", "failed_count", "errors"})


def _label(attribute: str) -> str:
    """`created_at` -> "Created", `skipped_count` -> "Skipped count"."""
    return attribute.removesuffix("_at").replace("_", " ").capitalize()


def _job_value(value: Any, kind: str) -> str:
    return when(value) if kind == "datetime" else _cell(value)


def related_table(name: str, resources: Sequence[Resource[Any] | ResourceRef]) -> list[str]:
    """One row per related resource: its id, then the view's one-value attributes that fit."""
    views = [r for r in resources if not isinstance(r, ResourceRef)]
    # A column that only repeats part of each id (Klaviyo's ids embed the external id) is left
    # out, as is one no resource has a value for.
    columns = {
        field: attr
        for field, attr in RESOURCE_COLUMNS[name].items()
        if any(_cell(getattr(r, field)) not in (escape(r.id), "-") for r in views)
        and not all(_cell(getattr(r, field)) in escape(r.id) for r in views)
    }
    headers = ["ID", *(field.upper() for field in columns)] if columns else ["ID", ""]
    rows = []
    for resource in resources:
        if isinstance(resource, ResourceRef):  # named by the job, but the server sent no body
            rows.append([escape(resource.id), "(not included)", *[""] * (len(headers) - 2)])
        else:
            values = [_cell(getattr(resource, field)) for field in columns]
            rows.append([escape(resource.id), *(values or [""])])
    numeric = {
        field.upper()
        for field, attr in columns.items()
        if bool not in attr.kinds and any(k in (int, float) for k in attr.kinds)
    }
    width = max(shutil.get_terminal_size((MIN_TABLE_WIDTH, 24)).columns, MIN_TABLE_WIDTH)
    return table(headers, rows, numeric, width)


def _cell(value: Any) -> str:
    """A typed attribute's value (None when absent) as table text, escaped, then cut to
    CELL_CHARS."""
    if value is None:
        return "-"
    text = f"{value:.2f}" if isinstance(value, float) else escape(str(value))
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
