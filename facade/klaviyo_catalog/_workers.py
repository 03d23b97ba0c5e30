"""The worker threads that perform a flow's `Call`s (blocking I/O: a Redis round trip, an OAuth
token refresh; the parsing of a large document) and an app's sync client's exchanges, off the
event loop or the calling thread, so that a call can stop waiting at its deadline.

A forked child starts with none of its parent's threads, so its workers start afresh.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ._flow import Call

T = TypeVar("T")


class Workers:
    """Daemon threads, started as needed up to `limit`, that run what is submitted. Not a
    ThreadPoolExecutor: the interpreter waits for its threads at exit, and one stuck behind a
    stalled server (Redis, a token endpoint, a hostile API) would hold the app's exit for as
    long as the server likes. The thread itself finishes when the server answers."""

    def __init__(self, limit: int, name: str) -> None:
        self._limit = limit
        self._name = name
        self._start_afresh()
        os.register_at_fork(after_in_child=self._start_afresh)

    def _start_afresh(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]]
        self._jobs = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._started = 0
        self._lock = threading.Lock()

    def submit(self, function: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run `function` in a worker thread; its future."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((future, function))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._started < self._limit:
                    self._started += 1
                    name = f"{self._name}-{self._started}"
                    threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            future, function = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function())
                except BaseException as exc:  # the waiting thread raises it
                    future.set_exception(exc)
            del future, function  # a finished response must not wait here for the next job
            self._idle.release()


#: Each `Call` with a timeout runs here (for both clients), so that a stalled server cannot hold
#: a call past its deadline. Not the event loop's default executor: asyncio.run() waits for it.
CALLS = Workers(16, "klaviyo-catalog-call")
#: Sync exchanges of apps' clients in flight at once (`_app_client`); beyond it they queue,
#: within their deadline. One stuck behind a hostile server holds one.
EXCHANGES = Workers(64, "klaviyo-catalog-exchange")


def run_blocking(call: Call) -> Any:
    """Perform a `Call` for the sync client: in a worker when it has a timeout, else inline; its
    result or its exception, for the flow to type."""
    try:
        if call.timeout is None:
            return call.function()
        return CALLS.submit(call.function).result(timeout=max(call.timeout, 0.0))
    except Exception as exc:  # the flow types it
        return exc
