"""Parsing is bounded: what a response document may cost is checked on its bytes before
json.loads runs (depth, objects and arrays, values), integers are bounded whatever the
interpreter allows, a job's included resources and a page's jobs are capped, and a large body
is parsed off the event loop within the call's deadline. Whatever is accepted serialises,
pickles and deep-copies.

The bounds live in `_bounds` (sans-I/O); these tests drive it directly, then the core on the
virtual clock, then both clients against FakeKlaviyo.
"""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from klaviyo_catalog import (
    AsyncCatalogJobs,
    BadRequestError,
    BulkJob,
    DeadlineExceededError,
    InvalidResponseError,
    Item,
)
from klaviyo_catalog import _bounds as bounds
from klaviyo_catalog import _jsonapi as jsonapi
from klaviyo_catalog._body import DEFAULT_MAX_RESPONSE_BYTES
from klaviyo_catalog._flow import Call
from klaviyo_catalog._parse import PARSE_OFF_LOOP_BYTES
from klaviyo_catalog.testing import FakeKlaviyo, Fault, VirtualClock

from tests.support import documents as docs
from tests.support.hardening_support import PROFILE, Mode, call, json_body, options, run_async
from tests.support.virtual_clock import Served, VirtualDriver, virtual_core

CREATE = "catalog-item-bulk-create-job"


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    return make_fake(rate_limits=None)


def get_job(mode: Mode, fake: FakeKlaviyo, job_id: str = "J1", **overrides: Any) -> Any:
    """get_item_update_job(job_id, include=["items"]) through either client, no retries."""
    client_options = options(fake.base_url, fake.api_key, max_retries=0, **overrides)
    return call(mode, client_options, "get_item_update_job", job_id, include=["items"])


def nested(depth: int, leaf: Any = 1) -> Any:
    """A value of `depth` nested containers, objects and arrays in turn, around `leaf`."""
    value = leaf
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def refusal(body: bytes) -> str | None:
    """What `_bounds.check` says of `body`: None if it passes, else its message."""
    try:
        bounds.check(body)
    except ValueError as exc:
        return str(exc)
    return None


def constant(body: bytes) -> Callable[[Any], Served]:
    """A virtual server that answers every request with `body`."""
    return lambda send: Served(chunks=[(0.0, body)])


def depth_of(value: Any) -> int:
    """The nesting of objects and arrays in decoded JSON (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


# --- _bounds: the structure, read from the bytes --------------------------------------------------

# Strings full of what the scan must not mistake for structure: brackets, commas, quotes and
# backslashes (escaped by json.dumps), non-ASCII (raw or escaped).
TRICKY_TEXT = st.text(st.sampled_from('[]{},"\\:é\u2028 a'), max_size=6)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY_TEXT, inner, max_size=4),
    max_leaves=40,
)


@PROFILE
@given(JSON_VALUES, st.integers(bounds.MAX_DEPTH - 3, bounds.MAX_DEPTH + 3), st.booleans())
def test_the_depth_read_from_the_bytes_is_the_documents(
    value: Any, chain: int, ascii_only: bool
) -> None:
    # A chain around the depth bound, with tricky siblings at its top and bottom.
    document = {"data": [value, nested(chain, value)], "s": ']]]"}'}
    body = json.dumps(document, ensure_ascii=ascii_only).encode()
    problem = refusal(body)
    if depth_of(document) > bounds.MAX_DEPTH:
        assert problem == f"it nests deeper than {bounds.MAX_DEPTH} levels"
    else:
        assert problem is None
        assert json.loads(body) == document


def test_a_document_at_each_bound_passes_and_one_past_it_is_refused() -> None:
    deepest = json.dumps(nested(bounds.MAX_DEPTH)).encode()
    assert refusal(deepest) is None
    assert "deeper than 64" in (refusal(json.dumps(nested(bounds.MAX_DEPTH + 1)).encode()) or "")
    most = bounds.MAX_CONTAINERS - 1  # empty objects in one array
    assert refusal(b"[" + b",".join([b"{}"] * most) + b"]") is None
    assert "100,001 objects and arrays" in (
        refusal(b"[" + b",".join([b"{}"] * (most + 1)) + b"]") or ""
    )
    values = bounds.MAX_VALUES  # commas: one value more than that
    assert refusal(b"[" + b"0," * values + b"0]") is None
    assert "500,001 values" in (refusal(b"[" + b"0," * (values + 1) + b"0]") or "")


def test_brackets_and_commas_inside_strings_are_not_structure() -> None:
    # 200,000 brackets and commas, all inside strings (escaped quotes among them): one object.
    text = '[{,"\\' * 40_000
    assert refusal(json.dumps({"title": text, "more": [text] * 3}).encode()) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": {"type": "catalog-item-bulk-up',  # cut short
        b"][",
        b'{"a": 1}\x00',
        b"<html><body>" + b"[" * 100 + b"</body></html>",
    ],
)
def test_a_body_that_is_not_json_is_never_refused_as_too_deep(body: bytes) -> None:
    problem = refusal(body)
    assert problem is not None and "deeper" not in problem
    response = httpx.Response(200, content=body)
    with pytest.raises(InvalidResponseError, match="not JSON"):
        jsonapi.decode(response, "op")


def test_a_refused_document_costs_little_whatever_it_holds() -> None:
    # Worst cases for the scan itself, each 16 MiB (the default cap): milliseconds, not seconds.
    size = DEFAULT_MAX_RESPONSE_BYTES
    for body in (
        b"[" * size,
        b"[" + b'"[",' * (size // 4 - 1) + b"0]",  # 4 million strings holding brackets
        b"[" + b"0.5," * (size // 4 - 1) + b"0]",  # 4 million floats: 1.3 s in json.loads
    ):
        started = time.process_time()
        with pytest.raises(bounds.Refused):
            bounds.check(body)
        assert time.process_time() - started < 1.0  # about 0.05 to 0.3 s here


# --- integers -------------------------------------------------------------------------------------


@pytest.fixture
def unlimited_int_digits() -> Iterator[None]:
    """An app that lifted Python's limit on integer digits (0: no limit at all)."""
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)


