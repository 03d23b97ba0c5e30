"""wait_for_jobs against FakeKlaviyo over loopback HTTP, with jobs finishing on their own.

The logic is tested on a virtual clock (test_waiting.py); these few check the real wire and
the fake's time-driven jobs, in about a second each.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    BulkJob,
    CatalogJobs,
    JobStatus,
    MemoryRateLimiter,
    WaitProgress,
)
from klaviyo_catalog.testing import FakeKlaviyo

from tests.support.hardening_support import run_async


@pytest.fixture
def fake() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo() as server:
        yield server


def test_a_job_given_a_finish_time_progresses_on_its_own(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("variant-update", status="queued", total=10)
    before = time.monotonic()
    finishes = fake.finish_in(job_id, 2.0)
    assert before + 2.0 <= finishes <= time.monotonic() + 2.0
    with CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
        time.sleep(0.5)  # well inside the 2 s, even on a loaded machine
        halfway = kc.get_variant_update_job(job_id)
        assert halfway.status is JobStatus.PROCESSING and 0 < halfway.completed_count < 10
        time.sleep(max(0.0, finishes - time.monotonic()))
        done = kc.get_variant_update_job(job_id)
    assert done.status is JobStatus.COMPLETE and done.completed_count == 10


def test_finish_randomly_is_reproducible_and_spares_finished_jobs(fake: FakeKlaviyo) -> None:
    done = fake.add_job("item-create", status="complete")
    running = fake.add_jobs("item-create", 20, status="processing")
    first = fake.finish_randomly(10.0, seed=4)
    assert sorted(first) == sorted(running) and done not in first
    spans = sorted(at - time.monotonic() for at in first.values())
    assert spans[0] >= 0 and spans[-1] <= 10.0 and spans[-1] - spans[0] > 2.0
    again = FakeKlaviyo()
    ids = again.add_jobs("item-create", 20, status="processing")
    second = again.finish_randomly(10.0, seed=4)
    offsets = [second[i] - min(second.values()) for i in ids]
    expected = [first[i] - min(first.values()) for i in running]
    assert offsets == pytest.approx(expected, abs=0.01)


def seed(fake: FakeKlaviyo) -> tuple[list[str], dict[str, float]]:
    ids = [
        *fake.add_jobs("item-create", 150, status="processing"),
        *fake.add_jobs("variant-update", 120, status="queued"),
        *fake.add_jobs("item-update", 2, status="processing"),
    ]
    ids += [fake.add_job("category-update", status="processing", job_id="CAT-1")]
    fake.add_jobs("item-create", 30, status="complete")  # an older, finished backlog
    return ids, fake.finish_randomly(1.5, seed=1, job_ids=ids)


def jobs(kc: CatalogJobs, ids: list[str]) -> list[BulkJob]:
    """The jobs as an app holds them: from the lists, or from their GET."""
    listed = {j.id: j for j in kc.iter_item_create_jobs()} | {
        j.id: j for j in kc.iter_variant_update_jobs()
    }
    held = [listed[i] for i in ids if i in listed]
    held += [kc.get_item_update_job(i) for i in ids if i not in listed and i != "CAT-1"]
    return [*held, kc.get_category_update_job("CAT-1")]


def check(reported: list[tuple[BulkJob, float]], finishes: dict[str, float]) -> None:
    assert Counter(job.id for job, _ in reported) == Counter(list(finishes))
    for job, at in reported:
        assert job.is_done and at >= finishes[job.id]
        # An interval, plus a round on loopback; generous, as a loaded machine may be slow to
        # schedule it (test_waiting.py holds the exact bounds, on a virtual clock).
        assert at - finishes[job.id] <= 0.25 + 2.5


def test_sync_wait_for_jobs_on_the_fake(fake: FakeKlaviyo) -> None:
    ids, finishes = seed(fake)
    progress: list[WaitProgress] = []
    with CatalogJobs(fake.api_key, base_url=fake.base_url, rate_limiter=MemoryRateLimiter()) as kc:
        given = jobs(kc, ids)
        fake.reset_log()
        reported = [
            (job, time.monotonic())
            for job in kc.wait_for_jobs(given, poll_interval=0.25, on_progress=progress.append)
        ]
    check(reported, finishes)
    # Per-job polling every 0.25 s for 1.5 s would be ~6 requests a job, ~1,600 in all.
    assert len(fake.request_log) < 200
    assert progress[-1].done == len(ids) and progress[-1].running == 0
    assert all(r.status == 200 for r in fake.request_log)


def test_async_wait_for_jobs_on_the_fake(fake: FakeKlaviyo) -> None:
    ids, finishes = seed(fake)
    with CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
        given = jobs(kc, ids)

    async def main() -> list[tuple[BulkJob, float]]:
        limiter = MemoryRateLimiter()
        async with AsyncCatalogJobs(
            fake.api_key, base_url=fake.base_url, rate_limiter=limiter
        ) as kc:
            return [
                (job, time.monotonic()) async for job in kc.wait_for_jobs(given, poll_interval=0.25)
            ]

    check(run_async(main()), finishes)


def test_wait_for_job_on_an_item_create_job_of_the_fake(fake: FakeKlaviyo) -> None:
    fake.add_jobs("item-create", 120, status="processing")
    mine = fake.add_job("item-create", status="processing")
    with CatalogJobs(fake.api_key, base_url=fake.base_url, rate_limiter=MemoryRateLimiter()) as kc:
        (job,) = [j for j in kc.iter_item_create_jobs(status="processing") if j.id == mine]
        fake.finish_in(mine, 0.3)
        done = kc.wait_for_job(job, poll_interval=0.1, max_poll_interval=0.1, timeout=10)
    assert done.id == mine and done.status is JobStatus.COMPLETE
