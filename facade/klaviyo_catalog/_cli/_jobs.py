"""`klaviyo-catalog jobs list|get|errors`: each a few calls of `CatalogJobs`, then rendering."""

from __future__ import annotations

import argparse
import csv
import itertools
from collections.abc import Callable, Iterator
from typing import TextIO

from klaviyo_catalog_api.catalog_spec import KINDS, OPERATIONS

from .._client import CatalogJobs
from .._models import BulkJob, JobFailure
from .._text import csv_cell, escape
from ._render import (
    JobTable,
    external_id_of,
    job_json,
    job_lines,
    table,
    to_json,
)

# The kinds each command takes, from the generated kinds: a kind the spec gains is taken too.
LIST_KINDS = tuple(name for name, kind in KINDS.items() if kind.list_operation)
GET_KINDS = tuple(name for name, kind in KINDS.items() if kind.get_operation)


def includable(kind: str) -> list[str]:
    """What `--include` asks for with a job of `kind`: every include its GET takes (none for
    delete jobs, whose GET takes no `include`)."""
    operation = KINDS[kind].get_operation
    return list(OPERATIONS[operation].include) if operation else []


def fetch(client: CatalogJobs, kind: str, job_id: str, include: bool = False) -> BulkJob:
    get: Callable[..., BulkJob] = getattr(client, str(KINDS[kind].get_operation))
    # A GET that takes no include (delete jobs') is not given one.
    wanted = includable(kind) if include else []
    return get(job_id, include=wanted) if wanted else get(job_id)


def walk(client: CatalogJobs, kind: str, status: str | None = None) -> Iterator[BulkJob]:
    """Every job of a listable `kind` (with `status`, if given), page by page."""
    # list_item_create_jobs -> iter_item_create_jobs: the method that walks every page.
    name = str(KINDS[kind].list_operation).replace("list_", "iter_", 1)
    jobs: Iterator[BulkJob] = getattr(client, name)(status=status)
    return jobs


def list_jobs(client: CatalogJobs, args: argparse.Namespace, out: TextIO) -> int:
    # islice stops before asking for job N+1, so the pages after the limit are never fetched.
    jobs = itertools.islice(walk(client, args.kind, args.status), args.limit)
    if args.json:
        for job in jobs:
            print(to_json(job_json(job)), file=out, flush=True)
        return 0
    shown = 0
    rows = JobTable()
    for job in jobs:
        if shown == 0:
            print(rows.header(), file=out)
        print(rows.row(job), file=out, flush=True)
        shown += 1
    what = escape(f"{args.status} {args.kind}" if args.status else args.kind)
    if shown == 0:
        print(f"no {what} jobs", file=out)
    elif shown == args.limit:
        print(f"\n{shown} {what} jobs (stopped at --limit {args.limit})", file=out)
    else:
        print(f"\n{shown} {what} jobs", file=out)
    return 0


def get_job(client: CatalogJobs, args: argparse.Namespace, out: TextIO) -> int:
    job = fetch(client, args.kind, args.job_id, include=args.include)
    if args.json:
        print(to_json(job_json(job), indent=2), file=out)
    else:
        print("\n".join(job_lines(job)), file=out)
    return 0


FAILURE_COLUMNS = ("resource_type", "resource_id", "external_id", "code", "pointer", "detail")


def _failure_row(failure: JobFailure) -> tuple[str, ...]:
    """A failure's cells, as the server sent them (the caller escapes them for its output)."""
    error, resource = failure.error, failure.resource
    external_id = external_id_of(error)
    return (
        resource.type if resource is not None else "",
        resource.id if resource is not None else "",
        external_id or "",
        error.code or "",
        error.source_pointer or "",
        error.detail or "",
    )


def job_errors(client: CatalogJobs, args: argparse.Namespace, out: TextIO) -> int:
    """A job's failures, each with the resource it concerns (fetched with include= for it):
    a table, CSV for a sheet (formulas neutralised), or one JSON object per failure a line."""
    job = fetch(client, args.kind, args.job_id, include=True)
    if args.json:
        for failure in job.failures:
            print(to_json(failure.to_dict()), file=out)
        return 0
    rows = [_failure_row(failure) for failure in job.failures]
    if args.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FAILURE_COLUMNS)
        writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    elif rows:
        cells = [[escape(cell) for cell in row] for row in rows]
        print("\n".join(table(FAILURE_COLUMNS, cells, numeric=())), file=out)
        noun = "error" if len(rows) == 1 else "errors"
        print(f"\n{len(rows)} {noun} in job {escape(job.id)} ({escape(str(job.status))})", file=out)
    else:
        print(f"job {escape(job.id)} ({escape(str(job.status))}) has no errors", file=out)
    return 0