@pytest.mark.usefixtures("unlimited_int_digits")
def test_integers_are_bounded_whatever_the_interpreter_allows() -> None:
    def body(digits: int) -> bytes:
        return b'{"data": {"n": ' + b"9" * digits + b"}}"

    longest = jsonapi.decode(httpx.Response(200, content=body(bounds.MAX_INT_DIGITS)), "op")
    assert longest["data"]["n"] == 10**bounds.MAX_INT_DIGITS - 1
    with pytest.raises(InvalidResponseError, match="an integer of 4,301 digits; at most 4,300"):
        jsonapi.decode(httpx.Response(200, content=body(bounds.MAX_INT_DIGITS + 1)), "op")


@pytest.mark.usefixtures("unlimited_int_digits")
def test_a_4_mb_integer_is_refused_at_once(mode: Mode, fake: FakeKlaviyo) -> None:
    # Before: past 60 s converting it, whatever the deadline.
    fake.inject(Fault.body(200, b'{"data": {"total_count": ' + b"7" * 4_000_000 + b"}}"))
    started = time.monotonic()
    with pytest.raises(InvalidResponseError, match="4,000,000 digits"):
        get_job(mode, fake, deadline=5)
    assert time.monotonic() - started < 3


@pytest.mark.usefixtures("unlimited_int_digits")
def test_an_error_body_with_a_4_mb_integer_still_reports_the_status(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    fake.inject(Fault.body(400, b'{"errors": [{"status": ' + b"4" * 4_000_000 + b"}]}"))
    started = time.monotonic()
    with pytest.raises(BadRequestError) as caught:
        get_job(mode, fake, deadline=5)
    assert caught.value.status_code == 400 and caught.value.errors == []
    assert time.monotonic() - started < 3


# --- resources: included, jobs per page -----------------------------------------------------------


def job_with_included(count: int) -> bytes:
    ids = [f"I{i}" for i in range(count)]
    return json.dumps(
        docs.single(docs.job("J1", linkage=ids), [docs.item(i) for i in ids])
    ).encode()


def test_a_job_with_more_included_resources_than_a_bulk_job_can_hold_is_refused() -> None:
    clock = VirtualClock()
    core = virtual_core(clock)
    for count, ok in ((bounds.MAX_INCLUDED, True), (bounds.MAX_INCLUDED + 1, False)):
        body = job_with_included(count)
        driver = VirtualDriver(clock, constant(body))
        flow = core.get_job("get_item_update_job", "J1", ["items"], None)
        if ok:
            assert len(driver.run(flow).items or ()) == count
        else:
            with pytest.raises(InvalidResponseError, match="included holds 2,001 resources"):
                driver.run(flow)


def test_a_page_of_more_jobs_than_klaviyo_sends_is_refused(mode: Mode, fake: FakeKlaviyo) -> None:
    jobs = [docs.job(f"J{i}", CREATE) for i in range(bounds.MAX_PAGE_JOBS + 1)]
    fake.inject(json_body(docs.collection(jobs, None)))
    client_options = options(fake.base_url, fake.api_key, max_retries=0)
    with pytest.raises(InvalidResponseError, match="data holds 1,001 resources") as caught:
        call(mode, client_options, "list_item_create_jobs")
    assert caught.value.status_code == 200


def test_the_reported_44_mib_document_is_refused_within_the_deadline_and_the_loop_runs(
    make_fake: Callable[..., FakeKlaviyo],
) -> None:
    # The issue: 2.3 MB of gzip decoding to 44.6 MiB, 500,000 included items (under the old
    # 50 MiB cap). With deadline=2 one call took 7.2 s with the loop blocked for all of it,
    # so three concurrent calls failed on their deadlines.
    item = b'{"type":"catalog-item","id":"$custom:::$default:::ITEM-%07d",'
    item += b'"attributes":{"title":"xxx"}},'
    items = b"".join(item % i for i in range(500_000))
    body = b'{"data":' + docs.job_body("BIG")[len(b'{"data": ') : -1] + b',"included":['
    body += items[:-1] + b"]}"
    assert 44 * 2**20 < len(body) < 46 * 2**20
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    gzipped = compressor.compress(body) + compressor.flush()
    hostile, good = make_fake(rate_limits=None), make_fake(rate_limits=None)
    hostile.inject(Fault.body(200, gzipped, headers=(("Content-Encoding", "gzip"),)))
    good.add_job("item-update", job_id="J1", items=3)

    async def main() -> tuple[list[Any], float, float]:
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.005)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        async with (
            AsyncCatalogJobs(**options(hostile.base_url, hostile.api_key, deadline=2)) as bad,
            AsyncCatalogJobs(**options(good.base_url, good.api_key, deadline=2)) as kc,
        ):
            tick = asyncio.create_task(ticker())
            started = time.monotonic()
            outcomes = await asyncio.gather(
                bad.get_item_update_job("BIG", include=["items"]),
                *(kc.get_item_update_job("J1", include=["items"]) for _ in range(3)),
                return_exceptions=True,
            )
            elapsed = time.monotonic() - started
            done.set()
            await tick
        return outcomes, elapsed, max(gaps)

    outcomes, elapsed, stalled = run_async(main())
    refused, *others = outcomes
    assert isinstance(refused, InvalidResponseError) and "max_response_bytes" in str(refused)
    assert [job.id for job in others] == ["J1"] * 3  # none lost its deadline
    assert elapsed < 2 and stalled < 1


