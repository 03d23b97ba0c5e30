"""The Redis sliding-log limiter against a real redis-server: exactness across threads, tasks
and processes (timed by the server's clock), shared pauses and hints, key hygiene."""

from __future__ import annotations

import builtins
import multiprocessing
import os
import random
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
from klaviyo_catalog._ratelimit import DEFAULT_MARGIN, Observation, Rate, RateLimiter, Ticket, Wait
from klaviyo_catalog._redis_ratelimit import RedisNotInstalledError, RedisRateLimiter
from klaviyo_catalog.testing import FakeKlaviyo

from tests.limits.test_ratelimit import assert_exact
from tests.support.redis_server import RedisServer, requires_redis_server, running_redis_server

PROCESSES = 4
RATES = (Rate(10, 0.2), Rate(30, 1.0))
RUN_SECONDS = 1.2


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


def admit(limiter: RedisRateLimiter, account: str, rates: Sequence[Rate], op: str = "op") -> Ticket:
    grant = limiter.try_acquire(account, op, rates)
    assert isinstance(grant, Ticket), grant
    return grant


def wait(limiter: RedisRateLimiter, account: str, rates: Sequence[Rate], op: str = "op") -> float:
    grant = limiter.try_acquire(account, op, rates)
    assert isinstance(grant, Wait), grant
    return grant.seconds


def hammer(limiter: RedisRateLimiter, account: str, seed: int) -> list[float]:
    """Call until the run ends, each request reaching the "server" 0-20 ms after its admission
    and answering 0-20 ms later; the arrival times, on the Redis server's clock."""
    rng = random.Random(seed)
    arrivals: list[float] = []
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        grant = limiter.try_acquire(account, "op", RATES)
        if isinstance(grant, Wait):
            time.sleep(grant.seconds)
            continue
        admitted = time.monotonic()
        time.sleep(rng.uniform(0, 0.02))
        arrivals.append(grant.admitted_at + time.monotonic() - admitted)
        time.sleep(rng.uniform(0, 0.02))
        limiter.complete(grant)
    return arrivals


def process_worker(
    url: str, account: str, seed: int, start: Barrier, results: Queue[list[float]]
) -> None:
    limiter = RedisRateLimiter(url)  # its own connection, as on another host
    start.wait()
    results.put(hammer(limiter, account, seed))


