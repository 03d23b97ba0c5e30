"""`klaviyo-catalog fake-server`: a seeded FakeKlaviyo in the foreground, to try the CLI on.

The seed reads like a store mid-backfill: hundreds of listable jobs, the old ones done and the
recent ones still running, plus a few update jobs with real-looking related resources. Some
jobs advance each time they are served, so `jobs wait` has something to watch. With
`--finish-within S` the running backlog drains too: each of its jobs finishes at a random
moment within S seconds of the first time a client sees it, so waiting for the running jobs
(the README's first example) ends in seconds, whenever it is run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from ..testing import FakeKlaviyo
from . import CliError

LISTED = {"item-create": 540, "variant-update": 320}
POLLS_TO_COMPLETE = 8  # with --poll-interval 0.1 and the client's 1.5x back-off: about 3 s
PRODUCTS = (
    ("TEE-CLASSIC-BLK", "Classic Tee, Black", 24.0),
    ("TEE-CLASSIC-WHT", "Classic Tee, White", 24.0),
    ("HOODIE-ZIP-GRY", "Zip Hoodie, Heather Grey", 59.0),
    ("CAP-LOGO-NVY", "Logo Cap, Navy", 18.0),
    ("SOCKS-CREW-3PK", "Crew Socks, 3-pack", 14.5),
    ("TOTE-CANVAS-NAT", "Canvas Tote, Natural", 22.0),
    ("BEANIE-RIB-OAT", "Ribbed Beanie, Oat", 26.0),
    ("JOGGER-FLC-BLK", "Fleece Joggers, Black", 54.0),
)
CATEGORIES = (("apparel", "Apparel"), ("tops", "Tops"), ("accessories", "Accessories"))


class _Stopped(Exception):
    """Raised by the SIGTERM handler, so SIGTERM unwinds like Ctrl-C does."""


def serve(
    port: int, spec: str | None, ready_file: str | None, finish_within: float | None = None
) -> int:
    try:
        # By default the fake serves the generated revision's shape; --spec another curated one.
        fake = FakeKlaviyo(port=port, spec=spec)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CliError(f"--spec: not a curated spec the fake can serve: {exc}") from exc
    ready = Path(ready_file) if ready_file else None
    wrote_ready = False
    signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        try:
            fake.start()
        except OSError as exc:
            raise CliError(
                f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): "
                "choose another --port, or --port 0 for any free one"
            ) from exc
        examples = seed(fake, finish_within)  # nobody knows the port before the announcement
        _announce(fake, examples, finish_within)
        if ready is not None:
            info = {"base_url": fake.base_url, "api_key": fake.api_key, "examples": examples}
            partial = ready.with_name(ready.name + ".partial")
            partial.write_text(json.dumps(info, indent=2) + "\n")
            os.replace(partial, ready)  # readers never see half a file
            wrote_ready = True
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut cleanup
        fake.stop()
        if ready is not None and wrote_ready:
            with contextlib.suppress(FileNotFoundError):
                ready.unlink()  # it describes a server that is gone
    print("fake Klaviyo stopped", file=sys.stderr)
    return 0


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def seed(fake: FakeKlaviyo, finish_within: float | None = None) -> dict[str, str]:
    """Add the demo jobs; return the notable ones' ids by role. With `finish_within`, the
    backlog's running jobs finish within that many seconds of being first served."""
    rng = random.Random(2024)  # the same store every run
    now = datetime.now(UTC)
    backlog: list[str] = []
    for kind, count in LISTED.items():
        done = count * 4 // 9  # the oldest finished; the backlog after them is still running
        for i in range(count):
            created = now - timedelta(days=3) * (1 - i / count)
            total = rng.choice((40, 120, 250, 800, 1500, 4000))
            completed_at = None
            if i < done:
                status = "cancelled" if rng.random() < 0.05 else "complete"
                completed_at = created + timedelta(minutes=rng.randint(2, 90))
            else:
                status = "queued" if i % 8 == 0 else "processing"
            job_id = fake.add_job(
                kind,
                status=status,
                total=total,
                items=10,  # the relationship names a few; enough for the documents' shape
                failed=rng.choice((0, 0, 0, 0, 1, 2, 5)),
                created_at=created,
                completed_at=completed_at,
            )
            if status in ("processing", "cancelled"):
                # The fake stops all of these half-way; a real backlog is spread out.
                remaining = total - fake.job_attributes(job_id)["failed_count"]
                fake.set_job(job_id, completed_count=int(remaining * rng.uniform(0.02, 0.97)))
            if status in ("queued", "processing"):
                backlog.append(job_id)
    if finish_within is not None:  # the examples below keep their roles (one never ends)
        fake.finish_when_seen(finish_within, seed=2024, job_ids=backlog)
    items: list[dict[str, Any]] = [
        {"external_id": sku, "title": title, "price": price} for sku, title, price in PRODUCTS
    ]
    variants: list[dict[str, Any]] = [
        {
            "external_id": f"{sku}-{size}",
            "sku": f"{sku}-{size}",
            "title": f"{title} / {size}",
            "price": price,
            "inventory_quantity": rng.randint(0, 240),
        }
        for sku, title, price in PRODUCTS[:3]
        for size in ("S", "M", "L")
    ]
    categories: list[dict[str, Any]] = [
        {"external_id": key, "name": name} for key, name in CATEGORIES
    ]
    # Sample data: keep only the attributes the served spec gives each kind of resource.
    samples = {"catalog-item": items, "catalog-variant": variants, "catalog-category": categories}
    for json_type, resources in samples.items():
        known = fake.shape.resources.get(json_type, {})
        for sample in resources:
            for name in [k for k in sample if k not in known]:
                del sample[name]
    hour_ago = now - timedelta(hours=1)
    running: dict[str, Any] = {"status": "queued", "polls_to_complete": POLLS_TO_COMPLETE}
    return {
        "item-update": fake.add_job(
            "item-update", status="complete", items=items, failed=1, created_at=hour_ago
        ),
        "item-update-running": fake.add_job(
            "item-update", total=2400, items=10, failed=3, **running
        ),
        "variant-update": fake.add_job(
            "variant-update", status="complete", items=variants, created_at=hour_ago
        ),
        "variant-update-running": fake.add_job("variant-update", total=900, items=10, **running),
        "variant-update-stuck": fake.add_job("variant-update", status="processing", total=500),
        "category-update": fake.add_job("category-update", status="complete", items=categories),
        "category-update-running": fake.add_job("category-update", total=60, items=3, **running),
    }


