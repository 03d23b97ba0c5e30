"""The in-memory sliding-log limiter: exactness under concurrency, pauses, isolation, feedback."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Sequence

import pytest
from klaviyo_catalog._ratelimit import (
    DEFAULT_MARGIN,
    MemoryRateLimiter,
    Rate,
    RateLimiter,
    account_key,
    default_limiter,
)

BURST_AND_STEADY = (Rate(10, 0.2), Rate(30, 1.0))
RUN_SECONDS = 2.3  # 8 bursts of 10 under BURST_AND_STEADY, the last 85 ms before the end


# Helpers, also used by test_redis_ratelimit.


def max_in_window(times: Sequence[float], per_seconds: float) -> int:
    """The most admissions any half-open window [t, t + per_seconds) holds."""
    ordered = sorted(times)
    best = 0
    first = 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= per_seconds:
            first += 1
        best = max(best, last - first + 1)
    return best


def assert_exact(times: Sequence[float], rates: Sequence[Rate]) -> None:
    for rate in rates:
        assert max_in_window(times, rate.per_seconds) <= rate.count, rate


def ideal_admissions(rates: Sequence[Rate], duration: float, margin: float) -> int:
    """How many admissions a perfect sliding log with this margin makes in [0, duration)."""
    times: list[float] = []
    t = 0.0
    while True:
        wait = 0.0
        for rate in rates:
            if len(times) >= rate.count:
                wait = max(wait, times[-rate.count] + rate.per_seconds + margin - t)
        t += wait
        if t >= duration:
            return len(times)
        times.append(t)


def assert_throughput(times: Sequence[float], rates: Sequence[Rate], margin: float) -> None:
    start = min(times)
    within = sum(1 for t in times if t - start < RUN_SECONDS)
    ideal = ideal_admissions(rates, RUN_SECONDS, margin)
    assert within >= 0.85 * ideal, (within, ideal)


class RecordingClock:
    """time.monotonic, remembering per thread the reading of the latest try_acquire.

    The limiter reads its clock once per try_acquire, under its lock: after an admission this
    is the exact timestamp it logged, which a reading taken after the call would not be.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self) -> float:
        now = time.monotonic()
        self._local.last = now
        return now

    @property
    def last(self) -> float:
        last: float = self._local.last
        return last


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# Exactness and throughput under concurrency.


def hammer_with_threads(
    limiter: MemoryRateLimiter, clock: RecordingClock, rates: Sequence[Rate], threads: int
) -> list[float]:
    admitted: list[float] = []
    start = threading.Barrier(threads)
    deadline = time.monotonic() + RUN_SECONDS + 0.2

    def worker() -> None:
        start.wait()
        while time.monotonic() < deadline:
            wait = limiter.try_acquire("acct", "op", rates)
            if wait == 0.0:
                admitted.append(clock.last)  # list.append is atomic
            else:
                time.sleep(wait)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return admitted


async def hammer_with_tasks(
    limiter: MemoryRateLimiter, clock: RecordingClock, rates: Sequence[Rate], tasks: int
) -> list[float]:
    admitted: list[float] = []
    deadline = time.monotonic() + RUN_SECONDS + 0.2

    async def worker() -> None:
        while time.monotonic() < deadline:
            wait = limiter.try_acquire("acct", "op", rates)
            if wait == 0.0:
                admitted.append(clock.last)
                await asyncio.sleep(0)  # let the others in, as a real request would
            else:
                await asyncio.sleep(wait)

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return admitted


def test_threads_never_exceed_any_window_and_use_nearly_all_of_it() -> None:
    clock = RecordingClock()
    limiter = MemoryRateLimiter(clock=clock)
    admitted = hammer_with_threads(limiter, clock, BURST_AND_STEADY, threads=8)
    assert_exact(admitted, BURST_AND_STEADY)
    assert_throughput(admitted, BURST_AND_STEADY, DEFAULT_MARGIN)


