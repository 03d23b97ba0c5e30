"""Count the account's item-create and variant-update jobs by status, walking every page.

    KLAVIYO_API_KEY=pk_... python examples/list_backlog.py

Only each job's status is fetched (a sparse fieldset), and one page is in memory at a time.
Exits 2 on a usage error (an argument, or no key).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence

from klaviyo_catalog import CatalogJobs, ConfigurationError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        usage="KLAVIYO_API_KEY=pk_... python %(prog)s",
        description="Count the account's item-create and variant-update jobs by status.",
    )
    parser.parse_args(argv)
    try:
        kc = CatalogJobs()  # the key from KLAVIYO_API_KEY
    except ConfigurationError as exc:  # no key, or a malformed one: a usage error, exit 2
        parser.error(str(exc))
    with kc:
        creates = Counter(
            str(job.status)
            for job in kc.iter_item_create_jobs(fields={"catalog-item-bulk-create-job": ["status"]})
        )
        updates = Counter(
            str(job.status)
            for job in kc.iter_variant_update_jobs(
                fields={"catalog-variant-bulk-update-job": ["status"]}
            )
        )
    for kind, counts in (("item-create", creates), ("variant-update", updates)):
        summary = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
        print(f"{kind}: {sum(counts.values())} jobs ({summary or 'none'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
