"""The in-memory limiter: the in-flight guarantee on a virtual clock, waits, pauses, keys, the
server's budget hint, pruning, fork safety, and exactness under real threads."""

from __future__ import annotations

import asyncio
import math
import os
import random
import threading
import time
from collections.abc import Sequence

import pytest
from klaviyo_catalog._flow import Flow
from klaviyo_catalog._ratelimit import (
    MemoryRateLimiter,
    Observation,
    Rate,
    RateLimiter,
    Ticket,
    Wait,
    account_key,
    default_limiter,
)
from klaviyo_catalog.testing import VirtualClock

from tests.support.hardening_support import run_async
from tests.support.virtual_clock import Simulation, WindowServer, max_in_window, virtual_core


def admit(limiter: MemoryRateLimiter, rates: Sequence[Rate], op: str = "op") -> Ticket:
    grant = limiter.try_acquire("a", op, rates)
    assert isinstance(grant, Ticket), grant
    return grant


def wait(limiter: MemoryRateLimiter, rates: Sequence[Rate], op: str = "op") -> float:
    grant = limiter.try_acquire("a", op, rates)
    assert isinstance(grant, Wait), grant
    return grant.seconds


def assert_exact(times: Sequence[float], rates: Sequence[Rate]) -> None:
    for rate in rates:
        assert max_in_window(times, rate.per_seconds) <= rate.count, rate


# The guarantee: whatever the latency, no window at the server sees more than its count.


def simulate(
    seed: int, rates: Sequence[Rate], tasks: int, calls: int, jitter: float
) -> tuple[WindowServer, float]:
    """`tasks` concurrent callers making `calls` calls each through the core, with up to
    `jitter` seconds between admission and arrival (and as much again on the way back)."""
    clock = VirtualClock()
    rng = random.Random(seed)
    server = WindowServer([(r.count, r.per_seconds) for r in rates])
    core = virtual_core(clock, rate_limits=list(rates))
    sim = Simulation(
        clock,
        server,
        uplink=lambda: rng.uniform(0, jitter),
        downlink=lambda: rng.uniform(0, jitter),
    )

    def caller() -> Flow[None]:
        for _ in range(calls):
            yield from core.get_job("get_item_update_job", "JOB1", None, None)

    started = clock.now
    runs = [sim.start(caller(), at=started + rng.uniform(0, 0.01)) for _ in range(tasks)]
    sim.run()
    assert all(run.done and run.error is None for run in runs)
    return server, clock.now - started


@pytest.mark.parametrize("seed", range(5))
def test_jitter_between_admission_and_arrival_never_trips_a_window(seed: int) -> None:
    rates = (Rate(50, 1.0), Rate(200, 10.0))
    server, _ = simulate(seed, rates, tasks=50, calls=10, jitter=0.06)
    assert server.statuses == [200] * 500
    assert_exact(server.arrivals, rates)


def test_utilisation_stays_near_the_quota_with_jitter() -> None:
    # Burst-bound: a slot turns over every window + round trip (about 1.06 s here).
    rates = (Rate(75, 1.0), Rate(750, 60.0))
    server, elapsed = simulate(0, rates, tasks=50, calls=15, jitter=0.03)
    assert server.statuses == [200] * 750
    assert elapsed < 750 / 75 * 1.08


def test_the_readme_override_runs_at_its_own_rate_beside_klaviyo_headers() -> None:
    # rate_limits=[Rate(10, 1.0)] against Klaviyo's 700/min steady window: the headers describe
    # a window much longer than ours, and must not be mistaken for foreign usage.
    clock = VirtualClock()
    server = WindowServer([(75, 1.0), (700, 60.0)])
    core = virtual_core(clock, rate_limits=[Rate(10, 1.0)])
    rng = random.Random(3)
    sim = Simulation(clock, server, uplink=lambda: rng.uniform(0, 0.02))

    def caller() -> Flow[None]:
        for _ in range(20):
            yield from core.get_job("get_item_update_job", "JOB1", None, None)

    started = clock.now
    runs = [sim.start(caller()) for _ in range(5)]
    sim.run()
    assert all(run.error is None for run in runs)
    assert server.statuses == [200] * 100
    assert clock.now - started < 10.5  # 100 calls at 10/s, not 12 a minute


# The arithmetic, on a fake clock.


