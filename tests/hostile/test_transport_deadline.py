"""The deadline holds on every path: the client's own pool and an app's `http_client`, sync and
async, against servers that keep an exchange alive without ever tripping a read timeout:
headers trickled in, an endless run of `103 Early Hints`, a body a byte every few seconds.

Real sockets on 127.0.0.1 and real time (these are the drivers' promise, which the virtual
clock cannot show); each call's deadline is a fraction of a second.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from klaviyo_catalog import DeadlineExceededError
from klaviyo_catalog.testing import FakeKlaviyo, Fault

from tests.support.documents import job_body
from tests.support.hardening_support import Mode, app_http_client, call, options, use

DEADLINE = 0.4
# Room for a loaded machine; a failure takes as long as the server likes (here: until the test
# server stops, tens of seconds).
SLACK = 1.0
KEY = "pk_transport_deadline_0a1b2c3d"


class HostileServer:
    """Answers the first request of each connection properly when `first_ok`, then (or at
    once) plays `fault` until the client hangs up: "headers" trickles header lines 4 bytes at
    a time, "hints" sends 103 Early Hints forever. Notes when each connection ended."""

    def __init__(self, fault: str, first_ok: bool = False) -> None:
        self.closed: list[float] = []
        self.connections = 0
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server.connections += 1
                sock: socket.socket = self.request
                try:
                    if first_ok:
                        _read_head(sock)
                        body = job_body("J1")
                        sock.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\n"
                            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                        )
                    _read_head(sock)
                    server.play(fault, sock)
                except OSError:
                    pass  # the client hung up: what the test waits for
                finally:
                    server.closed.append(time.monotonic())

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._stop = threading.Event()

    def play(self, fault: str, sock: socket.socket) -> None:
        if fault == "headers":
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
            line = b"X-Slow: " + b"a" * 56 + b"\r\n"
            while not self._stop.is_set():
                for i in range(0, len(line), 4):
                    sock.sendall(line[i : i + 4])
                    time.sleep(0.05)
        else:
            while not self._stop.is_set():
                sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
                time.sleep(0.02)

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def wait_closed(self, count: int, timeout: float) -> bool:
        """Whether `count` connections have ended within `timeout` seconds."""
        until = time.monotonic() + timeout
        while len(self.closed) < count and time.monotonic() < until:
            time.sleep(0.01)
        return len(self.closed) >= count


def _read_head(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionResetError
        data += chunk


POOLS: dict[str, Callable[[Mode], Any] | None] = {"own pool": None, "app's client": app_http_client}


def timed_call(mode: Mode, base_url: str, pool: str, **overrides: Any) -> float:
    """Seconds until get_item_update_job("J1") raised DeadlineExceededError."""
    client_options = options(base_url, KEY, deadline=DEADLINE, timeout=30, **overrides)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        call(mode, client_options, "get_item_update_job", "J1", http=POOLS[pool])
    return time.monotonic() - started


@pytest.fixture(params=list(POOLS))
def pool(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.mark.parametrize("fault", ["headers", "hints"])
def test_headers_that_never_finish_stop_at_the_deadline(mode: Mode, pool: str, fault: str) -> None:
    with HostileServer(fault) as server:
        elapsed = timed_call(mode, server.base_url, pool)
        assert DEADLINE <= elapsed < DEADLINE + SLACK
        # The exchange left behind does not go on: its connection is closed (by the client's
        # own socket timing out, asyncio's cancellation, or the app client's exchange being
        # abandoned, its socket shut down).
        assert server.wait_closed(1, timeout=SLACK)


@pytest.mark.parametrize("fault", ["headers", "hints"])
def test_a_hostile_answer_on_a_reused_connection_stops_at_the_deadline(
    mode: Mode, pool: str, fault: str
) -> None:
    with HostileServer(fault, first_ok=True) as server:
        client_options = options(server.base_url, KEY, deadline=DEADLINE, timeout=30)

        def twice(kc: Any) -> Any:
            if mode == "sync":
                assert kc.get_item_update_job("J1").id == "J1"
                started = time.monotonic()
                with pytest.raises(DeadlineExceededError):
                    kc.get_item_update_job("J1")
                return time.monotonic() - started

            async def run() -> float:
                assert (await kc.get_item_update_job("J1")).id == "J1"
                started = time.monotonic()
                with pytest.raises(DeadlineExceededError):
                    await kc.get_item_update_job("J1")
                return time.monotonic() - started

            return run()

        elapsed = use(mode, client_options, twice, http=POOLS[pool])
        assert DEADLINE <= elapsed < DEADLINE + SLACK
        assert server.connections == 1  # the second call did go over the pooled connection


@pytest.fixture
def trickling(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    fake = make_fake(rate_limits=None, api_key=KEY)
    fake.add_job("item-update", job_id="J1")
    fake.inject(Fault.trickle(3.0))  # a byte every 3 s, each well within the read timeout
    return fake


def test_a_body_a_byte_every_few_seconds_stops_at_the_deadline_not_the_next_byte(
    mode: Mode, pool: str, trickling: FakeKlaviyo
) -> None:
    # Before, an app's client was checked per chunk: the call ended with the next byte (3 s).
    elapsed = timed_call(mode, trickling.base_url, pool)
    assert DEADLINE <= elapsed < DEADLINE + SLACK


def test_without_a_deadline_an_apps_client_is_used_in_the_calling_thread(
    mode: Mode, make_fake: Callable[..., FakeKlaviyo]
) -> None:
    fake = make_fake(rate_limits=None, api_key=KEY)
    fake.add_job("item-update", job_id="J1")
    threads: list[str] = []

    def hook(request: httpx.Request) -> None:
        threads.append(threading.current_thread().name)

    async def async_hook(request: httpx.Request) -> None:
        hook(request)

    def http(mode: Mode) -> httpx.Client | httpx.AsyncClient:
        if mode == "sync":
            return httpx.Client(event_hooks={"request": [hook]})
        return httpx.AsyncClient(event_hooks={"request": [async_hook]})

    for deadline in (None, 5.0):
        client_options = options(fake.base_url, KEY, deadline=deadline)
        assert call(mode, client_options, "get_item_update_job", "J1", http=http).id == "J1"
    here = threading.current_thread().name
    if mode == "sync":  # with a deadline, the exchange is awaited in a worker thread
        assert threads[0] == here and threads[1].startswith("klaviyo-catalog-exchange")
    else:
        assert threads == [here, here]
