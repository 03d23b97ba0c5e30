"""The Redis sliding-log limiter against a real redis-server: exactness across threads, tasks
and processes (timed by the server's clock), shared pauses and hints, key hygiene."""

from __future__ import annotations

import asyncio
import builtins
import multiprocessing
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
import redis
from klaviyo_catalog import CatalogJobs, TransportError
from klaviyo_catalog._ratelimit import DEFAULT_MARGIN, Rate, RateLimiter
from klaviyo_catalog._redis_ratelimit import RedisNotInstalledError, RedisRateLimiter
from klaviyo_catalog.testing import FakeKlaviyo

from tests.redis_server import RedisServer, requires_redis_server, running_redis_server
from tests.test_ratelimit import (
    BURST_AND_STEADY,
    RUN_SECONDS,
    assert_exact,
    assert_throughput,
)

PROCESSES = 4


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with running_redis_server() as running:
        yield running


@pytest.fixture
def limiter(server: RedisServer) -> Iterator[RedisRateLimiter]:
    limiter = RedisRateLimiter(server.url)
    yield limiter
    limiter.client.close()


@pytest.fixture
def account() -> str:
    """A fresh account per test: the server is shared by the module's tests."""
    return uuid.uuid4().hex[:16]


def hammer(limiter: RedisRateLimiter, account: str, rates: Sequence[Rate]) -> list[float]:
    """Acquire until the run ends, sleeping on each wait; the server times of the admissions."""
    admitted: list[float] = []
    deadline = time.monotonic() + RUN_SECONDS + 0.2
    while time.monotonic() < deadline:
        wait, server_time = limiter.try_acquire_timed(account, "op", rates)
        if wait == 0.0:
            admitted.append(server_time)
        else:
            time.sleep(wait)
    return admitted


def process_worker(
    url: str, account: str, rates: Sequence[Rate], start: Barrier, results: Queue[list[float]]
) -> None:
    limiter = RedisRateLimiter(url)  # its own connection, as on another host
    start.wait()
    results.put(hammer(limiter, account, rates))


