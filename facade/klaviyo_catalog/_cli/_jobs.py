"""`klaviyo-catalog jobs list|get|wait`: each a few calls of `CatalogJobs`, then rendering."""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Iterator
from typing import TextIO

from .._client import CatalogJobs
from .._models import BulkJob
from ._render import (
    JobTable,
    Progress,
    counts,
    describe_error,
    job_json,
    job_lines,
    to_json,
)

LIST_KINDS = ("item-create", "variant-update")
GET_KINDS = ("item-update", "variant-update", "category-update")
RELATIONSHIP = {
    "item-update": "items",
    "variant-update": "variants",
    "category-update": "categories",
}


def fetch(client: CatalogJobs, kind: str, job_id: str, include: bool = False) -> BulkJob:
    related = [RELATIONSHIP[kind]] if include else None
    if kind == "item-update":
        return client.get_item_update_job(job_id, include=related)
    if kind == "variant-update":
        return client.get_variant_update_job(job_id, include=related)
    return client.get_category_update_job(job_id, include=related)


def list_jobs(client: CatalogJobs, args: argparse.Namespace, out: TextIO) -> int:
    walk: Iterator[BulkJob]
    if args.kind == "item-create":
        walk = client.iter_item_create_jobs(status=args.status)
    else:
        walk = client.iter_variant_update_jobs(status=args.status)
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


def wait_job(client: CatalogJobs, args: argparse.Namespace, out: TextIO) -> int:
    job = fetch(client, args.kind, args.job_id)
    live = out.isatty() and os.environ.get("TERM") != "dumb"
    progress = Progress(out, live=live)  # the wait reports the starting state to it too
    try:
        job = client.wait_for_job(
            job, poll_interval=args.poll_interval, timeout=args.timeout, on_progress=progress
        )
    finally:
        progress.close()
    print(f"job {job.id} is {job.status} after {progress.elapsed:.1f}s: {counts(job)}", file=out)
    for error in job.errors[:3]:
        print(f"  - {describe_error(error)}", file=out)
    if len(job.errors) > 3:
        print(f"  ... and {len(job.errors) - 3} more: see `jobs get --json`", file=out)
    return 0
