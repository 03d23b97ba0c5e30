"""Connections: a forked child gets its own, a response must be for the job asked for, a second
event loop gets its own pool, and 500 tasks queue in the client instead of churning the pool."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpcore
import httpx
import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    CatalogJobs,
    ConfigurationError,
    InvalidResponseError,
    Rate,
)
from klaviyo_catalog._client import POOL_CONNECTIONS
from klaviyo_catalog._ratelimit import MemoryRateLimiter

from tests.hostile_server import HostileServer, answer_job, head, hostile, job_document, job_id_of

MODES = ["sync", "async"]
FAST: dict[str, Any] = {"rate_limiter": MemoryRateLimiter(), "rate_limits": [Rate(10**6, 1.0)]}


def options(server: HostileServer, **overrides: Any) -> dict[str, Any]:
    return {
        "base_url": server.base_url,
        "rate_limiter": MemoryRateLimiter(),
        "rate_limits": [Rate(1_000_000, 1.0)],
        **overrides,
    }


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
def test_a_client_built_before_fork_gets_fresh_connections_in_the_child() -> None:
    with hostile(answer_job(), keep_alive=True) as server:
        with CatalogJobs("pk_x", **options(server)) as kc:
            assert kc.get_item_update_job("PARENT-1").id == "PARENT-1"
            assert server.connections == 1  # now pooled, and inherited by the child
            said = in_child(lambda: kc.get_item_update_job("CHILD").id)
            assert kc.get_item_update_job("PARENT-2").id == "PARENT-2"
        assert said == "CHILD"
        # The child opened its own; the parent still had its pooled one.
        assert server.connections == 2
        assert sum("CHILD" in target for target in server.requests) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_an_async_client_built_before_fork_gets_fresh_connections_in_the_child() -> None:
    with hostile(answer_job(), keep_alive=True) as server:
        kc = AsyncCatalogJobs("pk_x", **options(server))

        async def get(job_id: str) -> str:
            return (await kc.get_item_update_job(job_id)).id

        async def twice() -> list[str]:
            first = await get("PARENT-1")
            said = in_child(lambda: asyncio.run(get("CHILD")))
            return [first, said, await get("PARENT-2")]

        assert asyncio.run(twice()) == ["PARENT-1", "CHILD", "PARENT-2"]
        assert server.connections == 2


@pytest.mark.parametrize("mode", MODES)
def test_a_response_for_another_job_is_an_invalid_response(mode: str) -> None:
    # What two processes reading one inherited socket got: each other's jobs.
    with (
        hostile(answer_job(swap=lambda job_id: "SOMEONE-ELSES")) as server,
        pytest.raises(InvalidResponseError, match="asked for job 'MINE', got job"),
    ):
        if mode == "sync":
            with CatalogJobs("pk_x", **options(server)) as kc:
                kc.get_item_update_job("MINE")
        else:

            async def run() -> None:
                async with AsyncCatalogJobs("pk_x", **options(server)) as kc:
                    await kc.get_item_update_job("MINE")

            asyncio.run(run())


def test_an_async_client_works_under_a_second_event_loop() -> None:
    with hostile(answer_job(), keep_alive=True) as server:
        kc = AsyncCatalogJobs("pk_x", **options(server))
        for n in range(3):  # each asyncio.run() closes its loop, and the connections with it
            assert asyncio.run(kc.get_item_update_job(f"J{n}")).id == f"J{n}"
        asyncio.run(kc.aclose())


def test_an_apps_async_client_used_under_a_closed_loop_is_a_configuration_error() -> None:
    with hostile(answer_job(), keep_alive=True) as server:
        app_client = httpx.AsyncClient()
        kc = AsyncCatalogJobs("pk_x", http_client=app_client, **options(server))
        assert asyncio.run(kc.get_item_update_job("J1")).id == "J1"
        with pytest.raises(ConfigurationError, match="event loop") as caught:
            asyncio.run(kc.get_item_update_job("J2"))
        assert isinstance(caught.value.__cause__, RuntimeError)


class InMemoryNetwork(httpcore.AsyncNetworkBackend):
    """Connections that answer every request for a job with that job, after a millisecond of
    "network", without sockets: 500 tasks' worth of calls in a fraction of a second."""

    def __init__(self) -> None:
        self.connections = 0

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.connections += 1
        return _InMemoryStream()

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _InMemoryStream(httpcore.AsyncNetworkStream):
    def __init__(self) -> None:
        self._pending = bytearray()

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer.startswith(b"GET "):
            target = buffer.split(b" ", 2)[1].decode()
            body = job_document(job_id_of(target))
            self._pending += head(Content_Length=str(len(body))) + body

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await asyncio.sleep(0.001)
        data = bytes(self._pending[:max_bytes])
        del self._pending[:max_bytes]
        return data

    async def aclose(self) -> None:
        pass

    def get_extra_info(self, info: str) -> Any:
        return False if info == "is_readable" else None


