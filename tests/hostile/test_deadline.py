"""`deadline=` bounds a whole call: rate-limit waits, attempts, retries, limiter round trips and
the reading of a body that trickles in.

The waiting logic runs on a virtual clock (tests/support/virtual_clock.py); a few real-clock tests
against FakeKlaviyo's hostile faults (a stall, a trickle) check that the drivers keep the
promise too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    CatalogJobs,
    ConfigurationError,
    DeadlineExceededError,
    KlaviyoError,
    MemoryRateLimiter,
    Rate,
    ServerError,
    Ticket,
    TransportError,
    Wait,
)
from klaviyo_catalog._core import Core
from klaviyo_catalog._deadline import DEFAULT_DEADLINE, Deadline
from klaviyo_catalog._flow import Call, Flow, Send
from klaviyo_catalog.testing import FakeKlaviyo, Fault, VirtualClock

from tests.support import documents as docs
from tests.support.hardening_support import Mode, app_http_client, call, options
from tests.support.virtual_clock import Served, VirtualDriver, virtual_core


def get(core: Any, job_id: str = "JOB1") -> Any:
    return core.get_job("get_item_update_job", job_id, None, None)


# --- virtual clock -----------------------------------------------------------------------------


def test_what_is_left_reads_as_a_wait_or_as_a_timeout() -> None:
    """`seconds_left()` compares with a wait (inf without a deadline); `timeout()` goes to an
    action that takes a timeout (None without one: no limit)."""
    clock = VirtualClock()
    unbounded, bounded = Deadline.start(clock, None), Deadline.start(clock, 10.0)
    clock.advance(4.0)
    assert (unbounded.seconds_left(), unbounded.timeout()) == (math.inf, None)
    assert (bounded.seconds_left(), bounded.timeout()) == (6.0, 6.0)
    clock.advance(7.0)
    assert bounded.seconds_left() == bounded.timeout() == -1.0


def test_a_server_that_never_answers_costs_the_deadline_not_the_timeout() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, deadline=10, timeout=30)
    driver = VirtualDriver(clock, lambda send: Served.job(delay=math.inf))
    with pytest.raises(DeadlineExceededError) as caught:
        driver.run(get(core))
    assert clock.now - 1000.0 == pytest.approx(10.0)
    assert len(driver.sends) == 1  # no retry after the deadline's own timeout
    assert caught.value.deadline == 10 and isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, KlaviyoError)


def test_each_attempt_gets_only_the_time_that_remains() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, deadline=10, timeout=4, retry_backoff=0.01, max_retries=5)
    driver = VirtualDriver(clock, lambda send: Served.job(delay=math.inf))
    with pytest.raises(DeadlineExceededError):
        driver.run(get(core))
    timeouts = [send.request.extensions["timeout"]["read"] for send in driver.sends]
    # Full 4 s attempts while they fit, then one shortened to what was left.
    assert timeouts[:2] == [4, 4] and 0 < timeouts[-1] < 4
    assert driver.sends[0].timeout == pytest.approx(10.0)
    assert clock.now - 1000.0 == pytest.approx(10.0)


def test_a_body_that_trickles_in_stops_at_the_deadline() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, deadline=3, timeout=30)
    body = docs.single(docs.job("JOB1"))
    import json

    raw = json.dumps(body).encode()
    served = Served(chunks=[(1.0, raw[i : i + 1]) for i in range(len(raw))])
    driver = VirtualDriver(clock, lambda send: served)
    with pytest.raises(DeadlineExceededError):
        driver.run(get(core))
    assert clock.now - 1000.0 <= 3.0


def test_a_rate_limit_wait_past_the_deadline_fails_at_once() -> None:
    clock = VirtualClock()
    limiter = MemoryRateLimiter(clock=clock)
    core = virtual_core(clock, limiter=limiter, rate_limits=[Rate(1, 60.0)], deadline=5)
    driver = VirtualDriver(clock, lambda send: Served.job())
    driver.run(get(core))  # takes the one slot of the minute
    with pytest.raises(DeadlineExceededError, match="rate limit") as caught:
        driver.run(get(core))
    assert not isinstance(caught.value, TransportError)
    assert driver.sleeps == [] and len(driver.sends) == 1  # no sleeping into a lost cause


def test_a_rate_limit_wait_within_the_deadline_leaves_the_rest_to_the_attempt() -> None:
    clock = VirtualClock()
    limiter = MemoryRateLimiter(clock=clock, margin=0)
    core = virtual_core(clock, limiter=limiter, rate_limits=[Rate(1, 7.0)], deadline=10)
    driver = VirtualDriver(clock, lambda send: Served.job())
    driver.run(get(core))
    driver.run(get(core))
    assert driver.sleeps == [pytest.approx(7.0)]
    second = driver.sends[1]
    assert second.timeout == pytest.approx(3.0)
    assert second.request.extensions["timeout"]["read"] == pytest.approx(3.0)


def test_a_retry_that_cannot_fit_raises_the_failure_itself_at_once() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, deadline=2, retry_backoff=60, max_retries=3)
    driver = VirtualDriver(clock, lambda send: Served.body(docs.error(503, "down"), status=503))
    core.settings.retry.rng.seed(1)  # a backoff draw well past 2 s
    with pytest.raises(ServerError):
        driver.run(get(core))
    assert len(driver.sends) == 1 and driver.sleeps == []


def test_a_deadline_error_carries_the_failure_of_the_attempt_before() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, deadline=5, retry_backoff=0.01)
    answers = iter([Served.body(docs.error(503, "down"), status=503), Served.job(delay=math.inf)])
    driver = VirtualDriver(clock, lambda send: next(answers))
    with pytest.raises(DeadlineExceededError) as caught:
        driver.run(get(core))
    assert isinstance(caught.value.last_error, ServerError)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)  # what ran out, this time
    assert "down" in str(caught.value) and len(driver.sends) == 2


def test_retries_go_on_while_time_remains() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, deadline=10, retry_backoff=0.5)
    answers = iter([Served.body(docs.error(503, "x"), status=503, delay=1.0), Served.job()])
    driver = VirtualDriver(clock, lambda send: next(answers))
    assert driver.run(get(core)).id == "JOB1"
    assert len(driver.sends) == 2 and driver.sends[1].timeout is not None
    assert driver.sends[1].timeout < 9.0 + 1e-9


class StalledLimiter(MemoryRateLimiter):
    """A limiter behind a network round trip (a Redis)."""

    blocking_io = True


def test_a_stalled_limiter_round_trip_is_a_deadline_error_at_the_deadline() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, limiter=StalledLimiter(clock=clock), deadline=4)

    def calls(call: Call, clock: VirtualClock) -> Any:
        assert call.timeout is not None
        clock.advance(call.timeout)  # the driver gave up waiting, as its timer says
        return TimeoutError()

    driver = VirtualDriver(clock, lambda send: Served.job(), calls=calls)
    with pytest.raises(DeadlineExceededError, match="rate limiter"):
        driver.run(get(core))
    assert driver.call_timeouts == [pytest.approx(4.0)]
    assert clock.now - 1000.0 == pytest.approx(4.0) and driver.sends == []


ONE_A_SECOND = [Rate(1, 1.0)]


def slot_is_free(core: Core, clock: VirtualClock) -> bool:
    """Whether, a window from now, the core's one request a second can be admitted again:
    only if the earlier ticket was handed back (one still out holds its slot)."""
    clock.advance(1.0)
    settings = core.settings
    grant = settings.limiter.try_acquire(settings.account, "get_item_update_job", ONE_A_SECOND)
    return isinstance(grant, Ticket)


def behind_a_round_trip(clock: VirtualClock) -> Core:
    """A core whose limiter (one request a second) answers through a worker thread's round
    trip, as a Redis does, with a 4 s deadline per call."""
    limiter = StalledLimiter(clock=clock, margin=0.0)
    return virtual_core(clock, limiter=limiter, deadline=4, rate_limits=ONE_A_SECOND)


def first_admission(flow: Flow[Any]) -> Call:
    """The flow's first action: its admission's round trip, not yet made."""
    admission = next(flow)
    assert isinstance(admission, Call)
    return admission


def test_a_ticket_that_arrives_after_the_deadline_is_handed_back() -> None:
    clock = VirtualClock()
    core = behind_a_round_trip(clock)
    stalled: list[Call] = []

    def calls(call: Call, clock: VirtualClock) -> Any:
        stalled.append(call)  # the worker thread goes on with it
        assert call.timeout is not None
        clock.advance(call.timeout)
        return TimeoutError()

    with pytest.raises(DeadlineExceededError, match="rate limiter"):
        VirtualDriver(clock, lambda send: Served.job(), calls=calls).run(get(core))
    assert isinstance(stalled[0].function(), Ticket)  # the round trip ends after all
    assert slot_is_free(core, clock)


@pytest.mark.parametrize("arrived", [False, True], ids=["on-its-way", "arrived"])
def test_a_cancelled_call_hands_back_the_ticket_of_its_admission(arrived: bool) -> None:
    """A task cancelled while its admission's round trip runs closes the flow, before the
    ticket arrives or after it arrived but before the flow saw it."""
    clock = VirtualClock()
    core = behind_a_round_trip(clock)
    flow = get(core)
    admission = first_admission(flow)
    if arrived:
        admission.function()
    flow.close()
    if not arrived:
        admission.function()
    assert slot_is_free(core, clock)


def test_an_admission_the_flow_receives_is_its_own_to_hand_back() -> None:
    clock = VirtualClock()
    core = behind_a_round_trip(clock)
    flow = get(core)
    admission = first_admission(flow)
    assert isinstance(flow.send(admission.function()), Send)  # admitted: the request goes out
    assert not slot_is_free(core, clock)  # in flight: still counted
    flow.close()
    assert slot_is_free(core, clock)


def test_limiter_round_trips_get_the_time_that_remains() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, limiter=StalledLimiter(clock=clock), deadline=4)

    def calls(call: Call, clock: VirtualClock) -> Any:
        clock.advance(1.0)
        return call.function()

    driver = VirtualDriver(clock, lambda send: Served.job(), calls=calls)
    driver.run(get(core))
    assert driver.call_timeouts[0] == pytest.approx(4.0)
    assert driver.sends[0].timeout == pytest.approx(3.0)


def test_a_failing_limiter_is_still_a_transport_error() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, limiter=StalledLimiter(clock=clock), deadline=4)
    driver = VirtualDriver(clock, lambda send: Served.job(), calls=lambda c, k: ConnectionError())
    with pytest.raises(TransportError, match="rate limiter failed"):
        driver.run(get(core))


def test_without_a_deadline_the_timeout_applies_as_configured() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, deadline=None, timeout=7)
    driver = VirtualDriver(clock, lambda send: Served.job())
    driver.run(get(core))
    (send,) = driver.sends
    assert send.timeout is None and send.request.extensions["timeout"]["read"] == 7


def test_the_default_deadline_is_two_minutes() -> None:
    clock = VirtualClock()
    core = virtual_core(clock)
    driver = VirtualDriver(clock, lambda send: Served.job())
    driver.run(get(core))
    assert DEFAULT_DEADLINE == 120.0 and driver.sends[0].timeout == pytest.approx(120.0)
    assert core.settings.retry.deadline == DEFAULT_DEADLINE


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1, 0, "3", True])
@pytest.mark.parametrize("client_class", [CatalogJobs, AsyncCatalogJobs])
def test_deadline_and_timeout_must_be_finite_and_positive(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs], bad: Any
) -> None:
    with pytest.raises(ConfigurationError, match="deadline"):
        client_class("pk_x", deadline=bad)
    with pytest.raises(ConfigurationError, match="timeout"):
        client_class("pk_x", timeout=bad)
    with pytest.raises(ConfigurationError, match=r"timeout\.read"):
        client_class("pk_x", timeout=httpx.Timeout(5, read=bad))
    with pytest.raises(ConfigurationError, match="retry_backoff"):
        client_class("pk_x", retry_backoff=bad)


# --- real clock: the drivers keep the promise against hostile servers --------------------------


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    fake = make_fake(rate_limits=None)
    fake.add_job("item-update", job_id="J1")
    return fake


def call_through(mode: Mode, fake: FakeKlaviyo, deadline: float, **overrides: Any) -> float:
    """Seconds until get_item_update_job("J1") raised DeadlineExceededError."""
    client_options = options(fake.base_url, fake.api_key, deadline=deadline, **overrides)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        call(mode, client_options, "get_item_update_job", "J1")
    return time.monotonic() - started


def test_a_body_trickling_at_two_bytes_a_second_stops_at_the_deadline(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    # Each byte comes well within the read timeout: only the deadline can stop the call.
    fake.inject(Fault.trickle(0.5))
    elapsed = call_through(mode, fake, 0.75, timeout=30)
    # Upper bounds leave a loaded machine room, far below what a failure takes (minutes).
    assert 0.75 <= elapsed < 0.75 + 1.5


def test_a_body_trickling_through_an_apps_client_stops_within_a_byte_of_the_deadline(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    # An app's http_client keeps httpx's own sockets: the deadline is checked per chunk.
    fake.inject(Fault.trickle(0.25))
    client_options = options(fake.base_url, fake.api_key, deadline=1.0)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        call(mode, client_options, "get_item_update_job", "J1", http=app_http_client)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.0 + 0.25 + 1.5


def test_a_server_that_never_answers_stops_at_the_deadline(mode: Mode, fake: FakeKlaviyo) -> None:
    fake.inject(Fault.stall())
    elapsed = call_through(mode, fake, 0.5, timeout=30)
    assert len(fake.request_log) == 1
    assert 0.5 <= elapsed < 0.5 + 1.5  # the failure: the 30 s read timeout


def test_a_slow_but_timely_answer_is_not_cut_short(mode: Mode, fake: FakeKlaviyo) -> None:
    fake.inject(Fault.delay(0.3))
    client_options = options(fake.base_url, fake.api_key, deadline=2.0)
    assert call(mode, client_options, "get_item_update_job", "J1").id == "J1"


class SlowRedis(MemoryRateLimiter):
    """A limiter whose round trips stall like a Redis that stopped answering."""

    blocking_io = True

    def __init__(self, stall: float) -> None:
        super().__init__()
        self.stall = stall

    def try_acquire(self, account: str, operation: str, rates: Sequence[Rate]) -> Ticket | Wait:
        time.sleep(self.stall)
        return super().try_acquire(account, operation, rates)


def test_a_stalled_limiter_round_trip_stops_at_the_deadline(mode: Mode, fake: FakeKlaviyo) -> None:
    elapsed = call_through(mode, fake, 0.5, rate_limiter=SlowRedis(2.0))
    assert fake.request_log == []
    assert 0.5 <= elapsed < 1.6  # the failure: the limiter's 2 s stall


def test_send_defaults_carry_no_deadline() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:9/")
    assert Send(request).timeout is None
