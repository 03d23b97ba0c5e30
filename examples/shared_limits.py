"""Several worker processes fetching jobs within one account's rate limit, shared via Redis.

    KLAVIYO_API_KEY=pk_... REDIS_URL=redis://localhost:6379/0 \
        python examples/shared_limits.py JOB_ID [JOB_ID ...]

Each process keeps its own connections, but all of them draw on one budget kept in Redis
(clocked by the Redis server), so together they stay within Klaviyo's per-account limits.
Exits 2 on a usage error (no JOB_ID, no REDIS_URL, no key).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial

from klaviyo_catalog import CatalogJobs, ConfigurationError, RedisRateLimiter


def fetch(job_id: str, redis_url: str) -> str:
    limiter = RedisRateLimiter(redis_url)
    with CatalogJobs(rate_limiter=limiter) as kc:  # the key from KLAVIYO_API_KEY
        job = kc.get_item_update_job(job_id)
    return f"{job.id}: {job.status} ({job.completed_count}/{job.total_count})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        usage="KLAVIYO_API_KEY=pk_... REDIS_URL=redis://HOST:6379/0 python %(prog)s "
        "JOB_ID [JOB_ID ...]",
        description="Fetch item bulk-update jobs from 4 processes within one shared rate limit.",
    )
    parser.add_argument("job_ids", metavar="JOB_ID", nargs="+", help="item bulk-update job ids")
    args = parser.parse_args(argv)
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        parser.error("set REDIS_URL to the Redis server that holds the shared budget")
    with ProcessPoolExecutor(max_workers=4) as pool:
        try:
            for line in pool.map(partial(fetch, redis_url=redis_url), args.job_ids):
                print(line)
        except (ConfigurationError, ValueError) as exc:  # no key, a malformed REDIS_URL, ...
            parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