def test_a_document_within_the_cap_but_past_the_bounds_is_refused_off_the_loop(
    make_fake: Callable[..., FakeKlaviyo],
) -> None:
    # 13 MB, under the 16 MiB cap: 120,000 included items are past MAX_CONTAINERS, refused
    # before json.loads (which would take a second or more) in a worker thread.
    item = b'{"type":"catalog-item","id":"ITEM-%07d","attributes":{"title":"%s"}},'
    items = b"".join(item % (i, b"x" * 40) for i in range(120_000))
    body = docs.job_body("BIG")[:-1] + b',"included":[' + items[:-1] + b"]}"
    assert len(body) < DEFAULT_MAX_RESPONSE_BYTES
    hostile = make_fake(rate_limits=None)
    hostile.inject(Fault.body(200, body))

    async def main() -> tuple[BaseException | BulkJob, float]:
        gaps: list[float] = []
        async with AsyncCatalogJobs(**options(hostile.base_url, hostile.api_key)) as bad:
            task = asyncio.ensure_future(bad.get_item_update_job("BIG", include=["items"]))
            last = time.monotonic()
            while not task.done():
                await asyncio.sleep(0.005)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()
            return task.exception() or task.result(), max(gaps)

    refused, stalled = run_async(main())
    assert isinstance(refused, InvalidResponseError)
    assert "objects and arrays" in str(refused) and stalled < 1


