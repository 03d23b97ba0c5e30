"""`klaviyo-catalog jobs list|get|errors`: each a few calls of `CatalogJobs`, then rendering."""

from __future__ import annotations

import argparse
import csv
import itertools
from collections.abc import Callable, Iterator
from typing import TextIO

from klaviyo_catalog_api.catalog_spec import KINDS

from .._client import CatalogJobs
from .._models import BulkJob, JobFailure
from ._render import (
    JobTable,
    job_json,
    job_lines,
    table,
    to_json,
)

# The kinds each command takes, and what `--include` asks for, from the generated kinds.
LIST_KINDS = tuple(name for name, kind in KINDS.items() if kind.list_operation)
GET_KINDS = tuple(name for name, kind in KINDS.items() if kind.get_operation)


def fetch(client: CatalogJobs, kind: str, job_id: str, include: bool = False) -> BulkJob:
    spec = KINDS[kind]
    get: Callable[..., BulkJob] = getattr(client, str(spec.get_operation))
    return get(job_id, include=list(spec.relationships) if include else None)


def list_jobs(client: CatalogJobs, args: argparse.Namespace, out: TextIO) -> int:
    # list_item_create_jobs -> iter_item_create_jobs: the method that walks every page.
    name = str(KINDS[args.kind].list_operation).replace("list_", "iter_", 1)
    walk: Iterator[BulkJob] = getattr(client, name)(status=args.status)
    # islice stops before asking for job N+1, so the pages after the limit are never fetched.
    jobs = itertools.islice(walk, args.limit)
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
    what = f"{args.status} {args.kind}" if args.status else args.kind
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
    error, resource = failure.error, failure.resource
    external_id = (error.meta or {}).get("external_id")
    return (
        resource.type if resource is not None else "",
        resource.id if resource is not None else "",
        str(external_id) if external_id is not None else "",
        error.code or "",
        error.source_pointer or "",
        error.detail or "",
    )


def job_errors(client: CatalogJobs, args: argparse.Namespace, out: TextIO) -> int:
    """A job's failures, each with the resource it concerns (fetched with include= for it)."""
    job = fetch(client, args.kind, args.job_id, include=True)
    rows = [_failure_row(failure) for failure in job.failures]
    if args.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FAILURE_COLUMNS)
        writer.writerows(rows)
    elif rows:
        print("\n".join(table(FAILURE_COLUMNS, rows, numeric=())), file=out)
        noun = "error" if len(rows) == 1 else "errors"
        print(f"\n{len(rows)} {noun} in job {job.id} ({job.status})", file=out)
    else:
        print(f"job {job.id} ({job.status}) has no errors", file=out)
    return 0
