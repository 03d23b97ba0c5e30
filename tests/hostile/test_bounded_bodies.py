"""Response bodies are streamed, decoded as they arrive and capped at `max_response_bytes`
(decoded): a huge or endless body, or a gzip bomb, is an InvalidResponseError, not the memory."""

from __future__ import annotations

import json
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from klaviyo_catalog import CatalogJobs, ConfigurationError, InvalidResponseError
from klaviyo_catalog._body import DEFAULT_MAX_RESPONSE_BYTES
from klaviyo_catalog._deadline import Deadline
from klaviyo_catalog._flow import Send
from klaviyo_catalog.testing import FakeKlaviyo, Fault, VirtualClock

from tests.support.documents import job_body as job_document
from tests.support.hardening_support import Mode, call, options
from tests.support.virtual_clock import Played, Served, VirtualDriver, virtual_core


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    fake = make_fake(rate_limits=None)
    fake.add_job("item-update", job_id="J1")
    return fake


def get_job(mode: Mode, fake: FakeKlaviyo, **overrides: Any) -> Any:
    """get_item_update_job("J1") through either client, without retries."""
    client_options = options(fake.base_url, fake.api_key, max_retries=0, **overrides)
    return call(mode, client_options, "get_item_update_job", "J1")


def gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# --- sans-I/O: the Body ------------------------------------------------------------------------


def constant(answer: Served) -> Callable[[Any], Served]:
    return lambda send: answer


def peak_memory_refusing(match: str, call: Callable[[], object]) -> int:
    """The most memory Python held while `call` raised InvalidResponseError matching `match`."""
    tracemalloc.start()
    try:
        with pytest.raises(InvalidResponseError, match=match):
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def served(payload: bytes, *headers: tuple[str, str], pieces: int = 1) -> Served:
    step = max(1, -(-len(payload) // pieces))
    chunks = [(0.0, payload[i : i + step]) for i in range(0, len(payload), step)]
    return Served(chunks=chunks, headers=[("Content-Type", "application/json"), *headers])


@pytest.mark.parametrize(
    "encoding, encode",
    [
        ("gzip", gzip),
        ("x-gzip", gzip),
        ("deflate", zlib.compress),  # with the zlib wrapper, as the RFC says
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw, as some servers send it
        ("identity", lambda data: data),
    ],
)
def test_compressed_bodies_are_decoded_as_they_arrive(encoding: str, encode: Any) -> None:
    clock = VirtualClock()
    core = virtual_core(clock)
    payload = encode(job_document("JOB1"))
    driver = VirtualDriver(
        clock, lambda send: served(payload, ("Content-Encoding", encoding), pieces=7)
    )
    job = driver.run(core.get_job("get_item_update_job", "JOB1", None, None))
    assert job.id == "JOB1"
    assert driver.sends[0].request.headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "compress"])
def test_an_encoding_that_was_not_asked_for_is_refused(encoding: str) -> None:
    clock = VirtualClock()
    core = virtual_core(clock)
    driver = VirtualDriver(clock, lambda send: served(b"xx", ("Content-Encoding", encoding)))
    with pytest.raises(InvalidResponseError, match="Content-Encoding"):
        driver.run(core.get_job("get_item_update_job", "JOB1", None, None))


def test_garbage_claiming_to_be_gzip_is_an_invalid_response() -> None:
    clock = VirtualClock()
    core = virtual_core(clock)
    driver = VirtualDriver(clock, lambda send: served(b"not gzip", ("Content-Encoding", "gzip")))
    with pytest.raises(InvalidResponseError, match="compressed"):
        driver.run(core.get_job("get_item_update_job", "JOB1", None, None))