def test_a_request_in_flight_holds_its_slot_until_a_window_after_it_completes() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(2, 1.0),)
    first = admit(limiter, rates)
    clock.now = 0.25
    admit(limiter, rates)
    assert wait(limiter, rates) == pytest.approx(1.0)  # both in flight: a window at least
    clock.now = 0.5
    limiter.complete(first)  # its answer arrived at 0.5: the slot frees at 1.5
    assert wait(limiter, rates) == pytest.approx(1.0)
    clock.now = 1.499
    assert wait(limiter, rates) == pytest.approx(0.001)
    clock.now = 1.5
    admit(limiter, rates)
    assert wait(limiter, rates) == pytest.approx(1.0)


def test_a_slot_frees_with_the_oldest_completions() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(3, 1.0),)
    tickets = [admit(limiter, rates) for _ in range(3)]
    for t, ticket in zip((0.1, 0.2, 0.3), tickets, strict=True):
        clock.now = t
        limiter.complete(ticket)
    clock.now = 0.5
    assert wait(limiter, rates) == pytest.approx(0.6)  # 0.1 + 1.0
    clock.now = 1.1
    admit(limiter, rates)
    assert wait(limiter, rates) == pytest.approx(0.1)  # 0.2 + 1.0


def test_the_arithmetic_holds_after_many_completions_have_expired() -> None:
    """Thousands of completions leave the windows (the expired ones are dropped in bulk now
    and then); the windows still count exactly the recent ones."""
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock, prune_every=1e9)
    rates = (Rate(3, 1.0), Rate(100, 60.0))
    for i in range(5_000):  # one every 0.7 s: neither window ever fills
        clock.now = 0.7 * i
        limiter.complete(admit(limiter, rates))
    limiter.complete(admit(limiter, rates))  # the third within a second
    assert wait(limiter, rates) == pytest.approx(0.3)  # the oldest of them is 0.7 s old
    clock.now += 0.31
    admit(limiter, rates)


def test_the_margin_lengthens_every_window() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.01, clock=clock)
    rates = (Rate(1, 1.0),)
    limiter.complete(admit(limiter, rates))
    assert wait(limiter, rates) == pytest.approx(1.01)


def test_both_windows_bind_and_the_longer_wait_wins() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(2, 1.0), Rate(3, 60.0))
    for t in (0.0, 0.0, 1.0):
        clock.now = t
        limiter.complete(admit(limiter, rates))
    clock.now = 1.5
    # The burst window would admit at 2.0; the steady window only at 60.0.
    assert wait(limiter, rates) == pytest.approx(58.5)


def test_a_refused_request_is_not_recorded() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(1, 1.0),)
    limiter.complete(admit(limiter, rates))
    for _ in range(100):
        wait(limiter, rates)
    clock.now = 1.0
    admit(limiter, rates)


def test_changed_rates_keep_the_requests_in_flight_and_the_history() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    for _ in range(3):
        admit(limiter, [Rate(3, 1.0)])
    # A list equal to the old rates, then a larger count: the 3 in flight still count.
    assert wait(limiter, [Rate(3, 1.0)]) == pytest.approx(1.0)
    admit(limiter, (Rate(4, 1.0),))
    assert wait(limiter, (Rate(4, 1.0),)) == pytest.approx(1.0)
    assert wait(limiter, (Rate(2, 1.0),)) == pytest.approx(1.0)  # a lower count binds at once


def test_a_ticket_from_before_a_reset_or_of_another_limiter_is_ignored() -> None:
    limiter = MemoryRateLimiter(clock=VirtualClock(start=0.0))
    limiter.complete(Ticket("a", "op", 1, 0.0))  # nothing in flight: no effect, no error
    admit(limiter, (Rate(1, 1.0),))


# Keys: operations and accounts are independent, pauses are per account.


def test_operations_and_accounts_have_separate_budgets() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(clock=clock)
    rates = (Rate(1, 10.0),)
    admit(limiter, rates, "op1")
    wait(limiter, rates, "op1")
    admit(limiter, rates, "op2")
    assert isinstance(limiter.try_acquire("b", "op1", rates), Ticket)


def test_pause_blocks_every_operation_of_the_account_and_no_other_account() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(clock=clock)
    rates = (Rate(100, 1.0),)
    limiter.pause("a", 2.0)
    assert limiter.try_acquire("a", "op1", rates) == Wait(2.0, paused=True)
    assert limiter.try_acquire("a", "never-used", rates) == Wait(2.0, paused=True)
    assert isinstance(limiter.try_acquire("b", "op1", rates), Ticket)
    clock.now = 1.5
    assert limiter.try_acquire("a", "op1", rates) == Wait(0.5, paused=True)
    clock.now = 2.0
    admit(limiter, rates, "op1")