# --- the core: large bodies are parsed in a worker thread, within the deadline --------------------


def test_a_large_body_is_parsed_in_a_call_and_a_small_one_inline() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, deadline=30)
    small = docs.job_body("J1")
    large = docs.job_body("J1", note="x" * PARSE_OFF_LOOP_BYTES)
    for body, calls in ((small, 0), (large, 1)):
        driver = VirtualDriver(clock, constant(body))
        assert driver.run(core.get_job("get_item_update_job", "J1", None, None)).id == "J1"
        assert len(driver.call_timeouts) == calls
    assert driver.call_timeouts == [pytest.approx(30)]  # the time the deadline left


def test_a_parse_that_outlasts_the_deadline_is_a_deadline_error() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, deadline=2)
    body = docs.job_body("J1", note="x" * PARSE_OFF_LOOP_BYTES)

    def slow(action: Call, clock: VirtualClock) -> Any:
        assert action.timeout is not None
        clock.advance(action.timeout)  # the worker thread is still at it
        return TimeoutError()

    driver = VirtualDriver(clock, constant(body), calls=slow)
    with pytest.raises(DeadlineExceededError, match="reading the response document"):
        driver.run(core.get_job("get_item_update_job", "J1", None, None))


def test_a_large_body_is_parsed_off_the_event_loop(
    mode: Mode, fake: FakeKlaviyo, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.inject(Fault.body(200, docs.job_body("J1", note="x" * PARSE_OFF_LOOP_BYTES)))
    threads: list[threading.Thread] = []
    read = jsonapi.job_document

    def recording(*args: Any, **kwargs: Any) -> BulkJob:
        threads.append(threading.current_thread())
        return read(*args, **kwargs)

    monkeypatch.setattr(jsonapi, "job_document", recording)
    assert get_job(mode, fake).id == "J1"
    # Async: a worker thread, never the loop's (the test's). Sync: a worker too, as the
    # deadline (120 s by default) is enforced by the wait on it.
    assert threads and threads[0] is not threading.main_thread()


# --- whatever is accepted serialises, pickles and deep-copies -------------------------------------


def deep_job_body() -> bytes:
    """A job document nested MAX_DEPTH deep three ways: an attribute of the job (the document,
    data and attributes are the first three levels), an error's meta (the document, data,
    attributes, errors, the error and meta are six) and an included item's metadata (four)."""
    deepest = bounds.MAX_DEPTH
    error = {"detail": "d", "meta": {"k": nested(deepest - 6)}}
    job = docs.job("J1", linkage=["I1"], errors=[error], blob=nested(deepest - 3))
    item = docs.item("I1")
    item["attributes"]["custom_metadata"] = nested(deepest - 4)
    document = docs.single(job, [item])
    assert depth_of(document) == deepest
    return json.dumps(document).encode()


def test_a_body_nested_960_deep_is_refused(mode: Mode, fake: FakeKlaviyo) -> None:
    # Before: accepted, then to_json(), pickle or deepcopy of the job raised RecursionError.
    deep = b"[" * 960 + b"1" + b"]" * 960  # json.loads reads it; json.dumps cannot write it
    fake.inject(
        Fault.body(200, docs.job_body("J1", blob=0).replace(b'"blob": 0', b'"blob": ' + deep))
    )
    with pytest.raises(InvalidResponseError, match="deeper than 64 levels"):
        get_job(mode, fake)


def test_the_deepest_accepted_job_serialises_pickles_and_deep_copies(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    fake.inject(Fault.body(200, deep_job_body()))
    job = get_job(mode, fake)
    assert depth_of(job.raw) == bounds.MAX_DEPTH - 1
    assert pickle.loads(pickle.dumps(job)) == job
    assert copy.deepcopy(job) == job
    item = (job.items or [])[0]
    assert isinstance(item, Item)
    as_json = json.loads(job.to_json())
    assert as_json["errors"][0]["meta"] == job.errors[0].meta
    assert as_json["items"][0]["custom_metadata"] == item.raw["attributes"]["custom_metadata"]
    for value in (item, job.errors[0]):
        assert copy.deepcopy(pickle.loads(pickle.dumps(value))) == value
        assert json.loads(value.to_json()) == json.loads(json.dumps(value.to_dict()))
