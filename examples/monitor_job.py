"""Monitor one catalog item bulk-update job until it finishes, printing its progress.

    KLAVIYO_API_KEY=pk_... python examples/monitor_job.py JOB_ID [--timeout SECONDS]

Exits 0 when the job completed without failed items, 1 when items failed or the job was
cancelled, 2 on a usage error (no JOB_ID, no key), and 3 when it did not finish within the
timeout (120 s by default).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from klaviyo_catalog import (
    BulkJob,
    CatalogJobs,
    ConfigurationError,
    InvalidRequestError,
    JobStatus,
    WaitTimeoutError,
)


def show(job: BulkJob) -> None:
    print(f"{job.id}: {job.status} {job.progress:.0%} ({job.failed_count} failed)", flush=True)


def seconds(text: str) -> float:
    value = float(text)  # a ValueError is reported by argparse as an invalid value
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        usage="KLAVIYO_API_KEY=pk_... python %(prog)s JOB_ID [--timeout SECONDS]",
        description="Follow a catalog item bulk-update job until it finishes.",
    )
    parser.add_argument("job_id", metavar="JOB_ID", help="the id of an item bulk-update job")
    parser.add_argument("--timeout", type=seconds, default=120.0, help="seconds to wait (120)")
    args = parser.parse_args(argv)
    try:
        kc = CatalogJobs()  # the key from KLAVIYO_API_KEY
    except ConfigurationError as exc:  # no key, or a malformed one: a usage error, exit 2
        parser.error(str(exc))
    with kc:
        try:
            job = kc.get_item_update_job(args.job_id)
            done = kc.wait_for_job(job, poll_interval=0.5, timeout=args.timeout, on_progress=show)
        except InvalidRequestError as exc:  # an id the API cannot take, refused unsent
            parser.error(str(exc))
        except WaitTimeoutError as timeout:
            print(f"still {timeout.job.status} after {args.timeout:g} s", file=sys.stderr)
            return 3
        for error in done.errors:
            print(f"error: {error.detail}", file=sys.stderr)
        ok = done.status is JobStatus.COMPLETE and done.failed_count == 0
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
