"""Numbers a server sends, bounded where they are read (an adversarial review's items 1, 2, 12).

1. A lying `RateLimit-Reset` (86400, 1000000000, 300 digits) holds the account's later calls
   no longer than `max_retry_after`, the cap of `Retry-After`: in memory, and through Redis,
   where the hint ends as soon. Non-numbers (`1e308`, `5_0`) are no hint at all.
2. `RedisRateLimiter.complete()` never fails on a hostile observation (`1e303` overflowed
   `round()`), so no request's slot stays taken in the shared in-flight set.
12. Retry-After and RateLimit-* are read per the HTTP grammar: `5_0` is not 50 s, Klaviyo's
   draft form `RateLimit-Limit: 75, 75;w=1, 750;w=60` is read. A token the app's function
   returns is in no frame of an error's traceback (what error trackers record).

Waits run on a `VirtualClock` attached to the client: the wire is real (FakeKlaviyo), the sleeps
cost no time, and how long a call waited is measured exactly.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from klaviyo_catalog import (
    AuthenticationError,
    CatalogJobs,
    ConfigurationError,
    KlaviyoError,
    Rate,
    RedisRateLimiter,
)
from klaviyo_catalog._header_numbers import (
    SATURATED,
    http_date,
    rate_limit_observation,
    read_digits,
)
from klaviyo_catalog._ratelimit import (
    MAX_BUDGET,
    MAX_WAIT,
    MemoryRateLimiter,
    Observation,
    RateLimiter,
    Ticket,
    Wait,
    account_key,
)
from klaviyo_catalog._retry import retry_after_seconds
from klaviyo_catalog.testing import FakeKlaviyo, Fault, VirtualClock

from tests.support import documents as docs
from tests.support.hardening_support import PROFILE, Mode, call, json_body, options, use
from tests.support.redis_server import RedisServer, requires_redis_server, running_redis_server

OP = "get_item_update_job"
FakeFactory = Callable[..., FakeKlaviyo]


def job_reply(job_id: str, **headers: str) -> Fault:
    """A 200 with the job's document and these headers, in place of the fake's own answer."""
    return json_body(docs.single(docs.job(job_id, shape=docs.NEW)), 200, **headers)


def budget(reset: str, remaining: str = "0", limit: str = "750") -> dict[str, str]:
    """RateLimit-* headers: `remaining` requests left until `reset`."""
    return {"RateLimit-Limit": limit, "RateLimit-Remaining": remaining, "RateLimit-Reset": reset}


def client_options(fake: FakeKlaviyo, limiter: RateLimiter, **overrides: Any) -> dict[str, Any]:
    return options(fake.base_url, fake.api_key, rate_limiter=limiter, **overrides)


def waited_after(
    mode: Mode,
    fake: FakeKlaviyo,
    headers: dict[str, str],
    **overrides: Any,
) -> float:
    """Virtual seconds a second client (same key, same limiter, no deadline) waits for its call
    after a first client's call was answered with these headers."""
    job_id = fake.add_job("item-update")
    clock = VirtualClock()
    limiter = MemoryRateLimiter(clock=clock)
    fake.inject(job_reply(job_id, **headers))
    call(mode, client_options(fake, limiter, **overrides), OP, job_id, clock=clock)
    started = clock()
    later = client_options(fake, limiter, deadline=None, **overrides)
    assert call(mode, later, OP, job_id, clock=clock).id == job_id
    return clock() - started


# --- 1. a lying RateLimit-Reset -----------------------------------------------------------------

LYING_RESETS = ["86400", "1000000000", "1" + "0" * 303]


