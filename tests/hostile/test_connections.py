"""Connections: a forked child gets its own, a response must be for the job asked for, a second
event loop gets its own pool, and 500 tasks queue in the client instead of churning the pool."""

from __future__ import annotations

import asyncio
import functools
import os
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpcore
import httpx
import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    CatalogJobs,
    ConfigurationError,
    InvalidResponseError,
    MemoryRateLimiter,
    Rate,
)
from klaviyo_catalog._transport import AsyncOwnTransport
from klaviyo_catalog.testing import FakeKlaviyo, Fault

from tests.support.documents import job_body
from tests.support.hardening_support import Mode, call, run_async

FAST: dict[str, Any] = {"rate_limiter": MemoryRateLimiter(), "rate_limits": [Rate(10**6, 1.0)]}


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    """A fake with no rate limits; it keeps connections alive and counts them."""
    return make_fake(rate_limits=None)


def options(fake: FakeKlaviyo, *job_ids: str, **overrides: Any) -> dict[str, Any]:
    """Client options for `fake`, which gets an item-update job of each of `job_ids`."""
    for job_id in job_ids:
        fake.add_job("item-update", job_id=job_id)
    return {
        "api_key": fake.api_key,
        "base_url": fake.base_url,
        "rate_limiter": MemoryRateLimiter(),
        "rate_limits": [Rate(1_000_000, 1.0)],
        **overrides,
    }


def asked_for(fake: FakeKlaviyo, job_id: str) -> int:
    """How many requests the fake had for job `job_id`."""
    return sum(
        record.path.endswith(f"/{job_id}/") or record.path.endswith(f"/{job_id}")
        for record in fake.request_log
    )


def in_child(work: Any) -> str:
    """Run `work()` (returning text) in a forked child; its result or its error, as text."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's cleanup
        try:
            os.write(write, str(work()).encode())
        except BaseException as exc:
            os.write(write, f"error: {type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    return said


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_client_built_before_fork_gets_fresh_connections_in_the_child(fake: FakeKlaviyo) -> None:
    with CatalogJobs(**options(fake, "PARENT-1", "CHILD", "PARENT-2")) as kc:
        assert kc.get_item_update_job("PARENT-1").id == "PARENT-1"
        assert fake.connections == 1  # now pooled, and inherited by the child
        said = in_child(lambda: kc.get_item_update_job("CHILD").id)
        assert kc.get_item_update_job("PARENT-2").id == "PARENT-2"
    assert said == "CHILD"
    # The child opened its own; the parent still had its pooled one.
    assert fake.connections == 2
    assert asked_for(fake, "CHILD") == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_an_async_client_built_before_fork_gets_fresh_connections_in_the_child(
    fake: FakeKlaviyo,
) -> None:
    kc = AsyncCatalogJobs(**options(fake, "PARENT-1", "CHILD", "PARENT-2"))

    async def get(job_id: str) -> str:
        return (await kc.get_item_update_job(job_id)).id

    async def twice() -> list[str]:
        first = await get("PARENT-1")
        said = in_child(lambda: run_async(get("CHILD")))
        return [first, said, await get("PARENT-2")]

    assert run_async(twice()) == ["PARENT-1", "CHILD", "PARENT-2"]
    assert fake.connections == 2


def test_a_response_for_another_job_is_an_invalid_response(mode: Mode, fake: FakeKlaviyo) -> None:
    # What two processes reading one inherited socket got: each other's jobs.
    client_options = options(fake, "MINE")
    fake.inject(Fault.body(200, job_body("SOMEONE-ELSES")))
    with pytest.raises(InvalidResponseError, match="asked for job 'MINE', got job"):
        call(mode, client_options, "get_item_update_job", "MINE")


def test_an_async_client_works_under_a_second_event_loop(fake: FakeKlaviyo) -> None:
    kc = AsyncCatalogJobs(**options(fake, "J0", "J1", "J2"))
    for n in range(3):  # each run_async() closes its loop, and the connections with it
        assert run_async(kc.get_item_update_job(f"J{n}")).id == f"J{n}"
    run_async(kc.aclose())


def test_a_derived_client_follows_its_origins_pool_under_a_second_event_loop(
    fake: FakeKlaviyo,
) -> None:
    kc = AsyncCatalogJobs(**options(fake, "J0", "J1", "J2", "J3"))
    slow = kc.with_options(timeout=60)
    assert run_async(kc.get_item_update_job("J0")).id == "J0"
    for n in (1, 2):  # each loop closes; its connections cannot serve the next one
        assert run_async(slow.get_item_update_job(f"J{n}")).id == f"J{n}"
    assert run_async(kc.get_item_update_job("J3")).id == "J3"
    run_async(kc.aclose())


def test_a_closed_async_client_stays_closed_under_another_event_loop(fake: FakeKlaviyo) -> None:
    kc = AsyncCatalogJobs(**options(fake, "J1"))
    assert run_async(kc.get_item_update_job("J1")).id == "J1"
    run_async(kc.aclose())
    with pytest.raises(ConfigurationError, match="the client is closed"):
        run_async(kc.get_item_update_job("J1"))
    assert fake.connections == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_derived_client_gets_fresh_connections_in_a_forked_child(fake: FakeKlaviyo) -> None:
    with CatalogJobs(**options(fake, "PARENT-1", "CHILD", "PARENT-2")) as kc:
        slow = kc.with_options(timeout=60)
        assert slow.get_item_update_job("PARENT-1").id == "PARENT-1"
        said = in_child(lambda: slow.get_item_update_job("CHILD").id)
        assert kc.get_item_update_job("PARENT-2").id == "PARENT-2"
        assert slow.get_item_update_job("PARENT-2").id == "PARENT-2"
    assert said == "CHILD"
    assert fake.connections == 2  # the parent's, and the child's own
    assert asked_for(fake, "CHILD") == 1


def test_an_apps_async_client_used_under_a_closed_loop_is_a_configuration_error(
    fake: FakeKlaviyo,
) -> None:
    app_client = httpx.AsyncClient()
    kc = AsyncCatalogJobs(http_client=app_client, **options(fake, "J1", "J2"))
    assert run_async(kc.get_item_update_job("J1")).id == "J1"
    with pytest.raises(ConfigurationError, match="event loop") as caught:
        run_async(kc.get_item_update_job("J2"))
    assert isinstance(caught.value.__cause__, RuntimeError)


class InMemoryNetwork(httpcore.AsyncNetworkBackend):
    """Connections that answer every request for a job with that job, after a millisecond of
    "network", without sockets: 500 tasks' worth of calls in a fraction of a second."""

    def __init__(self) -> None:
        self.connections = 0  # opened
        self.open = 0
        # The most open at once: on a loaded machine the pool may retire a connection idle for
        # longer than httpx's keep-alive expiry and open another, but never exceeds its size.
        self.peak = 0

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.connections += 1
        self.open += 1
        self.peak = max(self.peak, self.open)
        return _InMemoryStream(self)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _InMemoryStream(httpcore.AsyncNetworkStream):
    def __init__(self, network: InMemoryNetwork) -> None:
        self._network = network
        self._pending = bytearray()
        self._closed = False

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer.startswith(b"GET "):
            path = urllib.parse.urlsplit(buffer.split(b" ", 2)[1].decode()).path
            body = job_body(urllib.parse.unquote(path.rstrip("/").rsplit("/", 1)[-1]))
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
            self._pending += head + body

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await asyncio.sleep(0.001)
        data = bytes(self._pending[:max_bytes])
        del self._pending[:max_bytes]
        return data

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._network.open -= 1

    def get_extra_info(self, info: str) -> Any:
        return False if info == "is_readable" else None