def test_a_later_pause_extends_and_an_earlier_one_never_shortens() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(clock=clock)
    rates = (Rate(100, 1.0),)
    limiter.pause("a", 5.0)
    limiter.pause("a", 1.0)
    assert wait(limiter, rates) == pytest.approx(5.0)
    clock.now = 1.0
    limiter.pause("a", 10.0)
    assert wait(limiter, rates) == pytest.approx(10.0)
    limiter.pause("a", 0.0)
    assert wait(limiter, rates) == pytest.approx(10.0)


def test_pause_does_not_consume_quota() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(2, 10.0),)
    limiter.pause("a", 1.0)
    for _ in range(10):
        wait(limiter, rates)
    clock.now = 1.0
    admit(limiter, rates)
    admit(limiter, rates)


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
            grant = limiter.try_acquire(account, "op", slow)
            time.sleep(min(grant.seconds, 0.001) if isinstance(grant, Wait) else 0)

    keys = ("paused", "saturated") * 2
    spinners = [threading.Thread(target=spin, args=(key,)) for key in keys]
    for thread in spinners:
        thread.start()

    async def fast_tasks() -> list[Ticket | Wait]:
        async def one() -> Ticket | Wait:
            await asyncio.sleep(0)
            return limiter.try_acquire("free", "op", fast)

        return await asyncio.gather(*(one() for _ in range(200)))

    try:
        started = time.monotonic()
        grants = run_async(fast_tasks())
        grants += [limiter.try_acquire("free", "other-op", fast) for _ in range(200)]
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for thread in spinners:
            thread.join()
    assert all(isinstance(grant, Ticket) for grant in grants)
    assert elapsed < 5.0  # generous: this is about never waiting on the other keys' 30 s


# The server's budget (RateLimit-* headers), everyone's usage included.


def test_the_servers_remaining_budget_binds_until_its_window_resets() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 1.0),)
    ticket = admit(limiter, rates)
    # Others used 20 of the server's 30: 5 more fit until the window ends in 0.6 s.
    limiter.complete(ticket, Observation(limit=30, remaining=5, reset_seconds=0.6))
    for _ in range(5):
        limiter.complete(admit(limiter, rates))
    assert wait(limiter, rates) == pytest.approx(0.6)
    clock.now = 0.6  # the server window reset: our own count applies again
    for _ in range(24):  # 30 less our 6 of the last second
        admit(limiter, rates)
    assert wait(limiter, rates) == pytest.approx(0.4)


def test_our_own_usage_is_never_taken_for_someone_elses() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 1.0),)
    tickets = [admit(limiter, rates) for _ in range(5)]
    for ticket in tickets:  # the server counted exactly ours, in order
        limiter.complete(ticket, Observation(30, 30 - ticket.seq, reset_seconds=0.6))
    for _ in range(25):
        admit(limiter, rates)


def test_while_our_requests_are_in_flight_a_spent_budget_is_rechecked_soon() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 1.0),)
    first, second = admit(limiter, rates), admit(limiter, rates)
    limiter.complete(first, Observation(30, 0, reset_seconds=20.0))
    # `second` may bring a fresher figure: do not sleep the whole 20 s on this one.
    assert wait(limiter, rates) == pytest.approx(0.05)
    limiter.complete(second, Observation(30, 10, reset_seconds=20.0))
    admit(limiter, rates)


def test_a_spent_server_window_stops_the_key_until_its_reset() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 1.0),)
    limiter.complete(admit(limiter, rates), Observation(30, 0, reset_seconds=0.3))
    assert wait(limiter, rates) == pytest.approx(0.3)
    admit(limiter, rates, "other-op")  # limits are per operation
    clock.now = 0.3
    admit(limiter, rates)


def test_a_lower_limit_from_the_server_binds() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(10, 0.1), Rate(30, 1.0))
    limiter.complete(admit(limiter, rates), Observation(limit=3, remaining=2, reset_seconds=0.9))
    admit(limiter, rates)
    admit(limiter, rates)
    assert wait(limiter, rates) == pytest.approx(0.05)  # both in flight: rechecked soon


def test_an_overtaken_response_does_not_loosen_a_fresher_budget() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 1.0),)
    older, newer = admit(limiter, rates), admit(limiter, rates)
    limiter.complete(newer, Observation(30, 9, reset_seconds=0.5))
    limiter.complete(older, Observation(30, 25, reset_seconds=0.5))  # overtaken in flight
    for _ in range(9):
        limiter.complete(admit(limiter, rates))
    assert wait(limiter, rates) == pytest.approx(0.5)


def test_the_next_server_window_replaces_the_budget() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 60.0),)
    limiter.complete(admit(limiter, rates), Observation(30, 0, reset_seconds=1.0))
    clock.now = 1.0
    limiter.complete(admit(limiter, rates), Observation(30, 29, reset_seconds=60.0))
    for _ in range(28):
        limiter.complete(admit(limiter, rates))


