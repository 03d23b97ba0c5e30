"""Monitor one catalog item bulk-update job until it finishes, printing its progress.

    KLAVIYO_API_KEY=pk_... python examples/monitor_job.py JOB_ID

Exits 0 when the job completed without failed items, 1 when items failed or the job was
cancelled, and 2 when it did not finish within the timeout.
"""

from __future__ import annotations

import sys

from klaviyo_catalog import BulkJob, CatalogJobs, JobStatus, WaitTimeoutError


def show(job: BulkJob) -> None:
    print(f"{job.id}: {job.status} {job.progress:.0%} ({job.failed_count} failed)", flush=True)


def main(job_id: str) -> int:
    with CatalogJobs() as kc:  # the key from KLAVIYO_API_KEY
        job = kc.get_item_update_job(job_id)
        try:
            done = kc.wait_for_job(job, poll_interval=0.5, timeout=120, on_progress=show)
        except WaitTimeoutError as timeout:
            print(f"still {timeout.job.status} after 120 s", file=sys.stderr)
            return 2
        for error in done.errors:
            print(f"error: {error.detail}", file=sys.stderr)
        ok = done.status is JobStatus.COMPLETE and done.failed_count == 0
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
