"""Several worker processes fetching jobs within one account's rate limit, shared via Redis.

    KLAVIYO_API_KEY=pk_... REDIS_URL=redis://localhost:6379/0 \
        python examples/shared_limits.py JOB_ID [JOB_ID ...]

Each process keeps its own connections, but all of them draw on one budget kept in Redis
(clocked by the Redis server), so together they stay within Klaviyo's per-account limits.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor

from klaviyo_catalog import CatalogJobs, RedisRateLimiter


def fetch(job_id: str) -> str:
    limiter = RedisRateLimiter(os.environ["REDIS_URL"])
    with CatalogJobs(rate_limiter=limiter) as kc:
        job = kc.get_item_update_job(job_id)
    return f"{job.id}: {job.status} ({job.completed_count}/{job.total_count})"


def main(job_ids: list[str]) -> int:
    with ProcessPoolExecutor(max_workers=4) as pool:
        for line in pool.map(fetch, job_ids):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