def test_asyncio_tasks_never_exceed_any_window_and_use_nearly_all_of_it() -> None:
    clock = RecordingClock()
    limiter = MemoryRateLimiter(clock=clock)
    admitted = asyncio.run(hammer_with_tasks(limiter, clock, BURST_AND_STEADY, tasks=50))
    assert_exact(admitted, BURST_AND_STEADY)
    assert_throughput(admitted, BURST_AND_STEADY, DEFAULT_MARGIN)


def test_threads_and_tasks_together_share_one_budget() -> None:
    clock = RecordingClock()
    limiter = MemoryRateLimiter(clock=clock)
    from_tasks: list[float] = []
    thread = threading.Thread(
        target=lambda: from_tasks.extend(
            asyncio.run(hammer_with_tasks(limiter, clock, BURST_AND_STEADY, tasks=20))
        )
    )
    thread.start()
    from_threads = hammer_with_threads(limiter, clock, BURST_AND_STEADY, threads=4)
    thread.join()
    assert from_tasks
    assert from_threads
    assert_exact(from_tasks + from_threads, BURST_AND_STEADY)


# The arithmetic, on a fake clock.


def test_waits_until_the_oldest_relevant_admission_leaves_the_window() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(2, 1.0),)
    assert limiter.try_acquire("a", "op", rates) == 0.0
    clock.now = 0.25
    assert limiter.try_acquire("a", "op", rates) == 0.0
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(0.75)
    clock.now = 0.999
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(0.001)
    clock.now = 1.0  # the first admission has left [0.0, 1.0)
    assert limiter.try_acquire("a", "op", rates) == 0.0
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(0.25)


def test_the_margin_lengthens_every_window() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.01, clock=clock)
    rates = (Rate(1, 1.0),)
    assert limiter.try_acquire("a", "op", rates) == 0.0
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(1.01)
    clock.now = 1.0
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(0.01)


def test_both_windows_bind_and_the_longer_wait_wins() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(2, 1.0), Rate(3, 60.0))
    for t in (0.0, 0.0, 1.0):
        clock.now = t
        assert limiter.try_acquire("a", "op", rates) == 0.0
    clock.now = 1.5
    # The burst window would admit at 2.0; the steady window only at 60.0.
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(58.5)


def test_a_refused_request_is_not_recorded() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(1, 1.0),)
    assert limiter.try_acquire("a", "op", rates) == 0.0
    for _ in range(100):
        assert limiter.try_acquire("a", "op", rates) > 0
    clock.now = 1.0
    assert limiter.try_acquire("a", "op", rates) == 0.0


def test_changed_rates_keep_the_history() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    for _ in range(3):
        assert limiter.try_acquire("a", "op", [Rate(3, 1.0)]) == 0.0
    # A list equal to the old rates, then a larger count: the 3 admissions still count.
    assert limiter.try_acquire("a", "op", [Rate(3, 1.0)]) == pytest.approx(1.0)
    assert limiter.try_acquire("a", "op", (Rate(4, 1.0),)) == 0.0
    assert limiter.try_acquire("a", "op", (Rate(4, 1.0),)) == pytest.approx(1.0)
    # A lower count binds at once.
    assert limiter.try_acquire("a", "op", (Rate(2, 1.0),)) == pytest.approx(1.0)


# Keys: operations and accounts are independent, pauses are per account.


def test_operations_and_accounts_have_separate_budgets() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    rates = (Rate(1, 10.0),)
    assert limiter.try_acquire("a", "op1", rates) == 0.0
    assert limiter.try_acquire("a", "op1", rates) > 0
    assert limiter.try_acquire("a", "op2", rates) == 0.0
    assert limiter.try_acquire("b", "op1", rates) == 0.0


def test_pause_blocks_every_operation_of_the_account_and_no_other_account() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    rates = (Rate(100, 1.0),)
    limiter.pause("a", 2.0)
    assert limiter.try_acquire("a", "op1", rates) == pytest.approx(2.0)
    assert limiter.try_acquire("a", "never-used", rates) == pytest.approx(2.0)
    assert limiter.try_acquire("b", "op1", rates) == 0.0
    clock.now = 1.5
    assert limiter.try_acquire("a", "op1", rates) == pytest.approx(0.5)
    clock.now = 2.0
    assert limiter.try_acquire("a", "op1", rates) == 0.0