@pytest.mark.parametrize("reset", LYING_RESETS, ids=["a-day", "31-years", "300-digits"])
@pytest.mark.parametrize("cap", [60.0, 5.0])
def test_a_lying_reset_holds_later_calls_no_longer_than_max_retry_after(
    mode: Mode, make_fake: FakeFactory, reset: str, cap: float
) -> None:
    # Before: the next call of the key waited the whole reset (with deadline=None a hang; with
    # a deadline, DeadlineExceededError at once), for new clients too.
    fake = make_fake(rate_limits=None)
    waited = waited_after(mode, fake, budget(reset), max_retry_after=cap)
    assert cap - 0.01 <= waited <= cap + 0.01  # the spent budget is honoured, up to the cap


@pytest.mark.parametrize("reset", ["1e308", "5_0", "2.5", "-5", "inf", "nan", "+5", "0x10"])
def test_a_reset_that_is_not_digits_is_no_hint(
    mode: Mode, make_fake: FakeFactory, reset: str
) -> None:
    # Before: 1e308 raised OverflowError from time.sleep (sync) or hung (async).
    fake = make_fake(rate_limits=None)
    assert waited_after(mode, fake, budget(reset)) == 0.0


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis_server() as running:
        yield running


def redis_limiter(server: RedisServer) -> RedisRateLimiter:
    """A limiter with key names of its own: the server is shared by the module's tests."""
    return RedisRateLimiter(server.url, prefix=f"hostile-{uuid.uuid4().hex[:8]}")


def state_key(limiter: RedisRateLimiter, account: str, operation: str = OP) -> str:
    return f"{limiter._prefix}:{{{account}}}:{operation}:state"


def hint_left(limiter: RedisRateLimiter, account: str) -> float:
    """Seconds until the account's shared budget hint ends, by the Redis server's clock."""
    until = limiter.client.hget(state_key(limiter, account), "hint_until")
    assert until is not None
    seconds, micros = limiter.client.time()
    return (float(until) - (seconds * 1_000_000 + micros)) / 1_000_000


@requires_redis_server
def test_a_lying_reset_through_redis_ends_with_the_cap_for_every_process(
    mode: Mode, make_fake: FakeFactory, redis_server: RedisServer
) -> None:
    # Before: the hint lasted 31 years, and the :state key's TTL with it, for the whole fleet.
    fake = make_fake(rate_limits=None)
    job_id = fake.add_job("item-update")
    fake.inject(job_reply(job_id, **budget("1000000000")))
    limiter = redis_limiter(redis_server)
    call(mode, client_options(fake, limiter, max_retry_after=30.0), OP, job_id)
    account = account_key(fake.api_key)
    assert 29.0 < hint_left(limiter, account) <= 30.0
    # The key outlives the hint only by the limiter's own idle expiry (stale_after + a window).
    assert limiter.client.pttl(state_key(limiter, account)) <= (600 + 61) * 1000
    # Another process (or this one restarted) waits out what is left of the cap, no more.
    restarted = RedisRateLimiter(redis_server.url, prefix=limiter._prefix)
    grant = restarted.try_acquire(account, OP, [Rate(750, 60.0)])
    assert isinstance(grant, Wait) and 29.0 < grant.seconds <= 30.0


# --- 2. complete() and hostile observations -----------------------------------------------------

HOSTILE_OBSERVATIONS = {
    "reset-1e303": Observation(75, 0, 1e303),
    "reset-inf": Observation(75, 0, math.inf),
    "reset-nan": Observation(75, 0, math.nan),
    "reset-negative": Observation(75, 0, -1.0),
    "reset-int-past-float": Observation(75, 0, 10**400),
    "reset-bool": Observation(75, 0, True),
    "reset-str": Observation(75, 0, "5"),  # type: ignore[arg-type]
    "limit-zero": Observation(0, 0, 5.0),
    "limit-bool": Observation(True, 0, 5.0),
    "limit-huge": Observation(10**400, 10**400, 5.0),
    "remaining-negative": Observation(75, -(10**400), 5.0),
    "remaining-float": Observation(75, 0.5, 5.0),  # type: ignore[arg-type]
}