@requires_redis_server
def test_threads_with_latency_never_exceed_any_window_by_arrival(
    limiter: RedisRateLimiter, account: str
) -> None:
    arrivals: list[float] = []
    threads = [
        threading.Thread(target=lambda n=n: arrivals.extend(hammer(limiter, account, n)))
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(arrivals) >= 30
    assert_exact(arrivals, RATES)


@requires_redis_server
def test_processes_share_one_limit_and_never_exceed_it(server: RedisServer, account: str) -> None:
    # spawn, not fork: each process starts clean and makes its own connection.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results: Queue[list[float]] = context.Queue()
    processes = [
        context.Process(target=process_worker, args=(server.url, account, n, start, results))
        for n in range(PROCESSES)
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
    assert_exact([t for times in per_process for t in times], RATES)


@requires_redis_server
def test_a_request_holds_its_slot_until_a_window_after_it_completes(
    limiter: RedisRateLimiter, account: str
) -> None:
    rates = (Rate(2, 0.5),)
    first, second = admit(limiter, account, rates), admit(limiter, account, rates)
    assert second.seq == first.seq + 1
    # Both in flight: nothing frees before a window from now.
    assert wait(limiter, account, rates) == pytest.approx(0.5 + DEFAULT_MARGIN, abs=1e-6)
    limiter.complete(first)
    limiter.complete(second)
    waited = wait(limiter, account, rates)
    assert 0.45 < waited <= 0.5 + DEFAULT_MARGIN
    time.sleep(waited)
    admit(limiter, account, rates)


@requires_redis_server
def test_a_request_lost_in_flight_frees_its_slot_after_stale_after(
    server: RedisServer, account: str
) -> None:
    limiter = RedisRateLimiter(server.url, stale_after=0.2)
    try:
        rates = (Rate(1, 0.1),)
        admit(limiter, account, rates)  # its process "died": never completed
        time.sleep(0.2)
        waited = wait(limiter, account, rates)  # counted as completed at admission + 0.2
        assert 0.0 < waited <= 0.1 + DEFAULT_MARGIN
        time.sleep(waited)
        admit(limiter, account, rates)
    finally:
        limiter.client.close()


@requires_redis_server
def test_a_pause_is_shared_by_every_instance_and_operation_of_the_account(
    server: RedisServer, account: str
) -> None:
    rates = (Rate(100, 1.0),)
    one = RedisRateLimiter(server.url)
    other = RedisRateLimiter(client=redis.Redis(host=server.host, port=server.port))
    try:
        one.pause(account, 0.5)
        for op in ("op1", "op2"):
            grant = other.try_acquire(account, op, rates)
            assert isinstance(grant, Wait) and grant.paused and 0.4 < grant.seconds <= 0.5
        admit(other, uuid.uuid4().hex, rates, "op1")
        other.pause(account, 0.1)  # never shortens
        assert wait(one, account, rates, "op1") > 0.3
        other.pause(account, 2.0)  # extends
        assert wait(one, account, rates, "op1") > 1.5
    finally:
        one.client.close()
        other.client.close()


@requires_redis_server
def test_a_pause_ends_and_consumes_no_quota(limiter: RedisRateLimiter, account: str) -> None:
    rates = (Rate(2, 10.0),)
    limiter.pause(account, 0.2)
    for _ in range(10):
        wait(limiter, account, rates)
    time.sleep(0.2)
    admit(limiter, account, rates)
    admit(limiter, account, rates)
    assert wait(limiter, account, rates) > 9


@requires_redis_server
def test_keys_are_per_account_and_operation(limiter: RedisRateLimiter, account: str) -> None:
    rates = (Rate(1, 10.0),)
    admit(limiter, account, rates, "op1")
    wait(limiter, account, rates, "op1")
    admit(limiter, account, rates, "op2")
    admit(limiter, uuid.uuid4().hex, rates, "op1")


@requires_redis_server
def test_the_servers_budget_seen_by_one_instance_binds_all(
    server: RedisServer, account: str
) -> None:
    rates = (Rate(30, 1.0),)
    one = RedisRateLimiter(server.url)
    other = RedisRateLimiter(server.url)
    try:
        ticket = admit(one, account, rates)
        # Others used 20 of the server's 30: 5 more fit until the window ends.
        one.complete(ticket, Observation(limit=30, remaining=5, reset_seconds=0.6))
        for _ in range(5):
            other.complete(admit(other, account, rates))
        waited = wait(other, account, rates)
        assert 0.5 < waited <= 0.6
        time.sleep(waited)
        admit(other, account, rates)  # the server window reset
    finally:
        one.client.close()
        other.client.close()


@requires_redis_server
def test_an_overtaken_response_does_not_loosen_the_budget(
    limiter: RedisRateLimiter, account: str
) -> None:
    rates = (Rate(10, 0.1), Rate(30, 1.0))
    older, newer = admit(limiter, account, rates), admit(limiter, account, rates)
    limiter.complete(newer, Observation(limit=3, remaining=1, reset_seconds=0.9))
    limiter.complete(older, Observation(limit=3, remaining=2, reset_seconds=0.9))  # stale
    limiter.complete(admit(limiter, account, rates))
    assert 0.8 < wait(limiter, account, rates) <= 0.9


@requires_redis_server
def test_a_forked_child_shares_the_budget(limiter: RedisRateLimiter, account: str) -> None:
    rates = (Rate(2, 10.0),)
    limiter.complete(admit(limiter, account, rates))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            first = limiter.try_acquire(account, "op", rates)
            second = limiter.try_acquire(account, "op", rates)
            code = 0 if isinstance(first, Ticket) and isinstance(second, Wait) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    wait(limiter, account, rates)  # the child's request counts here too


@requires_redis_server
def test_keys_carry_the_prefix_and_account_tag_and_expire(server: RedisServer) -> None:
    limiter = RedisRateLimiter(server.url, prefix="test-prefix", stale_after=1.0)
    try:
        ticket = admit(limiter, "acct-hash", RATES, "get_items_job")
        limiter.complete(ticket, Observation(30, 20, reset_seconds=0.5))
        limiter.pause("acct-hash", 1.0)
        keys = sorted(key.decode() for key in limiter.client.scan_iter("test-prefix:*"))
        assert keys == [  # nothing in flight: Redis drops the empty set
            "test-prefix:{acct-hash}:get_items_job:done",
            "test-prefix:{acct-hash}:get_items_job:state",
            "test-prefix:{acct-hash}:pause",
        ]
        for key in keys:
            assert 0 < limiter.client.pttl(key) <= 2100
    finally:
        limiter.client.close()


@requires_redis_server
def test_the_script_survives_a_script_flush(limiter: RedisRateLimiter, account: str) -> None:
    limiter.complete(admit(limiter, account, RATES))
    limiter.client.script_flush()  # e.g. a restarted server: EVALSHA falls back to loading it
    limiter.complete(admit(limiter, account, RATES))


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


def test_a_redis_that_never_answers_fails_the_round_trip_after_socket_timeout() -> None:
    # redis-py's own default is to wait forever, which would strand the worker thread that
    # runs limiter calls long after the call's deadline has given up on it.
    with socket.socket() as mute:  # accepts connections (the backlog) and never answers
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        limiter = RedisRateLimiter(
            f"redis://127.0.0.1:{mute.getsockname()[1]}/0", socket_timeout=0.2
        )
        started = time.monotonic()
        with pytest.raises(redis.exceptions.TimeoutError):
            limiter.try_acquire("an-account", "get_item_update_job", RATES)
        assert time.monotonic() - started < 5  # redis-py retries a timeout a few times


def test_the_urls_own_socket_timeout_wins_and_a_ready_client_keeps_its_settings() -> None:
    def timeouts(limiter: RedisRateLimiter) -> tuple[object, object]:
        options = limiter.client.connection_pool.connection_kwargs
        return options.get("socket_timeout"), options.get("socket_connect_timeout")

    assert timeouts(RedisRateLimiter("redis://127.0.0.1:9/0")) == (5.0, 5.0)
    assert timeouts(RedisRateLimiter("redis://127.0.0.1:9/0?socket_timeout=0.5"))[0] == 0.5
    ready = redis.Redis(port=9, socket_timeout=7, socket_connect_timeout=8)
    assert timeouts(RedisRateLimiter(client=ready)) == (7, 8)
    with pytest.raises(ValueError, match="socket_timeout"):
        RedisRateLimiter("redis://127.0.0.1:9/0", socket_timeout=0)