def own_pools_on(network: InMemoryNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    """Async clients built from now on open their own pool's connections on `network` (through
    httpcore's public network backend seam)."""
    pool = httpcore.AsyncConnectionPool
    monkeypatch.setattr(
        httpcore, "AsyncConnectionPool", functools.partial(pool, network_backend=network)
    )


def httpx_default_pool_on(network: InMemoryNetwork) -> httpx.AsyncClient:
    """An httpx.AsyncClient with httpx's default pool (100 connections, 20 kept alive), its
    connections opened on `network`."""
    pool = httpcore.AsyncConnectionPool(
        max_connections=100, max_keepalive_connections=20, network_backend=network
    )
    return httpx.AsyncClient(transport=AsyncOwnTransport([pool]))


async def calls_at_once(http: httpx.AsyncClient | None, tasks: int = 500) -> int:
    """`tasks` calls at once on one client; its `max_connections`."""
    kc = AsyncCatalogJobs("pk_x", base_url="http://127.0.0.1:9", http_client=http, **FAST)
    jobs = await asyncio.gather(*(kc.get_item_update_job(f"J{n}") for n in range(tasks)))
    assert [job.id for job in jobs] == [f"J{n}" for n in range(tasks)]
    await kc.aclose()
    return kc.max_connections


def test_five_hundred_tasks_queue_in_the_client_not_in_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    network = InMemoryNetwork()
    own_pools_on(network, monkeypatch)
    max_connections = run_async(calls_at_once(None))
    assert network.peak == max_connections > 20


def test_without_the_queue_httpxs_default_pool_opens_a_connection_per_task() -> None:
    # The failure the queue prevents, on the same network: httpx's default pool (100 open, 20
    # kept alive), its calls let straight through, opens one connection per task in flight
    # and closes all but 20 of them again afterwards.
    network = InMemoryNetwork()

    async def unqueued() -> None:
        async with httpx_default_pool_on(network) as http:
            await asyncio.gather(*(http.get(f"http://127.0.0.1:9/x/J{n}") for n in range(100)))

    run_async(unqueued())
    assert network.peak == network.connections == 100
    # Through AsyncCatalogJobs the same kind of client keeps its 20.
    queued = InMemoryNetwork()

    async def through_the_client() -> int:
        async with httpx_default_pool_on(queued) as http:
            return await calls_at_once(http, 100)

    max_connections = run_async(through_the_client())
    assert queued.peak == max_connections == 20


def test_many_tasks_over_real_sockets_share_the_pool(fake: FakeKlaviyo) -> None:
    client_options = options(fake, *(f"J{n}" for n in range(100)))

    async def run() -> tuple[list[str], int]:
        async with AsyncCatalogJobs(**client_options) as kc:
            jobs = await asyncio.gather(*(kc.get_item_update_job(f"J{n}") for n in range(100)))
            return [job.id for job in jobs], kc.max_connections

    ids, max_connections = run_async(run())
    assert ids == [f"J{n}" for n in range(100)]
    # httpcore may replace the odd connection it finds expired; never one per call.
    assert fake.connections < 2 * max_connections


def test_an_apps_async_client_gets_slots_of_httpxs_default_keep_alive_count(
    fake: FakeKlaviyo,
) -> None:
    # httpx's public API does not tell a client's limits: an app's client gets 20 calls in
    # flight, httpx's default keep-alive count, so its default pool never churns.
    client_options = options(fake, *(f"J{n}" for n in range(200)))

    async def run() -> int:
        async with httpx.AsyncClient() as http:
            kc = AsyncCatalogJobs(http_client=http, **client_options)
            await asyncio.gather(*(kc.get_item_update_job(f"J{n}") for n in range(200)))
            return kc.max_connections

    assert run_async(run()) == 20
    assert fake.connections < 2 * 20  # not one per call beyond the 20 kept alive
