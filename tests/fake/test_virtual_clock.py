"""`klaviyo_catalog.testing.VirtualClock`: an app's client on virtual time, as an app uses it.

Each test attaches the clock to a real client against FakeKlaviyo, and checks that the waits
the client would sleep (retries, Retry-After, polling) pass on the clock, in no real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    CatalogJobs,
    ConfigurationError,
    InvalidRequestError,
    JobStatus,
    MemoryRateLimiter,
    RateLimitError,
)
from klaviyo_catalog.testing import FakeKlaviyo, Fault, VirtualClock

from tests.support.hardening_support import Mode, run_async

# A bound on the real time a test takes, far above a loaded machine's: the virtual waits
# below are each a minute or more.
REAL_SECONDS = 10.0


def on_clock(
    mode: Mode,
    fake: FakeKlaviyo,
    work: Callable[[Any], Any],
    clock: VirtualClock | None = None,
    **options: Any,
) -> Any:
    """`work(kc)` on a client of `mode` with `clock` (a new one if None) attached; (what `work`
    returned, awaited on the async client, and the clock)."""
    clock = VirtualClock() if clock is None else clock
    settings: dict[str, Any] = {
        "base_url": fake.base_url,
        "rate_limiter": MemoryRateLimiter(clock=clock),
        **options,
    }
    if mode == "sync":
        with CatalogJobs(fake.api_key, **settings) as kc:
            clock.attach(kc)
            return work(kc), clock

    async def main() -> Any:
        async with AsyncCatalogJobs(fake.api_key, **settings) as kc:
            clock.attach(kc)
            return await work(kc)

    return run_async(main()), clock


def get_job(job_id: str) -> Callable[[Any], Any]:
    return lambda kc: kc.get_item_update_job(job_id)


def test_a_retry_after_is_waited_on_the_clock(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    job_id = fake_klaviyo.add_job("item-update")
    fake_klaviyo.inject(Fault.rate_limited("45"))
    started = time.monotonic()
    job, clock = on_clock(mode, fake_klaviyo, get_job(job_id))
    assert job.id == job_id
    assert 45.0 <= clock.now - 1000.0 <= 45.0 + 1.0  # Retry-After, plus its jitter
    assert time.monotonic() - started < REAL_SECONDS
    assert [r.status for r in fake_klaviyo.request_log] == [429, 200]


def test_the_deadline_is_kept_on_the_clock(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    job_id = fake_klaviyo.add_job("item-update")
    fake_klaviyo.inject(Fault.rate_limited("20"))
    fake_klaviyo.inject(Fault.rate_limited("20"))
    clock = VirtualClock()
    with pytest.raises(RateLimitError):
        # The first 20 s wait fits the 30 s deadline; the second, with 10 s left, does not.
        on_clock(mode, fake_klaviyo, get_job(job_id), clock=clock, deadline=30)
    assert [r.status for r in fake_klaviyo.request_log] == [429, 429]
    assert 20.0 <= clock.now - 1000.0 <= 21.0  # one wait, on the clock


def test_wait_for_job_polls_on_the_clock(mode: Mode, fake_klaviyo: FakeKlaviyo) -> None:
    job_id = fake_klaviyo.add_job("item-update", status="processing", polls_to_complete=3)
    started = time.monotonic()
    done, clock = on_clock(
        mode,
        fake_klaviyo,
        lambda kc: kc.wait_for_job(
            job_id, kind="item-update", poll_interval=60, max_poll_interval=60, timeout=3600
        ),
    )
    assert done.status is JobStatus.COMPLETE
    assert clock.now - 1000.0 >= 2 * 60  # at least two polls' waits
    assert time.monotonic() - started < REAL_SECONDS


def test_wait_for_jobs_and_with_options_run_on_the_clock(
    mode: Mode, fake_klaviyo: FakeKlaviyo
) -> None:
    ids = fake_klaviyo.add_jobs("variant-create", 3, status="processing", polls_to_complete=2)
    started = time.monotonic()

    def work(kc: Any) -> Any:
        derived = kc.with_options(max_retries=0)  # made after attach: on the clock too
        options: dict[str, Any] = {"poll_interval": 120, "timeout": 7200}
        if isinstance(derived, CatalogJobs):
            running = list(derived.iter_variant_create_jobs(status="processing"))
            return list(derived.wait_for_jobs(running, **options))

        async def main() -> list[Any]:
            running = [job async for job in derived.iter_variant_create_jobs(status="processing")]
            return [job async for job in derived.wait_for_jobs(running, **options)]

        return main()

    finished, clock = on_clock(mode, fake_klaviyo, work)
    assert sorted(job.id for job in finished) == sorted(ids)
    assert {job.status for job in finished} == {JobStatus.COMPLETE}
    assert clock.now - 1000.0 >= 120
    assert time.monotonic() - started < REAL_SECONDS


def test_bad_values_are_typed_errors() -> None:
    clock = VirtualClock(start=0)
    for bad in (-1, float("nan"), float("inf"), "5", True, None):
        with pytest.raises(InvalidRequestError, match="seconds"):
            clock.advance(bad)  # type: ignore[arg-type]
    assert clock() == 0.0
    clock.advance(2.5)
    assert clock() == clock.now == 2.5
    with pytest.raises(ConfigurationError, match="start"):
        VirtualClock(start=float("nan"))
    with pytest.raises(ConfigurationError, match="CatalogJobs"):
        clock.attach(object())  # type: ignore[arg-type]