def test_a_later_pause_extends_and_an_earlier_one_never_shortens() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    rates = (Rate(100, 1.0),)
    limiter.pause("a", 5.0)
    limiter.pause("a", 1.0)
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(5.0)
    clock.now = 1.0
    limiter.pause("a", 10.0)
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(10.0)
    limiter.pause("a", 0.0)
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(10.0)


def test_pause_does_not_consume_quota() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(2, 10.0),)
    limiter.pause("a", 1.0)
    for _ in range(10):
        assert limiter.try_acquire("a", "op", rates) > 0
    clock.now = 1.0
    assert limiter.try_acquire("a", "op", rates) == 0.0
    assert limiter.try_acquire("a", "op", rates) == 0.0


def test_a_paused_and_a_saturated_key_never_stall_another_key() -> None:
    limiter = MemoryRateLimiter()
    slow = (Rate(1, 30.0),)
    fast = (Rate(1000, 1.0),)
    limiter.pause("paused", 30.0)
    limiter.try_acquire("saturated", "op", slow)
    stop = threading.Event()

    def spin(account: str) -> None:
        # Waiters on other keys retry as fast as they can, at most 1 ms between attempts.
        while not stop.is_set():
            time.sleep(min(limiter.try_acquire(account, "op", slow), 0.001))

    keys = ("paused", "saturated") * 2
    spinners = [threading.Thread(target=spin, args=(key,)) for key in keys]
    for thread in spinners:
        thread.start()

    async def fast_tasks() -> list[float]:
        async def one() -> float:
            await asyncio.sleep(0)
            return limiter.try_acquire("free", "op", fast)

        return await asyncio.gather(*(one() for _ in range(200)))

    try:
        started = time.monotonic()
        waits = asyncio.run(fast_tasks())
        waits += [limiter.try_acquire("free", "other-op", fast) for _ in range(200)]
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for thread in spinners:
            thread.join()
    assert waits == [0.0] * 400
    assert elapsed < 5.0  # generous: this is about never waiting on the other keys' 30 s


# Adaptive slowing from RateLimit-* headers.


def test_foreign_usage_reported_by_the_server_lowers_our_count_until_reset() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 1.0),)
    for _ in range(5):
        assert limiter.try_acquire("a", "op", rates) == 0.0
    # The server window ends at 0.6 and has 25 used: 5 of ours, so 20 someone else's.
    limiter.observe("a", "op", limit=30, remaining=5, reset_seconds=0.6)
    for _ in range(5):
        assert limiter.try_acquire("a", "op", rates) == 0.0
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(0.6)
    clock.now = 0.6  # the server window reset: the full count applies again
    for _ in range(20):
        assert limiter.try_acquire("a", "op", rates) == 0.0
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(0.4)


def test_without_foreign_usage_observe_changes_nothing() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 1.0),)
    for _ in range(5):
        limiter.try_acquire("a", "op", rates)
    limiter.observe("a", "op", limit=30, remaining=25, reset_seconds=0.6)
    for _ in range(25):
        assert limiter.try_acquire("a", "op", rates) == 0.0
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(1.0)


def test_a_spent_server_window_pauses_the_key_until_its_reset() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 1.0),)
    limiter.try_acquire("a", "op", rates)
    limiter.observe("a", "op", limit=30, remaining=0, reset_seconds=0.3)
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(0.3)
    assert limiter.try_acquire("a", "other-op", rates) == 0.0  # limits are per operation
    clock.now = 0.3
    assert limiter.try_acquire("a", "op", rates) == 0.0


def test_a_lower_limit_from_the_server_binds() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(10, 0.1), Rate(30, 1.0))
    limiter.try_acquire("a", "op", rates)
    limiter.observe("a", "op", limit=3, remaining=2, reset_seconds=0.9)
    assert limiter.try_acquire("a", "op", rates) == 0.0
    assert limiter.try_acquire("a", "op", rates) == 0.0
    assert limiter.try_acquire("a", "op", rates) == pytest.approx(0.9)