async def calls_at_once(
    http: httpx.AsyncClient | None, network: InMemoryNetwork, tasks: int = 500
) -> None:
    kc = AsyncCatalogJobs("pk_x", base_url="http://127.0.0.1:9", http_client=http, **FAST)
    pool = kc._http._transport._pool  # type: ignore[attr-defined]
    pool._network_backend = network
    jobs = await asyncio.gather(*(kc.get_item_update_job(f"J{n}") for n in range(tasks)))
    assert [job.id for job in jobs] == [f"J{n}" for n in range(tasks)]
    await kc.aclose()


def test_five_hundred_tasks_queue_in_the_client_not_in_the_pool() -> None:
    network = InMemoryNetwork()
    asyncio.run(calls_at_once(None, network))
    assert network.connections == POOL_CONNECTIONS


def test_without_the_queue_httpxs_default_pool_opens_a_connection_per_task() -> None:
    # The failure the queue prevents, on the same network: an app's client with httpx's
    # default pool (100 open, 20 kept alive), its calls let straight through, opens one
    # connection per task in flight and closes all but 20 of them again afterwards.
    network = InMemoryNetwork()

    async def unqueued() -> None:
        async with httpx.AsyncClient() as http:
            http._transport._pool._network_backend = network  # type: ignore[attr-defined]
            await asyncio.gather(*(http.get(f"http://127.0.0.1:9/x/J{n}") for n in range(100)))

    asyncio.run(unqueued())
    assert network.connections == 100
    # Through AsyncCatalogJobs the same kind of client keeps its 20.
    queued = InMemoryNetwork()

    async def through_the_client() -> None:
        async with httpx.AsyncClient() as http:
            await calls_at_once(http, queued, 100)

    asyncio.run(through_the_client())
    assert queued.connections == 20


def test_many_tasks_over_real_sockets_share_the_pool() -> None:
    with hostile(answer_job(), keep_alive=True) as server:

        async def run() -> list[str]:
            async with AsyncCatalogJobs("pk_x", **options(server)) as kc:
                jobs = await asyncio.gather(*(kc.get_item_update_job(f"J{n}") for n in range(100)))
                return [job.id for job in jobs]

        assert asyncio.run(run()) == [f"J{n}" for n in range(100)]
        # httpcore may replace the odd connection it finds expired; never one per call.
        assert server.connections < 2 * POOL_CONNECTIONS


def test_an_apps_async_client_gets_slots_the_size_of_its_keep_alive_pool() -> None:
    with hostile(answer_job(), keep_alive=True) as server:
        limits = httpx.Limits(max_connections=30, max_keepalive_connections=8)

        async def run() -> None:
            async with httpx.AsyncClient(limits=limits) as http:
                kc = AsyncCatalogJobs("pk_x", http_client=http, **options(server))
                await asyncio.gather(*(kc.get_item_update_job(f"J{n}") for n in range(200)))

        asyncio.run(run())
        assert server.connections < 2 * 8  # not one per call beyond the 8 kept alive
