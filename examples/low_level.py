"""The generated low-level client: one request, the raw HTTP response and its generated model.

    KLAVIYO_API_KEY=pk_... python examples/low_level.py [JOB_ID]

Lists the first page of item-create jobs with the generated `list_item_create_jobs` (status,
headers, each job's id and status from the generated models); with JOB_ID, also GETs that
item-update job with its items. No rate limiting, no retries, no bounds on what the server
sends: that is CatalogJobs' work (see the README, "The generated client"). Exits 0, 1 when a
response is not a 200, 2 on a usage error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from klaviyo_catalog_api import AuthenticatedClient
from klaviyo_catalog_api.api.catalog_jobs import get_item_update_job, list_item_create_jobs
from klaviyo_catalog_api.catalog_spec import REVISION
from klaviyo_catalog_api.models import (
    ItemCreateJob,
    ItemCreateJobCollection,
    ItemUpdateJob,
    ItemUpdateJobDocument,
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    key = os.environ.get("KLAVIYO_API_KEY")
    if not key or len(args) > 1:
        print("usage: KLAVIYO_API_KEY=pk_... python low_level.py [JOB_ID]", file=sys.stderr)
        return 2
    client = AuthenticatedClient(
        base_url=os.environ.get("KLAVIYO_BASE_URL", "https://a.klaviyo.com"),
        token=key,
        prefix="Klaviyo-API-Key",
        headers={"Accept": "application/vnd.api+json"},  # the generator never sets Accept
        raise_on_unexpected_status=True,  # errors.UnexpectedStatus for an undocumented status
    )
    with client:
        # Every keyword is the spec's parameter: the revision header is required, filters and
        # sparse fieldsets are the API's own strings.
        response = list_item_create_jobs.sync_detailed(
            client=client, revision=REVISION, filter_="equals(status,'processing')"
        )
        print(f"HTTP {response.status_code}, request id {response.headers.get('x-klaviyo-req-id')}")
        page = response.parsed
        if not isinstance(page, ItemCreateJobCollection):  # the documented ErrorDocument
            print(f"error: {response.content[:200]!r}", file=sys.stderr)
            return 1
        for job in page.data:
            # The id is `data.id` from revision 2023-12-15, `attributes.job_id` before it: the
            # low-level models hold whichever the revision generated from sends.
            print(f"{job_id_of(job)}: {job.attributes.status}")
        if args:
            single = get_item_update_job.sync_detailed(
                args[0], client=client, revision=REVISION, include="items"
            )
            document = single.parsed
            if not isinstance(document, ItemUpdateJobDocument):
                print(f"error: HTTP {single.status_code}", file=sys.stderr)
                return 1
            print(
                f"{job_id_of(document.data)}: {document.data.attributes.status}, "
                f"{len(document.included or [])} items included"
            )
    return 0


def job_id_of(job: ItemCreateJob | ItemUpdateJob) -> str:
    """A job's id, wherever the revision puts it."""
    if isinstance(job.id, str):
        return job.id
    return str(job.attributes.job_id)


if __name__ == "__main__":
    raise SystemExit(main())
