"""Rate limiting and retries end to end: the facade against FakeKlaviyo enforcing fixed windows.

Windows are scaled down (fractions of a second) so that the tests stay quick; the algorithm
does not depend on the window length.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    CatalogJobs,
    MemoryRateLimiter,
    Observation,
    Rate,
    RateLimitError,
    Ticket,
    Wait,
)
from klaviyo_catalog.testing import FakeKlaviyo, Fault

from tests.support.hardening_support import Mode, run_async
from tests.support.virtual_clock import max_in_window

WINDOWS = [(5, 0.25), (12, 1.0)]  # burst and steady, scaled down
RATES = [Rate(count, seconds) for count, seconds in WINDOWS]


@pytest.fixture
def fake() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo(rate_limits=WINDOWS) as server:
        yield server


def options(fake: FakeKlaviyo, **overrides: Any) -> dict[str, Any]:
    return {
        "api_key": fake.api_key,
        "base_url": fake.base_url,
        "rate_limits": RATES,
        "rate_limiter": MemoryRateLimiter(),  # a budget of this test's own
        "retry_backoff": 0.01,
        **overrides,
    }


def client(fake: FakeKlaviyo, **overrides: Any) -> CatalogJobs:
    return CatalogJobs(**options(fake, **overrides))


def async_client(fake: FakeKlaviyo, **overrides: Any) -> AsyncCatalogJobs:
    return AsyncCatalogJobs(**options(fake, **overrides))


class RecordingLimiter(MemoryRateLimiter):
    """The default limiter, noting the time at which it admitted each request."""

    def __init__(self) -> None:
        super().__init__()
        self.admitted: list[float] = []

    def try_acquire(self, account: str, operation: str, rates: Sequence[Rate]) -> Ticket | Wait:
        grant = super().try_acquire(account, operation, rates)
        if isinstance(grant, Ticket):
            self.admitted.append(grant.admitted_at)  # list.append is atomic
        return grant


def assert_within_limits(fake: FakeKlaviyo, limiter: RecordingLimiter, requests: int) -> None:
    statuses = [r.status for r in fake.request_log]
    assert statuses.count(200) == requests and 429 not in statuses
    assert len(limiter.admitted) == requests
    for count, seconds in WINDOWS:
        assert max_in_window(limiter.admitted, seconds) <= count


JITTER_WINDOWS = [(5, 0.1), (10, 0.3)]


def test_60ms_of_jitter_between_admission_and_arrival_never_trips_a_window(mode: Mode) -> None:
    # Every request waits 0-60 ms in the fake before it is counted, as on a slow network path.
    with FakeKlaviyo(rate_limits=JITTER_WINDOWS) as fake:
        job_id = fake.add_job("item-update")
        fake.inject_random(1.0, [Fault.delay(ms / 1000) for ms in range(0, 61, 5)], seed=7)
        rates = [Rate(count, seconds) for count, seconds in JITTER_WINDOWS]
        if mode == "async":

            async def burst() -> None:
                async with async_client(fake, rate_limits=rates) as kc:
                    await asyncio.gather(*(kc.get_item_update_job(job_id) for _ in range(40)))

            run_async(burst())
        else:
            with client(fake, rate_limits=rates) as kc:
                threads = [
                    threading.Thread(
                        target=lambda: [kc.get_item_update_job(job_id) for _ in range(5)]
                    )
                    for _ in range(8)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        log = fake.request_log
    assert [r.status for r in log] == [200] * 40
    arrivals = [r.time for r in log]
    for count, seconds in JITTER_WINDOWS:
        assert max_in_window(arrivals, seconds) <= count


def test_eight_threads_sharing_a_client_never_trip_a_window(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("variant-update")
    limiter = RecordingLimiter()
    with client(fake, rate_limiter=limiter) as kc:

        def work() -> None:
            for _ in range(4):
                kc.get_variant_update_job(job_id)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert_within_limits(fake, limiter, 32)


def test_two_clients_with_the_same_key_share_one_budget(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    shared = RecordingLimiter()
    with client(fake, rate_limiter=shared) as a, client(fake, rate_limiter=shared) as b:
        for _ in range(8):
            a.get_item_update_job(job_id)
            b.get_item_update_job(job_id)
    assert_within_limits(fake, shared, 16)


def test_a_persistent_429_makes_exactly_max_retries_plus_one_requests(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    fake.inject(Fault.rate_limited("0"), times=100)
    with client(fake, max_retries=3) as kc, pytest.raises(RateLimitError) as caught:
        kc.get_item_update_job(job_id)
    assert caught.value.retry_after == 0.0
    assert [r.status for r in fake.request_log] == [429] * 4


def test_server_errors_then_success(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    fake.inject(Fault.status(503), times=2)
    with client(fake) as kc:
        assert kc.get_item_update_job(job_id).id == job_id
    assert [r.status for r in fake.request_log] == [503, 503, 200]


def test_a_connection_reset_mid_response_is_retried(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    fake.inject(Fault.reset(mid_body=True))
    with client(fake) as kc:
        assert kc.get_item_update_job(job_id).id == job_id
    assert len(fake.request_log) == 2


def test_each_retry_is_logged_with_reason_and_wait_but_no_key(
    fake: FakeKlaviyo, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = fake.add_job("item-update")
    fake.inject(Fault.status(502))
    caplog.set_level(logging.DEBUG)
    with client(fake) as kc:
        kc.get_item_update_job(job_id)
    retries = [
        r for r in caplog.records if r.name == "klaviyo_catalog" and r.levelno > logging.DEBUG
    ]
    assert len(retries) == 1 and retries[0].levelno == logging.INFO
    message = retries[0].getMessage()
    assert "retry 1 of 4 in" in message and "HTTP 502" in message
    assert fake.api_key not in caplog.text


def test_clients_share_the_process_wide_limiter_by_default(fake: FakeKlaviyo) -> None:
    with (
        CatalogJobs(fake.api_key, base_url=fake.base_url) as a,
        CatalogJobs(fake.api_key, base_url=fake.base_url) as b,
    ):
        # One limiter, keyed by account: the same key means the same budget.
        assert a.rate_limiter is b.rate_limiter
        assert a.account == b.account != fake.api_key


BLOCKS = 0.4  # each call of SlowSharedLimiter; far above a loaded machine's scheduling delays


class SlowSharedLimiter(MemoryRateLimiter):
    """A limiter whose every call blocks on I/O for a while, as a remote one does."""

    blocking_io = True

    def try_acquire(self, account: str, operation: str, rates: Sequence[Rate]) -> Ticket | Wait:
        time.sleep(BLOCKS)
        return super().try_acquire(account, operation, rates)

    def complete(self, ticket: Ticket, observation: Observation | None = None) -> None:
        time.sleep(BLOCKS)
        super().complete(ticket, observation)


def test_a_blocking_limiter_never_blocks_the_event_loop(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")

    async def run() -> float:
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        async with async_client(fake, rate_limiter=SlowSharedLimiter()) as kc:
            await asyncio.gather(*(kc.get_item_update_job(job_id) for _ in range(3)))
        done.set()
        await tick
        return max(gaps)

    # Six blocking limiter calls ran, yet the loop never stalled for anything like one.
    assert run_async(run()) < BLOCKS * 0.75
    assert [r.status for r in fake.request_log] == [200, 200, 200]


def test_a_blocking_limiter_works_from_the_sync_client(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    with client(fake, rate_limiter=SlowSharedLimiter()) as kc:
        assert kc.get_item_update_job(job_id).id == job_id
