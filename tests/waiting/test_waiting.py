"""wait_for_jobs and wait_for_job on a virtual clock: real clients, canned responses, no sleeps.

Every test runs the sync and the async client. The invariants checked throughout: each
tracked job is reported exactly once, never before the simulated server shows it done, and
soon after it is.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import httpx
import pytest
from klaviyo_catalog import (
    BulkJob,
    InvalidRequestError,
    JobStatus,
    NotFoundError,
    Rate,
    WaitProgress,
    WaitTimeoutError,
)
from klaviyo_catalog.testing import VirtualClock

from tests.support.hardening_support import Mode
from tests.support.waiting_sim import Sim, run, status_reply

ITEM_CREATE = "catalog-item-bulk-create-jobs"
VARIANT = "catalog-variant-bulk-update-jobs"
ITEM_UPDATE = "catalog-item-bulk-update-jobs"
CATEGORY = "catalog-category-bulk-update-jobs"


@pytest.fixture
def sim() -> Sim:
    return Sim(VirtualClock())


def check_reports(
    sim: Sim, reported: list[tuple[BulkJob, float]], ids: list[str], slack: float
) -> list[float]:
    """Each id reported once, done, not before it finished, within `slack` after; delays."""
    counts = Counter(job.id for job, _ in reported)
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}
    delays = []
    for job, at in reported:
        sim_job = sim.job(job.id)
        assert job.is_done, job
        assert sim_job.finishes_at is not None and sim_job.finishes_at <= at, (job.id, at)
        delays.append(at - sim_job.finishes_at)
    assert max(delays) <= slack, max(delays)
    return delays


def jobs_of(sim: Sim, ids: list[str]) -> list[BulkJob]:
    return [sim.bulk_job(i) for i in ids]


# --- the common case ----------------------------------------------------------------------------


def test_many_jobs_of_every_kind_are_reported_once_as_they_finish(mode: Mode, sim: Sim) -> None:
    rng = random.Random(7)
    start = sim.clock()
    ids: list[str] = []
    for kind, n in (
        ("item-create", 250),
        ("variant-update", 150),
        ("item-update", 3),
        ("category-update", 2),
    ):
        for i in range(n):
            job_id = f"{kind}-{i}"
            sim.add(kind, job_id, finishes_at=start + rng.uniform(1, 60))
            ids.append(job_id)
    # Other apps' jobs share the lists: running ones and finished ones.
    for i in range(120):
        sim.add("item-create", f"theirs-{i}", owner="them", finishes_at=start + rng.uniform(0, 90))
    progress: list[WaitProgress] = []
    reported = run(
        mode,
        sim,
        lambda kc: kc.wait_for_jobs(
            jobs_of(sim, ids), poll_interval=5, timeout=300, on_progress=progress.append
        ),
    )
    check_reports(sim, reported, ids, slack=5 + 2)
    # A round costs a few pages of the lists, and a GET per other job: far below one request
    # per job per round (405 jobs x 12 rounds, about 4,900).
    assert sim.requests() < 150, sim.requests()
    assert progress[0].done == 0 and progress[0].running == len(ids)
    assert progress[-1].done == len(ids) and progress[-1].running == 0
    assert progress[-1].failed_items == len(ids)  # one failed item per job
    assert [p.done for p in progress] == sorted(p.done for p in progress)


def test_jobs_already_done_are_reported_first_without_a_request(mode: Mode, sim: Sim) -> None:
    sim.add("variant-update", "done", finishes_at=sim.clock() - 1)
    sim.add("variant-update", "running", finishes_at=sim.clock() + 3)
    reported = run(
        mode, sim, lambda kc: kc.wait_for_jobs(jobs_of(sim, ["done", "running"]), poll_interval=2)
    )
    assert [job.id for job, _ in reported] == ["done", "running"]
    first_request = sim.log[0].time
    assert reported[0][1] < first_request


def test_the_same_job_given_twice_is_reported_once(mode: Mode, sim: Sim) -> None:
    sim.add("item-create", "A", finishes_at=sim.clock() + 3)
    job = sim.bulk_job("A")
    reported = run(mode, sim, lambda kc: kc.wait_for_jobs([job, job], poll_interval=2))
    assert [j.id for j, _ in reported] == ["A"]


# --- churn ----------------------------------------------------------------------------------------


def test_a_job_finishing_between_two_pages_of_a_round(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    ids = [f"J{i}" for i in range(250)]
    for job_id in ids:
        sim.add("item-create", job_id, finishes_at=start + 100)
    early, late = sim.job("J150"), sim.job("J10")  # on page 2, and on page 1

    def finish_during_the_walk(sim: Sim, request: httpx.Request, n: int) -> None:
        asks_page_2 = "page%5Bcursor%5D" in str(request.url) or "page[cursor]" in str(request.url)
        if asks_page_2 and early.finishes_at == start + 100:  # the first time only
            early.finishes_at = late.finishes_at = sim.clock()
        return None

    sim.hooks.append(finish_during_the_walk)
    reported = run(mode, sim, lambda kc: kc.wait_for_jobs(jobs_of(sim, ids), poll_interval=5))
    delays = check_reports(sim, reported, ids, slack=5 + 2)
    order = [job.id for job, _ in reported]
    # J150 was gone from page 2: found finished in the same round. J10 had been seen running
    # on page 1: found in the next round, never earlier than it finished.
    assert order[:2] == ["J150", "J10"] or order.index("J150") < order.index("J10")
    assert max(delays) <= 7


def test_offset_cursors_that_skip_a_running_job_never_report_it_early(mode: Mode, sim: Sim) -> None:
    sim.offset_cursors = True  # a departure shifts every later job one place forward
    start = sim.clock()
    ids = [f"J{i}" for i in range(200)]
    for job_id in ids:
        sim.add("variant-update", job_id, finishes_at=start + 50)
    leaver = sim.job("J5")

    def leave_between_pages(sim: Sim, request: httpx.Request, n: int) -> None:
        asks_page_2 = "offset%3A100" in str(request.url) or "offset:100" in str(request.url)
        if asks_page_2 and leaver.finishes_at == start + 50:
            leaver.finishes_at = sim.clock()  # page 2 now starts one job later: J100 skipped
        return None

    sim.hooks.append(leave_between_pages)
    reported = run(mode, sim, lambda kc: kc.wait_for_jobs(jobs_of(sim, ids), poll_interval=5))
    check_reports(sim, reported, ids, slack=5 + 2)  # J100 not reported before t+50


def test_other_apps_jobs_appearing_and_finishing_meanwhile(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    rng = random.Random(3)
    ids = [f"ours-{i}" for i in range(80)]
    for job_id in ids:
        sim.add("item-create", job_id, finishes_at=start + rng.uniform(1, 40))
    counter = iter(range(10_000))

    def other_apps(sim: Sim, request: httpx.Request, n: int) -> None:
        # Each request, another app starts a job that runs a few seconds; some are cancelled.
        i = next(counter)
        final = "cancelled" if i % 3 == 0 else "complete"
        sim.add("item-create", f"theirs-{i}", finishes_at=sim.clock() + 3, final=final)
        return None

    sim.hooks.append(other_apps)
    reported = run(mode, sim, lambda kc: kc.wait_for_jobs(jobs_of(sim, ids), poll_interval=5))
    check_reports(sim, reported, ids, slack=5 + 2)


def test_cancelled_jobs_are_found_in_the_cancelled_list(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    sim.add("item-create", "C", finishes_at=start + 4, final="cancelled")
    sim.add("item-create", "D", finishes_at=start + 4)
    reported = run(mode, sim, lambda kc: kc.wait_for_jobs(jobs_of(sim, ["C", "D"])))
    assert {job.id: job.status for job, _ in reported} == {
        "C": JobStatus.CANCELLED,
        "D": JobStatus.COMPLETE,
    }


def test_a_job_in_no_list_is_polled_by_its_get_and_never_reported(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    sim.add("item-create", "ghost", listed=False)
    sim.add("item-create", "odd", status_override="paused")  # a status unknown to the client
    sim.add("item-create", "real", finishes_at=start + 12)
    with pytest.raises(WaitTimeoutError) as caught:
        run(
            mode,
            sim,
            lambda kc: kc.wait_for_jobs(
                jobs_of(sim, ["ghost", "odd", "real"]), poll_interval=5, timeout=600
            ),
        )
    assert sorted(j.id for j in caught.value.pending) == ["ghost", "odd"]
    assert caught.value.pending[0] is caught.value.job
    # Their GETs say they still run: polled by them (two jobs cost what two list pages would),
    # about two requests a round over the 120 rounds, and never an unfiltered search.
    gets = [r for r in sim.log if not r.is_list]
    assert {r.path.rstrip("/").rsplit("/", 1)[1] for r in gets} == {"ghost", "odd"}
    assert len(sim.log) <= 2 * 120 + 10, len(sim.log)
    assert not [r for r in sim.log if r.is_list and "filter" not in r.query]


def test_a_job_in_no_list_is_reported_once_it_shows_up_done(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    odd = sim.add("item-create", "odd", status_override="paused")
    sim.add("item-create", "real", finishes_at=start + 60)

    def resume(sim: Sim, request: httpx.Request, n: int) -> None:
        if sim.clock() >= start + 30 and odd.status_override == "paused":
            odd.status_override, odd.finishes_at = None, sim.clock()
        return None

    sim.hooks.append(resume)
    progress: list[WaitProgress] = []
    reported = run(
        mode,
        sim,
        lambda kc: kc.wait_for_jobs(
            jobs_of(sim, ["odd", "real"]), poll_interval=5, on_progress=progress.append
        ),
    )
    check_reports(sim, reported, ["odd", "real"], slack=5 + 2)
    assert max(p.missing for p in progress) == 1


def test_a_cursor_that_breaks_mid_round_costs_only_that_round(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    ids = [f"J{i}" for i in range(230)]
    for i, job_id in enumerate(ids):
        sim.add("variant-update", job_id, finishes_at=start + 3 + i % 20)
    broken = iter(range(3))

    def break_cursor(sim: Sim, request: httpx.Request, n: int) -> httpx.Response | None:
        if "cursor" in str(request.url) and next(broken, None) is not None:
            return status_reply(400)  # "Unknown cursor", three times
        return None

    sim.hooks.append(break_cursor)
    reported = run(mode, sim, lambda kc: kc.wait_for_jobs(jobs_of(sim, ids), poll_interval=5))
    check_reports(sim, reported, ids, slack=3 * 5 + 5 + 2)


@pytest.mark.parametrize(
    "link",
    [
        "https://x/api/catalog-variant-bulk-update-jobs?sort=id",  # no cursor in it
        "https://x/api/catalog-variant-bulk-update-jobs?page%5Bcursor%5D=after:0",  # a loop
    ],
)
def test_a_next_link_that_cannot_be_followed_costs_only_that_round(
    mode: Mode, sim: Sim, link: str
) -> None:
    start = sim.clock()
    ids = [f"J{i}" for i in range(250)]
    for i, job_id in enumerate(ids):
        sim.add("variant-update", job_id, finishes_at=start + 3 + i % 30)
    sim.bad_next_links = [link] * 4
    reported = run(mode, sim, lambda kc: kc.wait_for_jobs(jobs_of(sim, ids), poll_interval=5))
    check_reports(sim, reported, ids, slack=4 * 5 + 5 + 2)
    assert sim.bad_next_links == []  # every bad link was served, and survived


def test_429s_and_5xx_in_the_middle(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    rng = random.Random(11)
    ids = []
    for kind in ("item-create", "variant-update", "item-update"):
        for i in range(60 if kind != "item-update" else 5):
            ids.append(f"{kind}-{i}")
            sim.add(kind, ids[-1], finishes_at=start + rng.uniform(1, 40))
    faults = random.Random(5)

    def flaky(sim: Sim, request: httpx.Request, n: int) -> httpx.Response | None:
        roll = faults.random()
        if roll < 0.08:
            return status_reply(429, **{"Retry-After": "1"})
        if roll < 0.25:
            return status_reply(faults.choice([500, 502, 503]))
        return None

    sim.hooks.append(flaky)
    reported = run(
        mode,
        sim,
        lambda kc: kc.wait_for_jobs(jobs_of(sim, ids), poll_interval=5),
        max_retries=1,  # so that some failures outlast the retries
    )
    check_reports(sim, reported, ids, slack=4 * 5 + 2)
    assert any(r.status >= 500 for r in sim.log) and any(r.status == 429 for r in sim.log)


def test_a_poll_that_outlasts_the_call_deadline_only_costs_that_round(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    for job_id in ("A", "B", "C"):
        sim.add("item-update", job_id, finishes_at=start + 10)
    sim.add("item-update", "app", finishes_at=start)

    def call(kc: Any) -> Any:
        # The app's own calls take the whole minute's budget just before the wait starts.
        if hasattr(kc, "aclose"):

            async def go() -> list[str]:
                for _ in range(2):
                    await kc.get_item_update_job("app")
                return [j.id async for j in kc.wait_for_jobs(jobs_of(sim, ["A", "B", "C"]))]

            return go()
        for _ in range(2):
            kc.get_item_update_job("app")
        return [j.id for j in kc.wait_for_jobs(jobs_of(sim, ["A", "B", "C"]))]

    reported = run(mode, sim, call, deadline=1.0, rate_limits=[Rate(2, 60.0)])
    assert sorted(reported) == ["A", "B", "C"]
    assert sim.clock() - start >= 60  # after the minute the app had used up


def test_a_gone_job_raises_not_found(mode: Mode, sim: Sim) -> None:
    sim.add("item-update", "A", finishes_at=None)
    job = sim.bulk_job("A")
    sim.job("A").gone = True
    with pytest.raises(NotFoundError):
        run(mode, sim, lambda kc: kc.wait_for_jobs([job]))


def test_timeout_lists_the_pending_jobs_and_keeps_what_was_reported(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    sim.add("variant-update", "fast", finishes_at=start + 3)
    sim.add("variant-update", "slow", finishes_at=start + 1000)
    sim.add("item-update", "stuck")
    seen: list[str] = []

    def call(kc: Any) -> Any:
        if hasattr(kc, "aclose"):

            async def consume() -> None:
                async for job in kc.wait_for_jobs(jobs, poll_interval=5, timeout=30):
                    seen.append(job.id)

            return consume()
        for job in kc.wait_for_jobs(jobs, poll_interval=5, timeout=30):
            seen.append(job.id)
        return None

    jobs = jobs_of(sim, ["fast", "slow", "stuck"])
    with pytest.raises(WaitTimeoutError, match="2 jobs are still running after 30s") as caught:
        run(mode, sim, call)
    assert seen == ["fast"]
    assert sorted(j.id for j in caught.value.pending) == ["slow", "stuck"]
    assert sim.clock() - start <= 30 + 1


# --- quota ----------------------------------------------------------------------------------------


def test_polling_stays_within_its_share_of_each_limit(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    rng = random.Random(2)
    ids = [f"U{i}" for i in range(120)]
    for job_id in ids:  # one GET each per round: the quota, not the interval, sets the pace
        sim.add("item-update", job_id, finishes_at=start + rng.uniform(1, 300))
    limits = [Rate(10, 1.0), Rate(120, 60.0)]
    reported = run(
        mode,
        sim,
        lambda kc: kc.wait_for_jobs(jobs_of(sim, ids), poll_interval=2, timeout=3600),
        rate_limits=limits,
    )
    check_reports(sim, reported, ids, slack=200)
    assert sim.max_in_window(1.0, ITEM_UPDATE, listing=False) <= 5
    assert sim.max_in_window(60.0, ITEM_UPDATE, listing=False) <= 60


def test_a_larger_share_polls_faster(mode: Mode, sim: Sim) -> None:
    for job_id in ("A", "B"):
        sim.add("item-update", job_id)
    limits = [Rate(60, 60.0)]
    per_minute = {}
    for share in (0.25, 1.0):
        sim.log.clear()
        start = sim.clock()

        def call(kc: Any, share: float = share) -> Any:
            jobs = jobs_of(sim, ["A", "B"])
            return kc.wait_for_jobs(jobs, poll_interval=0.1, timeout=120, quota_share=share)

        with pytest.raises(WaitTimeoutError):
            run(mode, sim, call, rate_limits=limits)
        assert sim.clock() - start >= 120
        # Two jobs, polled through their list: one request a round.
        per_minute[share] = sim.max_in_window(60.0, ITEM_UPDATE, listing=True)
    assert per_minute[0.25] <= 15 < per_minute[1.0] <= 60


def test_bad_arguments_are_refused_before_any_request(mode: Mode, sim: Sim) -> None:
    sim.add("item-update", "A")
    job = sim.bulk_job("A")
    kwargs: dict[str, Any]
    for kwargs in (
        {"poll_interval": 0},
        {"timeout": -1},
        {"quota_share": 0},
        {"quota_share": 1.5},
        {"poll_interval": 5, "max_poll_interval": 1},
    ):

        def call(kc: Any, kw: dict[str, Any] = kwargs) -> Any:
            return kc.wait_for_jobs([job], **kw)

        with pytest.raises(InvalidRequestError):
            run(mode, sim, call)
        if "quota_share" in kwargs:
            continue

        def call_one(kc: Any, kw: dict[str, Any] = kwargs) -> Any:
            return kc.wait_for_job(job, **kw)  # checks its schedule the same way

        with pytest.raises(InvalidRequestError):
            run(mode, sim, call_one)
    with pytest.raises(InvalidRequestError, match="BulkJob"):
        run(mode, sim, lambda kc: kc.wait_for_jobs(["A"]))
    assert sim.log == []


# --- wait_for_job ---------------------------------------------------------------------------------


def test_wait_for_jobs_backs_off_to_max_poll_interval_as_documented(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    sim.add("item-update", "A", finishes_at=start + 40)
    job = sim.bulk_job("A")
    run(mode, sim, lambda kc: kc.wait_for_jobs([job], poll_interval=2, max_poll_interval=8))
    times = [round(r.time - start, 2) for r in sim.log]
    # x1.5 a round from 2 s, then every 8 s until the job is seen done.
    assert times == [2.0, 5.0, 9.5, 16.25, 24.25, 32.25, 40.25]


def test_wait_for_job_polls_an_item_create_job_by_its_get(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    for i in range(150):
        sim.add("item-create", f"other-{i}", finishes_at=start + 500)
    sim.add("item-create", "mine", finishes_at=start + 7)
    done = run(mode, sim, lambda kc: kc.wait_for_job(sim.bulk_job("mine"), poll_interval=2))
    assert done.id == "mine" and done.status is JobStatus.COMPLETE
    assert sim.clock() - start < 7 + 5
    assert all(r.collection == ITEM_CREATE and not r.is_list for r in sim.log)


def test_wait_for_job_backs_off_as_documented(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    sim.add("item-update", "A", finishes_at=start + 100)
    run(mode, sim, lambda kc: kc.wait_for_job(sim.bulk_job("A")))
    times = [round(r.time - start, 2) for r in sim.log]
    assert times[:8] == [2.0, 5.0, 9.5, 16.25, 26.38, 41.56, 64.34, 94.34]
    assert times[8] == 124.34  # then every max_poll_interval (30 s)
    sim.log.clear()
    start = sim.clock()
    sim.add("item-update", "B", finishes_at=start + 10)
    run(
        mode,
        sim,
        lambda kc: kc.wait_for_job(sim.bulk_job("B"), poll_interval=2, max_poll_interval=2),
    )
    assert [round(r.time - start, 2) for r in sim.log] == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_wait_for_job_reports_the_starting_state_and_keeps_include_and_fields(
    mode: Mode, sim: Sim
) -> None:
    from klaviyo_catalog._jsonapi import job_document

    start = sim.clock()
    sim.add("item-update", "A", finishes_at=start + 5)
    resource = sim.job("A").resource(start, slim=False)
    resource["relationships"] = {"items": {"data": [{"type": "catalog-item", "id": "I1"}]}}
    included = [{"type": "catalog-item", "id": "I1", "attributes": {"title": "Shirt"}}]
    job = job_document({"data": resource, "included": included}, sim.job("A").kind, ("items",))
    seen: list[str] = []
    run(
        mode,
        sim,
        lambda kc: kc.wait_for_job(
            job, poll_interval=2, on_progress=lambda j: seen.append(j.status)
        ),
    )
    assert seen == ["processing", "processing", "complete"]  # the start, then polls at 2 s and 5 s
    polls = [r for r in sim.log if not r.is_list]
    assert all(r.query.get("include") == "items" for r in polls)
    assert all(r.query.get("fields[catalog-item]") == "title" for r in polls)
    sim.log.clear()
    sim.add("item-update", "B", finishes_at=sim.clock() + 1)
    run(
        mode,
        sim,
        lambda kc: kc.wait_for_job(
            sim.bulk_job("B"),
            poll_interval=2,
            include=["items"],
            fields={"catalog-item": ["price"]},
        ),
    )
    assert sim.log[-1].query["include"] == "items"
    assert sim.log[-1].query["fields[catalog-item]"] == "price"


def test_wait_for_job_polls_a_variant_update_job_by_its_get(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    for i in range(300):  # three pages of running jobs: one GET is cheaper than the list
        sim.add("variant-update", f"other-{i}", finishes_at=start + 500)
    sim.add("variant-update", "mine", finishes_at=start + 9)
    done = run(mode, sim, lambda kc: kc.wait_for_job(sim.bulk_job("mine"), poll_interval=2))
    assert done.id == "mine" and done.is_done
    # Polls at 2, 5 and 9.5 s: one GET each.
    polls = [(r.is_list, r.path.rstrip("/").rsplit("/", 1)[-1]) for r in sim.log]
    assert polls == [(False, "mine")] * 3


def test_running_jobs_counts_are_updated_while_none_finishes(mode: Mode, sim: Sim) -> None:
    start = sim.clock()
    ids = [f"J{i}" for i in range(150)]
    for job_id in ids:
        sim.add("item-create", job_id, finishes_at=start + 30)
    progress: list[WaitProgress] = []
    run(
        mode,
        sim,
        lambda kc: kc.wait_for_jobs(
            jobs_of(sim, ids), poll_interval=5, on_progress=progress.append
        ),
    )
    # The sim shows running jobs half done: the running lists were read before any finished.
    assert progress[1].completed_items == 150 * 5 and progress[1].done == 0
    assert progress[-1].done == 150