def limiter_of(kind: str, server: Callable[[], RedisServer]) -> RateLimiter:
    return MemoryRateLimiter() if kind == "memory" else redis_limiter(server())


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=requires_redis_server)])
@pytest.mark.parametrize("name", list(HOSTILE_OBSERVATIONS))
def test_complete_takes_any_observation_and_frees_the_slot(
    kind: str, name: str, request: pytest.FixtureRequest
) -> None:
    # Before: Redis's complete() raised OverflowError for 1e303 (round(inf)), logged as a
    # warning, and the ticket held its slot in the shared in-flight set for ten minutes.
    limiter = limiter_of(kind, lambda: request.getfixturevalue("redis_server"))
    rates = [Rate(1, 1.0)]  # one slot: the next admission shows whether it was freed
    ticket = limiter.try_acquire("acct", OP, rates)
    assert isinstance(ticket, Ticket)
    limiter.complete(ticket, HOSTILE_OBSERVATIONS[name])
    if isinstance(limiter, RedisRateLimiter):
        assert limiter.client.zcard(f"{limiter._prefix}:{{acct}}:{OP}:flight") == 0
        assert limiter.client.pttl(state_key(limiter, "acct")) <= MAX_WAIT * 1000 + 1000
    grant = limiter.try_acquire("acct", OP, rates)
    # Held by the completion's window (1 s), or by a hint no longer than a year (what an app's
    # own Observation can ask for at most; a response's is capped at max_retry_after).
    assert isinstance(grant, Wait) and 0 < grant.seconds <= MAX_WAIT


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=requires_redis_server)])
def test_no_pause_outlasts_a_year(kind: str, request: pytest.FixtureRequest) -> None:
    limiter = limiter_of(kind, lambda: request.getfixturevalue("redis_server"))
    limiter.pause("acct", 1e300)
    grant = limiter.try_acquire("acct", OP, [Rate(10, 1.0)])
    assert isinstance(grant, Wait) and grant.paused and MAX_WAIT - 1 < grant.seconds <= MAX_WAIT


CALLS = 80  # past the 75 slots that leaked before, at the spec's 75/s


@requires_redis_server
@pytest.mark.parametrize("reset", ["1e303", "1" + "0" * 303])
def test_hostile_resets_leak_no_redis_slot(
    mode: Mode,
    make_fake: FakeFactory,
    redis_server: RedisServer,
    reset: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="klaviyo_catalog")
    fake = make_fake(rate_limits=None)
    job_id = fake.add_job("item-update")
    fake.inject(job_reply(job_id, **budget(reset, remaining="740")), times=CALLS)
    limiter = redis_limiter(redis_server)
    # The limits leave room for all the calls, so only a leak could hold one up (deadline 10).
    settings = client_options(fake, limiter, rate_limits=[Rate(1000, 1.0)], deadline=10)

    def work(kc: Any) -> Any:
        if isinstance(kc, CatalogJobs):
            return [kc.get_item_update_job(job_id) for _ in range(CALLS)]

        async def calls() -> list[Any]:
            return [await kc.get_item_update_job(job_id) for _ in range(CALLS)]

        return calls()

    assert len(use(mode, settings, work)) == CALLS
    account = account_key(fake.api_key)
    assert limiter.client.zcard(f"{limiter._prefix}:{{{account}}}:{OP}:flight") == 0
    assert [r.getMessage() for r in caplog.records] == []  # no "the rate limiter failed"