def test_the_earliest_window_end_seen_wins() -> None:
    # RateLimit-Reset is rounded up to whole seconds: each answer overestimates the end.
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(30, 60.0),)
    limiter.complete(admit(limiter, rates), Observation(30, 5, reset_seconds=10.0))
    clock.now = 0.7
    limiter.complete(admit(limiter, rates), Observation(30, 0, reset_seconds=10.0))
    assert wait(limiter, rates) == pytest.approx(9.3)  # ends at 10.0, not 10.7


@pytest.mark.parametrize(
    ("limit", "remaining", "reset_seconds"),
    [(0, 0, 1.0), (-1, 0, 1.0), (30, 0, 0.0), (30, 0, -1.0), (30, 0, math.nan), (30, 0, math.inf)],
)
def test_nonsense_headers_are_ignored(limit: int, remaining: int, reset_seconds: float) -> None:
    limiter = MemoryRateLimiter(clock=VirtualClock(start=0.0))
    rates = (Rate(30, 1.0),)
    limiter.complete(admit(limiter, rates), Observation(limit, remaining, reset_seconds))
    admit(limiter, rates)


# Memory and fork.


def test_keys_that_went_quiet_are_pruned_to_nothing() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(clock=clock)
    rates = (Rate(5, 1.0), Rate(50, 60.0))
    for n in range(10_000):
        ticket = limiter.try_acquire(f"account-{n % 100}", f"op-{n}", rates)
        assert isinstance(ticket, Ticket)
        limiter.complete(ticket, Observation(50, 40, reset_seconds=30.0))
    limiter.pause("account-1", 5.0)
    assert len(limiter) == 10_000
    clock.now = 59.0  # within the longest window: everything still counts
    limiter.prune()
    assert len(limiter) == 10_000
    clock.now = 70.0  # past it, and past the next periodic check: pruned by any key's call
    limiter.complete(admit(limiter, rates))
    assert len(limiter) == 1
    clock.now = 131.0
    limiter.prune()
    assert len(limiter) == 0
    assert not limiter._paused_until


def test_a_request_in_flight_is_never_pruned() -> None:
    clock = VirtualClock(start=0.0)
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    rates = (Rate(1, 1.0),)
    ticket = admit(limiter, rates)
    clock.now = 1000.0
    limiter.prune()
    assert wait(limiter, rates) == pytest.approx(1.0)
    limiter.complete(ticket)
    assert wait(limiter, rates) == pytest.approx(1.0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_another_thread_holds_the_lock_does_not_hang() -> None:
    limiter = MemoryRateLimiter()
    rates = (Rate(100, 1.0),)
    in_flight = limiter.try_acquire("a", "op", rates)
    assert isinstance(in_flight, Ticket)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with limiter._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # the child: must not hang on the inherited, held lock
            code = 1
            try:
                grants = [limiter.try_acquire("a", "op", rates) for _ in range(100)]
                # The parent's request in flight counts as completed at the fork.
                code = 0 if sum(isinstance(g, Ticket) for g in grants) == 99 else 2
            finally:
                os._exit(code)
    finally:
        release.set()
        holder.join()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            break
        time.sleep(0.01)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the limiter's lock")
    limiter.complete(in_flight)  # the parent's own budget is untouched by the child


# Exactness under real threads (the lock), briefly.


def test_threads_never_exceed_any_window() -> None:
    limiter = MemoryRateLimiter()
    rates = (Rate(10, 0.1), Rate(25, 0.5))
    admitted: list[float] = []
    enough = 40  # beyond one long window: at least 0.5 s of contention
    deadline = time.monotonic() + 30  # only if the limiter wrongly starves them all

    def worker() -> None:
        while len(admitted) < enough and time.monotonic() < deadline:
            grant = limiter.try_acquire("acct", "op", rates)
            if isinstance(grant, Ticket):
                admitted.append(grant.admitted_at)  # list.append is atomic
                limiter.complete(grant)
            else:
                time.sleep(grant.seconds)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) >= enough
    assert_exact(admitted, rates)


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


def test_no_rates_or_a_bad_margin_is_an_error() -> None:
    with pytest.raises(ValueError):
        MemoryRateLimiter().try_acquire("a", "op", ())
    for margin in (-0.001, math.nan, math.inf):
        with pytest.raises(ValueError):
            MemoryRateLimiter(margin=margin)
        with pytest.raises(ValueError):
            MemoryRateLimiter(prune_every=margin)


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