def test_a_stale_response_does_not_undo_a_higher_foreign_estimate() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 1.0),)
    limiter.try_acquire("a", "op", rates)
    limiter.observe("a", "op", limit=30, remaining=9, reset_seconds=0.5)  # 20 foreign
    limiter.observe("a", "op", limit=30, remaining=25, reset_seconds=0.5)  # overtaken, older
    for _ in range(9):
        assert limiter.try_acquire("a", "op", rates) == 0.0
    assert limiter.try_acquire("a", "op", rates) > 0


def test_the_next_server_window_replaces_the_estimate() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 60.0),)
    limiter.try_acquire("a", "op", rates)
    limiter.observe("a", "op", limit=30, remaining=9, reset_seconds=1.0)
    clock.now = 0.9  # a Reset rounded up: the server's window has already turned over
    limiter.observe("a", "op", limit=30, remaining=30, reset_seconds=60.0)
    for _ in range(29):
        assert limiter.try_acquire("a", "op", rates) == 0.0


@pytest.mark.parametrize(
    ("limit", "remaining", "reset_seconds"),
    [(0, 0, 1.0), (-1, 0, 1.0), (30, 0, 0.0), (30, 0, -1.0), (30, 0, math.nan), (30, 0, math.inf)],
)
def test_nonsense_headers_are_ignored(limit: int, remaining: int, reset_seconds: float) -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())
    rates = (Rate(30, 1.0),)
    limiter.try_acquire("a", "op", rates)
    limiter.observe("a", "op", limit, remaining, reset_seconds)
    assert limiter.try_acquire("a", "op", rates) == 0.0


def test_observe_before_any_request_is_a_no_op() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())
    limiter.observe("a", "op", limit=30, remaining=0, reset_seconds=10.0)
    assert limiter.try_acquire("a", "op", (Rate(30, 1.0),)) == 0.0


# Validation and the small helpers.


@pytest.mark.parametrize(
    ("count", "per_seconds"),
    [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -1.0), (1, math.nan), (1, math.inf), (True, 1.0)],
)
def test_a_rate_must_be_positive_and_finite(count: int, per_seconds: float) -> None:
    with pytest.raises(ValueError):
        Rate(count, per_seconds)


def test_a_rate_count_must_be_an_int() -> None:
    with pytest.raises(ValueError):
        Rate(1.5, 1.0)  # type: ignore[arg-type]


def test_rate_per_seconds_is_a_float() -> None:
    assert Rate(3, 1) == Rate(3, 1.0)
    assert isinstance(Rate(3, 1).per_seconds, float)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("350/s", Rate(350, 1.0)),
        ("3500/m", Rate(3500, 60.0)),
        (" 75 / min ", Rate(75, 60.0)),
        ("10/5s", Rate(10, 5.0)),
        ("1000/d", Rate(1000, 86400.0)),
    ],
)
def test_rate_parse(text: str, rate: Rate) -> None:
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["", "350", "350/x", "/s", "0/s", "3.5/s"])
def test_rate_parse_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_no_rates_or_a_bad_margin_is_an_error() -> None:
    with pytest.raises(ValueError):
        MemoryRateLimiter().try_acquire("a", "op", ())
    for margin in (-0.001, math.nan, math.inf):
        with pytest.raises(ValueError):
            MemoryRateLimiter(margin=margin)


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
def test_a_bad_pause_is_an_error(seconds: float) -> None:
    with pytest.raises(ValueError):
        MemoryRateLimiter().pause("a", seconds)


def test_account_key_is_a_short_stable_digest() -> None:
    key = account_key("pk_secret_1234567890")
    assert key == account_key("pk_secret_1234567890")
    assert key != account_key("pk_secret_1234567891")
    assert len(key) == 16
    assert int(key, 16) >= 0
    assert "secret" not in key


def test_the_default_limiter_is_shared_and_satisfies_the_protocol() -> None:
    assert default_limiter() is default_limiter()
    assert isinstance(default_limiter(), MemoryRateLimiter)
    assert isinstance(default_limiter(), RateLimiter)