def test_a_body_one_byte_over_the_cap_is_refused_and_one_at_the_cap_is_not() -> None:
    clock = VirtualClock()
    payload = job_document("JOB1")
    for cap, ok in ((len(payload), True), (len(payload) - 1, False)):
        core = virtual_core(clock, max_response_bytes=cap)
        for encoded in (payload, gzip(payload)):
            headers = [("Content-Encoding", "gzip")] if encoded is not payload else []
            driver = VirtualDriver(clock, constant(served(encoded, *headers, pieces=5)))
            flow = core.get_job("get_item_update_job", "JOB1", None, None)
            if ok:
                assert driver.run(flow).id == "JOB1"
            else:
                with pytest.raises(InvalidResponseError, match="max_response_bytes"):
                    driver.run(flow)


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    clock = VirtualClock()
    core = virtual_core(clock, max_response_bytes=1000)

    def answer(send: Any) -> Served:
        return Served(chunks=[], headers=[("Content-Length", "5000")])

    driver = VirtualDriver(clock, answer)
    with pytest.raises(InvalidResponseError, match="max_response_bytes=1000"):
        driver.run(core.get_job("get_item_update_job", "JOB1", None, None))


def test_a_gzip_bomb_costs_no_more_than_the_cap() -> None:
    bomb = Fault.gzip_bomb(1 << 30).payload  # 1 GiB of spaces in about 1 MB
    assert len(bomb) < 1_100_000
    clock = VirtualClock()
    core = virtual_core(clock, max_response_bytes=10 * 1024 * 1024)
    pieces = [(0.0, bomb[i : i + 65536]) for i in range(0, len(bomb), 65536)]
    answer = Served(chunks=pieces, headers=[("Content-Encoding", "gzip")])
    driver = VirtualDriver(clock, lambda send: answer)
    get = core.get_job("get_item_update_job", "JOB1", None, None)
    peak = peak_memory_refusing("max_response_bytes", lambda: driver.run(get))
    assert peak < 10 * 1024 * 1024 + 4 * 1024 * 1024  # the cap, plus a decoding step or two


def test_the_body_checks_the_deadline_after_each_chunk() -> None:
    clock = VirtualClock()
    deadline = Deadline.start(clock, 2.0)

    def chunks() -> Iterator[bytes]:
        yield b"{"
        clock.advance(2.0)
        yield b"}"

    request = httpx.Request("GET", "http://127.0.0.1:9/")
    response = httpx.Response(200, stream=Played(chunks()), request=request)
    with pytest.raises(TimeoutError, match="deadline"):
        Send(request, max_bytes=100, deadline=deadline, what="op").read(response)
    assert response.is_closed


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "50"])
def test_max_response_bytes_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_response_bytes"):
        CatalogJobs("pk_x", max_response_bytes=bad)


# --- over loopback HTTP ------------------------------------------------------------------------


def test_an_endless_body_is_an_invalid_response(mode: Mode, fake: FakeKlaviyo) -> None:
    fake.inject(Fault.endless())
    started = time.monotonic()
    with pytest.raises(InvalidResponseError, match="max_response_bytes=2000000"):
        get_job(mode, fake, max_response_bytes=2_000_000)
    assert time.monotonic() - started < 2.5


def test_a_declared_500_mb_body_is_refused_before_reading(mode: Mode, fake: FakeKlaviyo) -> None:
    fake.inject(Fault.oversized(500 * 10**6))
    peak = peak_memory_refusing("larger than", lambda: get_job(mode, fake))
    assert peak < 8 * 1024 * 1024


def test_a_one_megabyte_gzip_bomb_stays_within_the_default_cap(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    bomb = Fault.gzip_bomb(1 << 30)
    assert len(bomb.payload) < 1_100_000
    fake.inject(bomb)
    peak = peak_memory_refusing("max_response_bytes", lambda: get_job(mode, fake))
    # Before: 2.1 GB. Now the default cap (50 MiB) and a few MiB of decoding and buffers.
    assert peak < DEFAULT_MAX_RESPONSE_BYTES + 10 * 1024 * 1024


def test_a_gzipped_job_reads_as_the_job(mode: Mode, fake: FakeKlaviyo) -> None:
    fake.inject(Fault.body(200, gzip(job_document("J1")), headers=(("Content-Encoding", "gzip"),)))
    assert get_job(mode, fake).id == "J1"


def test_json_of_a_huge_body_under_the_cap_still_reads(fake: FakeKlaviyo) -> None:
    # A generous cap: a 2 MB document (far beyond Klaviyo's) passes.
    document = json.loads(job_document("J1"))
    document["data"]["attributes"]["errors"] = [{"detail": "x" * 1000}] * 2000
    fake.inject(Fault.body(200, json.dumps(document).encode()))
    assert len(get_job("sync", fake).errors) == 2000