@requires_redis_server
def test_threads_never_exceed_any_window_by_the_server_clock(
    limiter: RedisRateLimiter, account: str
) -> None:
    admitted: list[float] = []
    threads = [
        threading.Thread(target=lambda: admitted.extend(hammer(limiter, account, BURST_AND_STEADY)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_exact(admitted, BURST_AND_STEADY)
    assert_throughput(admitted, BURST_AND_STEADY, DEFAULT_MARGIN)


@requires_redis_server
def test_asyncio_tasks_never_exceed_any_window_by_the_server_clock(
    limiter: RedisRateLimiter, account: str
) -> None:
    admitted: list[float] = []

    async def worker() -> None:
        deadline = time.monotonic() + RUN_SECONDS + 0.2
        while time.monotonic() < deadline:
            wait, server_time = limiter.try_acquire_timed(account, "op", BURST_AND_STEADY)
            if wait == 0.0:
                admitted.append(server_time)
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(wait)

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(50)))

    asyncio.run(main())
    assert_exact(admitted, BURST_AND_STEADY)
    assert_throughput(admitted, BURST_AND_STEADY, DEFAULT_MARGIN)


@requires_redis_server
def test_processes_share_one_limit_and_never_exceed_it(server: RedisServer, account: str) -> None:
    # spawn, not fork: each process starts clean and makes its own connection.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results: Queue[list[float]] = context.Queue()
    processes = [
        context.Process(
            target=process_worker, args=(server.url, account, BURST_AND_STEADY, start, results)
        )
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        per_process = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    assert all(process.exitcode == 0 for process in processes)
    assert all(per_process), [len(times) for times in per_process]  # every one took part
    admitted = [t for times in per_process for t in times]
    assert_exact(admitted, BURST_AND_STEADY)
    assert_throughput(admitted, BURST_AND_STEADY, DEFAULT_MARGIN)


@requires_redis_server
def test_the_waits_are_exact(limiter: RedisRateLimiter, account: str) -> None:
    rates = (Rate(2, 0.5),)
    first = limiter.try_acquire_timed(account, "op", rates)
    second = limiter.try_acquire_timed(account, "op", rates)
    wait, now = limiter.try_acquire_timed(account, "op", rates)
    assert first[0] == second[0] == 0.0
    assert wait == pytest.approx(first[1] + 0.5 + DEFAULT_MARGIN - now, abs=1e-6)
    time.sleep(wait)
    assert limiter.try_acquire(account, "op", rates) == 0.0


@requires_redis_server
def test_a_pause_is_shared_by_every_instance_and_operation_of_the_account(
    server: RedisServer, account: str
) -> None:
    rates = (Rate(100, 1.0),)
    one = RedisRateLimiter(server.url)
    other = RedisRateLimiter(client=redis.Redis(host=server.host, port=server.port))
    try:
        one.pause(account, 0.5)
        assert 0.4 < other.try_acquire(account, "op1", rates) <= 0.5
        assert 0.4 < other.try_acquire(account, "op2", rates) <= 0.5
        assert other.try_acquire(uuid.uuid4().hex, "op1", rates) == 0.0
        other.pause(account, 0.1)  # never shortens
        assert one.try_acquire(account, "op1", rates) > 0.3
        other.pause(account, 2.0)  # extends
        assert one.try_acquire(account, "op1", rates) > 1.5
    finally:
        one.client.close()
        other.client.close()


@requires_redis_server
def test_a_pause_ends_and_consumes_no_quota(limiter: RedisRateLimiter, account: str) -> None:
    rates = (Rate(2, 10.0),)
    limiter.pause(account, 0.2)
    for _ in range(10):
        assert limiter.try_acquire(account, "op", rates) > 0
    time.sleep(0.2)
    assert limiter.try_acquire(account, "op", rates) == 0.0
    assert limiter.try_acquire(account, "op", rates) == 0.0
    assert limiter.try_acquire(account, "op", rates) > 9


@requires_redis_server
def test_keys_are_per_account_and_operation(limiter: RedisRateLimiter, account: str) -> None:
    rates = (Rate(1, 10.0),)
    assert limiter.try_acquire(account, "op1", rates) == 0.0
    assert limiter.try_acquire(account, "op1", rates) > 0
    assert limiter.try_acquire(account, "op2", rates) == 0.0
    assert limiter.try_acquire(uuid.uuid4().hex, "op1", rates) == 0.0


@requires_redis_server
def test_foreign_usage_seen_by_one_instance_slows_all(server: RedisServer, account: str) -> None:
    rates = (Rate(30, 1.0),)
    one = RedisRateLimiter(server.url)
    other = RedisRateLimiter(server.url)
    try:
        for _ in range(5):
            assert one.try_acquire(account, "op", rates) == 0.0
        # 25 used on the server, 5 of them ours: 20 foreign, so 5 more of ours until reset.
        one.observe(account, "op", limit=30, remaining=5, reset_seconds=0.6)
        assert one.try_acquire(account, "op", rates) == 0.0  # carries the observation
        for _ in range(4):
            assert other.try_acquire(account, "op", rates) == 0.0
        wait = other.try_acquire(account, "op", rates)
        assert 0.5 < wait <= 0.6
        time.sleep(wait)
        assert other.try_acquire(account, "op", rates) == 0.0  # the server window reset
    finally:
        one.client.close()
        other.client.close()


@requires_redis_server
def test_a_lower_server_limit_binds(limiter: RedisRateLimiter, account: str) -> None:
    rates = (Rate(10, 0.1), Rate(30, 1.0))
    assert limiter.try_acquire(account, "op", rates) == 0.0
    limiter.observe(account, "op", limit=3, remaining=2, reset_seconds=0.9)
    assert limiter.try_acquire(account, "op", rates) == 0.0
    assert limiter.try_acquire(account, "op", rates) == 0.0
    assert 0.8 < limiter.try_acquire(account, "op", rates) <= 0.9


@requires_redis_server
def test_an_observation_is_not_lost_while_paused(limiter: RedisRateLimiter, account: str) -> None:
    rates = (Rate(30, 1.0),)
    assert limiter.try_acquire(account, "op", rates) == 0.0
    limiter.pause(account, 0.1)
    limiter.observe(account, "op", limit=30, remaining=0, reset_seconds=0.5)
    assert limiter.try_acquire(account, "op", rates) > 0
    time.sleep(0.1)
    assert limiter.try_acquire(account, "op", rates) > 0.3  # the spent window, not the pause


@requires_redis_server
def test_keys_carry_the_prefix_and_account_tag_and_expire(server: RedisServer) -> None:
    limiter = RedisRateLimiter(server.url, prefix="test-prefix")
    try:
        limiter.try_acquire("acct-hash", "get_items_job", BURST_AND_STEADY)
        limiter.pause("acct-hash", 1.0)
        keys = sorted(key.decode() for key in limiter.client.scan_iter("test-prefix:*"))
        assert keys == [
            "test-prefix:{acct-hash}:get_items_job:1000000",
            "test-prefix:{acct-hash}:get_items_job:200000",
            "test-prefix:{acct-hash}:pause",
        ]
        for key in keys:
            assert 0 < limiter.client.pttl(key) <= 1100
    finally:
        limiter.client.close()


@requires_redis_server
def test_the_script_survives_a_script_flush(limiter: RedisRateLimiter, account: str) -> None:
    assert limiter.try_acquire(account, "op", BURST_AND_STEADY) == 0.0
    limiter.client.script_flush()  # e.g. a restarted server: EVALSHA falls back to loading it
    assert limiter.try_acquire(account, "op", BURST_AND_STEADY) == 0.0


@requires_redis_server
def test_it_satisfies_the_protocol(limiter: RedisRateLimiter) -> None:
    assert isinstance(limiter, RateLimiter)


def test_url_or_client_exactly_one() -> None:
    with pytest.raises(ValueError):
        RedisRateLimiter()
    with pytest.raises(ValueError):
        RedisRateLimiter("redis://localhost", client=redis.Redis())


def test_without_redis_py_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_redis(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "redis" or name.startswith("redis."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_redis)
    with pytest.raises(RedisNotInstalledError, match=r"klaviyo-catalog-jobs\[redis\]") as caught:
        RedisRateLimiter("redis://localhost")
    assert isinstance(caught.value, ImportError)


def test_an_unreachable_redis_is_a_transport_error_of_the_call() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{port}/0")
    with (
        FakeKlaviyo() as fake,
        CatalogJobs(fake.api_key, base_url=fake.base_url, rate_limiter=limiter) as kc,
        pytest.raises(TransportError, match="rate limiter failed"),
    ):
        kc.get_item_update_job(fake.add_job("item-update"))
