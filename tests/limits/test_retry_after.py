"""Retry-After with a ceiling, on the virtual clock: a wait beyond `max_retry_after` raises at
once and pauses nothing; nonsense values are treated as absent; the account is paused only for
waits the client honours, and a call that waited on such a pause says so at WARNING."""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from klaviyo_catalog import ConfigurationError, MemoryRateLimiter, Rate, RateLimitError, Ticket
from klaviyo_catalog._flow import Flow
from klaviyo_catalog._retry import retry_after_seconds
from klaviyo_catalog.testing import FakeKlaviyo, Fault, VirtualClock

from tests.support import documents
from tests.support.facade_harness import Api
from tests.support.hardening_support import Mode
from tests.support.virtual_clock import Simulation, Task, job_response, virtual_core

OP = "get_item_update_job"


class Throttling:
    """Answers the first `times` requests with a 429 carrying `retry_after`, then succeeds."""

    def __init__(self, retry_after: str | None, times: int = 1) -> None:
        self.retry_after, self.times = retry_after, times
        self.served: list[tuple[float, int]] = []

    def __call__(self, request: httpx.Request, now: float) -> httpx.Response:
        if len(self.served) < self.times:
            self.served.append((now, 429))
            headers = {} if self.retry_after is None else {"Retry-After": self.retry_after}
            body = json.dumps(documents.error(429, "Request was throttled.")).encode()
            return httpx.Response(429, content=body, headers=headers, request=request)
        self.served.append((now, 200))
        return job_response(request)


def run(
    server: Throttling, calls: int = 1, spacing: float = 0.0, **options: object
) -> tuple[list[Task], float, bool]:
    """`calls` calls, started `spacing` seconds apart; their tasks, the virtual time taken,
    and whether the account is still paused at the end."""
    clock = VirtualClock()
    limiter = MemoryRateLimiter(clock=clock)
    options.setdefault("rate_limits", None)  # the spec's
    core = virtual_core(clock, limiter=limiter, **options)
    sim = Simulation(clock, server, uplink=lambda: 0.01)

    def call() -> Flow[object]:
        return (yield from core.get_job(OP, "JOB1", None, None))

    started = clock.now
    tasks = [sim.start(call(), at=started + spacing * n) for n in range(calls)]
    sim.run()
    grant = limiter.try_acquire(core.settings.account, "another-operation", [Rate(100, 1.0)])
    paused = not isinstance(grant, Ticket)
    return tasks, clock.now - started, paused


def test_a_wait_beyond_the_ceiling_raises_at_once_and_pauses_nothing() -> None:
    server = Throttling("86400")
    (task,), elapsed, paused = run(server, rate_limits=None)
    assert isinstance(task.error, RateLimitError)
    assert task.error.retry_after == 86400.0
    assert task.sleeps == [] and elapsed < 0.1
    assert [status for _, status in server.served] == [429]  # not retried
    assert not paused  # later calls are not held up for a day


def test_without_retries_a_429_raises_and_pauses_nothing() -> None:
    server = Throttling("30")
    (task,), _, paused = run(server, max_retries=0)
    assert isinstance(task.error, RateLimitError) and task.error.retry_after == 30.0
    assert not paused


def test_the_ceiling_is_configurable() -> None:
    (task,), _, _ = run(Throttling("10"), max_retry_after=5.0)
    assert isinstance(task.error, RateLimitError) and task.error.retry_after == 10.0
    (task,), elapsed, _ = run(Throttling("10"), max_retry_after=10.0)
    assert task.error is None and 10.0 <= elapsed < 10.5


@pytest.mark.parametrize("bad", ["1e308", "nan", "inf", "-5", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_nonsense_retry_after_is_treated_as_absent(bad: str) -> None:
    server = Throttling(bad)
    (task,), elapsed, _ = run(server)
    assert task.error is None  # retried after a backoff of at least a second, no OverflowError
    assert [status for _, status in server.served] == [429, 200]
    assert 1.0 <= elapsed < 31.0


def test_an_honoured_wait_pauses_the_account_and_the_waiters_say_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="klaviyo_catalog")
    server = Throttling("2", times=1)
    tasks, _, _ = run(server, calls=3, spacing=0.5)  # the others start after the 429
    assert all(task.error is None for task in tasks)
    first_429 = server.served[0][0]
    # The other calls waited out the same pause, though they never saw a 429.
    assert [status for _, status in server.served] == [429, 200, 200, 200]
    assert min(at for at, status in server.served if status == 200) >= first_429 + 2.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("paused after a 429" in r.getMessage() for r in warnings)


@pytest.mark.parametrize("form", ["seconds", "http-date", "absent"])
def test_retry_after_is_honoured_in_every_form(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # An HTTP-date has whole seconds: 3 s ahead means 2 to 3 s from now. The wall clock that
    # reads it is held still (as the virtual one is), else a slow machine crossing a second
    # boundary between writing and reading the date would make it 1.x s. Absent: a backoff of
    # at least a second, the smallest window.
    wall = time.time()
    monkeypatch.setattr(time, "time", lambda: wall)
    value = {"seconds": "2", "http-date": email.utils.formatdate(wall + 3, usegmt=True)}
    server = Throttling(value.get(form))
    (task,), elapsed, _ = run(server)
    assert task.error is None
    assert [status for _, status in server.served] == [429, 200]
    low, high = {"seconds": (2.0, 2.3), "http-date": (2.0, 3.3), "absent": (1.0, 31.0)}[form]
    assert low <= elapsed < high


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_bad_ceiling_is_a_configuration_error(bad: float) -> None:
    with pytest.raises(ConfigurationError):
        virtual_core(VirtualClock(), limiter=MemoryRateLimiter(), max_retry_after=bad)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("2.5", None), (" 7 ", 7.0), ("31622400", 31622400.0), ("31622401", None)],
)
def test_retry_after_values(value: str, seconds: float | None) -> None:
    assert retry_after_seconds({"retry-after": value}) == seconds


@pytest.fixture
def fake() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo(rate_limits=None) as server:
        yield server


def test_a_day_long_retry_after_neither_waits_nor_holds_up_the_next_call(
    fake: FakeKlaviyo, mode: Mode
) -> None:
    job_id = fake.add_job("item-update")
    fake.inject(Fault.rate_limited("86400"))
    api = Api(mode, fake.base_url, api_key=fake.api_key)
    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        api.get_item_update_job(job_id)
    assert caught.value.retry_after == 86400.0
    assert api.get_item_update_job(job_id).id == job_id
    assert time.monotonic() - started < 20  # neither waited anything like a day
    assert [r.status for r in fake.request_log] == [429, 200]
