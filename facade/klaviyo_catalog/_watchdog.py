"""One thread per process that runs a callback at an instant unless it was disarmed first: what
ends an app's sync exchange at its call's deadline (`_app_client`), since a thread blocked in a
socket read cannot be interrupted from inside.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("klaviyo_catalog")


class Alarm:
    """A callback due at `at` (`time.monotonic()`); `disarm()` before then and it never runs."""

    __slots__ = ("_watchdog", "armed", "at", "callback")

    def __init__(self, watchdog: _Watchdog, at: float, callback: Callable[[], None]) -> None:
        self._watchdog = watchdog
        self.at = at
        self.callback = callback
        self.armed = True

    def disarm(self) -> None:
        """Call the callback off: the exchange ended in time."""
        if self.armed:
            self.armed = False
            self._watchdog.disarmed += 1  # a count for compaction only: a race costs nothing


class _Watchdog:
    def __init__(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self.disarmed = 0

    def arm(self, at: float, callback: Callable[[], None]) -> Alarm:
        alarm = Alarm(self, at, callback)
        with self._wake:
            # Disarmed alarms are dropped lazily; once they are half the heap, all at once, so
            # that a long deadline per call cannot make the heap grow with the call rate.
            if len(self._heap) > 64 and self.disarmed * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[2].armed]
                heapq.heapify(self._heap)
                self.disarmed = 0
            heapq.heappush(self._heap, (at, next(self._order), alarm))
            if self._heap[0][2] is alarm:
                self._wake.notify()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="klaviyo-catalog-watchdog", daemon=True
                )
                self._thread.start()
        return alarm

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    while self._heap and not self._heap[0][2].armed:
                        heapq.heappop(self._heap)
                        self.disarmed = max(self.disarmed - 1, 0)
                    if not self._heap:
                        self._wake.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        alarm = heapq.heappop(self._heap)[2]
                        break
                    self._wake.wait(delay)
            if alarm.armed:
                try:
                    alarm.callback()
                except Exception:  # a watchdog that dies would leave every later call unbounded
                    logger.exception("the deadline watchdog's callback failed")


_watchdog = _Watchdog()


def arm(at: float, callback: Callable[[], None]) -> Alarm:
    """Run `callback` on the watchdog's thread at `at` (`time.monotonic()`), unless disarmed."""
    return _watchdog.arm(at, callback)


def _forget() -> None:
    # A forked child has none of the parent's threads, nor its alarms.
    global _watchdog
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_forget)