# --- 12. the grammar: Retry-After and RateLimit-* -------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [("50", 50.0), ("5_0", 1.0), ("5.0", 1.0), ("+5", 1.0), ("5e1", 1.0), ("0x32", 1.0)],
)
def test_retry_after_is_delay_seconds_or_nothing(
    mode: Mode,
    make_fake: FakeFactory,
    retry_after: str,
    wait: float,
) -> None:
    # Before: float() read "5_0" as 50 s. Not digits: as if absent, the 1 s least backoff.
    fake = make_fake(rate_limits=None)
    job_id = fake.add_job("item-update")
    fake.inject(Fault.rate_limited(retry_after))
    clock = VirtualClock()
    settings = client_options(fake, MemoryRateLimiter(clock=clock), max_retry_after=60.0)
    started = clock()
    assert call(mode, settings, OP, job_id, clock=clock).id == job_id
    assert wait <= clock() - started <= wait + 0.25  # + Retry-After's jitter
    assert [r.status for r in fake.request_log] == [429, 200]


NOW = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("007", 7.0),
        (" 120\t", 120.0),
        ("31622400", 31622400.0),  # a year: the most believed
        ("31622401", None),
        ("9" * 5000, None),  # no ValueError from CPython's 4,300-digit limit
        ("Tue, 01 Dec 2026 12:00:30 GMT", 30.0),
        ("Tuesday, 01-Dec-26 12:00:30 GMT", 30.0),  # RFC 850, obsolete but to be accepted
        ("Tue Dec  1 12:00:30 2026", 30.0),  # asctime, likewise
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),  # past: now
        ("Fri, 31 Dec 9999 23:59:59 GMT", None),  # beyond a year
        ("Mon, 30 Feb 2026 12:00:00 GMT", None),  # no such day
        ("Tue, 01 Dec 2026 12:00:30 +0000", None),  # an e-mail date, not an HTTP-date
        ("Tue, 01 Dec 2026 12:00:30 gmt", None),
        ("5_0", None),
        ("2.5", None),
        ("1e3", None),
        ("-5", None),
        ("+5", None),
        ("٣", None),  # a digit to str.isdigit(), not to HTTP
        ("²", None),
        ("", None),
        ("inf", None),
    ],
)
def test_retry_after_grammar(value: str, seconds: float | None) -> None:
    assert retry_after_seconds({"retry-after": value}, now=NOW) == seconds


def test_read_digits_saturates_instead_of_converting_thousands_of_digits() -> None:
    assert read_digits("0" * 100 + "42") == 42
    assert read_digits("1" + "0" * 15) == SATURATED
    assert read_digits("9" * 100_000) == SATURATED
    assert http_date("Tue, 01 Dec 2026 12:00:30 GMT" + " " * 100 + "x") is None


def observation(limit: str | None, remaining: str | None, reset: str | None) -> Any:
    headers = {
        name: value
        for name, value in (
            ("ratelimit-limit", limit),
            ("ratelimit-remaining", remaining),
            ("ratelimit-reset", reset),
        )
        if value is not None
    }
    return rate_limit_observation(headers, 60.0)


@pytest.mark.parametrize(
    ("limit", "remaining", "reset", "expected"),
    [
        ("750", "700", "42", Observation(750, 700, 42.0)),
        # Klaviyo's draft form: the quota, then each window's; the longest window's caps
        # Remaining, which then never cuts the steady budget down to the burst's.
        ("75, 75;w=1, 750;w=60", "749", "42", Observation(750, 749, 42.0)),
        ("10;w=1, 150;w=60", "149", "3", Observation(150, 149, 3.0)),
        ("1, 1;w=1, 2;w=60, 225;w=86400", "0", "0", Observation(225, 0, 0.0)),
        ('750;w=60;policy="steady"', "1", "5", Observation(750, 1, 5.0)),
        ("750", "700", "1000000000", Observation(750, 700, 60.0)),  # capped at max_reset
        ("750", "700", "1" + "0" * 303, Observation(750, 700, 60.0)),
        ("75, , 750;w=60", "1", "5", None),  # an empty item
        ("75;w=abc", "1", "5", None),
        ("n/a", "1", "5", None),
        (",".join(["75"] * 17), "1", "5", None),  # past MAX_LIMIT_ITEMS
        ("5_0", "1", "5", None),
        ("750", "5_0", "5", None),
        ("750", "-1", "5", None),
        ("750", str(MAX_BUDGET + 1), "5", None),
        ("750", "1", "1e308", None),
        ("750", "1", "2.5", None),
        ("750", "1", None, None),
        (None, "1", "5", None),
    ],
)
def test_rate_limit_headers_grammar(
    limit: str | None, remaining: str | None, reset: str | None, expected: Observation | None
) -> None:
    assert observation(limit, remaining, reset) == expected


