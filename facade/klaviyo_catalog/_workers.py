"""The worker threads that perform a flow's `Call`s: blocking I/O (a Redis round trip, an OAuth
token refresh) and the parsing of a large document, off the event loop and within a timeout.

One pool serves both clients. A forked child starts with none of its parent's threads, so it
gets a pool of its own at its first call.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from typing import Any

from ._flow import Call

# Each `Call` runs here (for both clients; the sync one only when the call has a timeout), so
# that a stalled server (Redis, a token endpoint) cannot hold a call past its deadline; the
# thread itself finishes when the server answers.
# Not the event loop's default executor: asyncio.run() waits for that one's threads on exit.
_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def run_blocking(call: Call) -> Any:
    """Perform a `Call` for the sync client: in the worker pool when it has a timeout, else
    inline; its result or its exception, for the flow to type."""
    try:
        if call.timeout is None:
            return call.function()
        return worker_pool().submit(call.function).result(timeout=max(call.timeout, 0.0))
    except Exception as exc:  # the flow types it
        return exc


def worker_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The worker pool that runs each `Call` with a timeout (rate-limiter round trips, token
    refreshes, large documents' parsing), made at first use."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=16, thread_name_prefix="klaviyo-catalog-call"
            )
        return _executor


def _forget_executor() -> None:
    # A forked child has none of the parent's threads: a pool that thinks it has would hang.
    global _executor, _executor_lock
    _executor, _executor_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_executor)