def _announce(fake: FakeKlaviyo, examples: dict[str, str], finish_within: float | None) -> None:
    listed = ", ".join(f"{n} {kind}" for kind, n in LISTED.items())
    drains = (
        f"The running {' and '.join(LISTED)} jobs each finish within {finish_within:g} s "
        "of being first listed or fetched."
        if finish_within is not None
        else "The running backlog stays running (--finish-within S lets it finish)."
    )
    lines = [
        f"Fake Klaviyo listening on {fake.base_url} (revision {fake.shape.revision}'s shape)",
        f"API key: {fake.api_key} (the fake's own; it opens nothing else)",
        "",
        "Use it from another shell:",
        f"  export KLAVIYO_BASE_URL={fake.base_url}",
        f"  export KLAVIYO_API_KEY={fake.api_key}",
        "",
        f"Seeded: {listed} jobs, and update jobs with items, variants and categories.",
        drains,
        "Try:",
        "  klaviyo-catalog jobs list item-create --status processing --limit 20",
        f"  klaviyo-catalog jobs get item-update {examples['item-update']} --include",
        f"  klaviyo-catalog jobs wait item-update {examples['item-update-running']}"
        "   # advances at each poll",
        f"  klaviyo-catalog jobs wait variant-update {examples['variant-update-stuck']}"
        " --timeout 5   # never ends: exit 3",
        "Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