HEADER_TEXT = st.text(alphabet=st.sampled_from("0123456789 ,;=w.e-_+\tnaif٣²"), max_size=40)


@PROFILE
@given(limit=HEADER_TEXT, remaining=HEADER_TEXT, reset=HEADER_TEXT)
def test_rate_limit_headers_never_raise_and_stay_bounded(
    limit: str, remaining: str, reset: str
) -> None:
    found = observation(limit, remaining, reset)
    if found is not None:
        assert 0 <= found.limit <= MAX_BUDGET and 0 <= found.remaining <= MAX_BUDGET
        assert 0.0 <= found.reset_seconds <= 60.0


def test_the_draft_form_limit_holds_later_calls_until_the_reset(
    mode: Mode, make_fake: FakeFactory
) -> None:
    # Before: int("75, 75;w=1, 750;w=60") failed, and the spent budget was not seen at all.
    fake = make_fake(rate_limits=None)
    headers = budget("3", limit="75, 75;w=1, 750;w=60")
    assert 3.0 - 0.01 <= waited_after(mode, fake, headers) <= 3.0 + 0.01


def test_max_retry_after_beyond_a_year_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="max_retry_after"):
        CatalogJobs("pk_test", max_retry_after=1e9)


# --- 12. a fresh OAuth token in no frame of a traceback -----------------------------------------

TOKEN = "kat_hostile_0123456789abcdefOLD"
FRESH = "kat_hostile_9f3a1c7e2b4d6f80NEW"


def frames_of(error: BaseException) -> Iterator[FrameType]:
    """Every frame of `error`'s traceback and of the exceptions chained to it."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            yield tb.tb_frame
            tb = tb.tb_next
        todo += [current.__cause__, current.__context__]


def frames_showing(error: BaseException, secret: str) -> list[str]:
    """The frames outside the tests whose locals show `secret`, as an error tracker that
    records locals (their reprs) would: "function: name" for each."""
    shown = []
    for frame in frames_of(error):
        if "/tests/" in frame.f_code.co_filename:
            continue  # the test's own frames: the app's code, which made the token
        for name, value in frame.f_locals.items():
            if secret in repr(value):
                shown.append(f"{frame.f_code.co_name}: {name}")
    return shown


@pytest.mark.parametrize(
    "returned",
    [FRESH, FRESH + "\n", {"access_token": FRESH}, FRESH + "\x00"],
    ids=["valid-then-401", "trailing-newline", "a-dict", "a-nul"],
)
def test_a_fresh_token_is_in_no_frame_of_the_error(
    mode: Mode, make_fake: FakeFactory, returned: object
) -> None:
    # Before: the refresh's frame (`fresh`) and checked_secret's (`value`) kept it.
    fake = make_fake(access_tokens=[TOKEN])
    job_id = fake.add_job("item-update")
    handed_out = iter([TOKEN, returned])
    settings = {
        "access_token": lambda: next(handed_out),
        "base_url": fake.base_url,
        "rate_limiter": MemoryRateLimiter(),
        "max_retries": 0,
    }
    fake.revoke_access_token(TOKEN)  # the first token expired: a refresh, then an error
    with pytest.raises(KlaviyoError) as caught:
        call(mode, settings, OP, job_id)
    expected = AuthenticationError if returned == FRESH else ConfigurationError
    assert isinstance(caught.value, expected)
    assert frames_showing(caught.value, FRESH) == []
