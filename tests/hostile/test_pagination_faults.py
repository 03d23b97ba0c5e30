"""Nothing is lost or repeated while walking 1,000+ jobs through faults, sync and async.

FakeKlaviyo's cursors stand for "after job N", so any gap or duplicate seen here is the
client's: a retried page yielded twice, a page skipped after an error, or a resume that
starts from the wrong cursor.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from klaviyo_catalog import (
    KlaviyoError,
    RateLimitError,
    ServerError,
    TransportError,
)
from klaviyo_catalog.testing import FakeKlaviyo, Fault

from tests.support.hardening_support import Mode, call, consume, options, use

PAGE_SIZE = 50
RANDOM_FAULTS = [
    Fault.status(500),
    Fault.status(502),
    Fault.status(503),
    Fault.status(504),
    Fault.reset(),
    Fault.reset(mid_body=False),
    Fault.rate_limited("0"),
]


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    return make_fake(page_size=PAGE_SIZE)


def seed(fake: FakeKlaviyo) -> list[str]:
    """1,050 processing item-create jobs, interleaved with jobs the walk must not see."""
    wanted: list[str] = []
    for _ in range(21):
        wanted += fake.add_jobs("item-create", 50, status="processing")
        fake.add_jobs("item-create", 3, status="queued")  # filtered out by status
        fake.add_job("variant-update", status="processing")  # another endpoint
    return wanted


def successful_cursors(fake: FakeKlaviyo) -> list[str | None]:
    return [
        r.query.get("page[cursor]") for r in fake.request_log if r.status == 200 and not r.fault
    ]


def test_a_walk_through_random_faults_sees_every_job_once_in_order(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    wanted = seed(fake)
    fake.inject_random(0.3, RANDOM_FAULTS, seed=7)
    opts = options(fake.base_url, fake.api_key, max_retries=10)
    jobs = call(mode, opts, "iter_item_create_jobs", status="processing")
    assert [job.id for job in jobs] == wanted
    faults = Counter(r.fault for r in fake.request_log if r.fault)
    assert sum(faults.values()) >= 5 and set(faults) >= {"status", "reset"}  # it was tested
    cursors = successful_cursors(fake)
    assert len(cursors) == len(set(cursors)) == len(wanted) // PAGE_SIZE  # each page once
    assert all(r.query["filter"] == 'equals(status,"processing")' for r in fake.request_log)


def walk_until_error(
    mode: Mode, opts: dict[str, Any], fake: FakeKlaviyo, after: int, fault: Fault
) -> tuple[list[str], KlaviyoError | None]:
    """Walk, injecting a burst of `fault` (one more than the retries) once `after` jobs are
    seen; return the ids seen and the error that ended the walk."""
    seen: list[str] = []
    burst = opts["max_retries"] + 1
    if after == 0:
        fake.inject(fault, times=burst)

    def note(job: Any) -> None:
        seen.append(job.id)
        if len(seen) == after:
            fake.inject(fault, times=burst)

    try:
        use(mode, opts, lambda kc: consume(kc.iter_item_create_jobs(), note))
    except KlaviyoError as error:
        return seen, error
    return seen, None


@pytest.mark.parametrize("after", [0, 3 * PAGE_SIZE, 20 * PAGE_SIZE], ids=["first", "4th", "last"])
@pytest.mark.parametrize(
    ("fault", "error_class"),
    [(Fault.status(503), ServerError), (Fault.reset(), TransportError)],
    ids=["503", "reset"],
)
def test_a_walk_resumes_from_the_cursor_of_its_error(
    mode: Mode, fake: FakeKlaviyo, after: int, fault: Fault, error_class: type[KlaviyoError]
) -> None:
    wanted = fake.add_jobs("item-create", 1050, status="processing")
    opts = options(fake.base_url, fake.api_key, max_retries=1)
    seen, error = walk_until_error(mode, opts, fake, after, fault)
    assert isinstance(error, error_class)
    assert seen == wanted[:after]  # the failed page yielded nothing
    assert (error.cursor is None) == (after == 0)
    fake.reset_log()
    rest = call(mode, opts, "iter_item_create_jobs", cursor=error.cursor)
    assert fake.request_log[0].query.get("page[cursor]") == error.cursor
    union = seen + [job.id for job in rest]
    assert union == wanted  # no gap, no duplicate, same order


def test_an_app_resume_loop_without_retries_loses_nothing(mode: Mode, fake: FakeKlaviyo) -> None:
    # No retries at all: every fault surfaces, and the app resumes from error.cursor each time.
    wanted = seed(fake)
    fake.inject_random(0.4, RANDOM_FAULTS, seed=11)
    opts = options(fake.base_url, fake.api_key, max_retries=0)
    seen: list[str] = []
    cursor: str | None = None
    errors: Counter[str] = Counter()
    for _ in range(200):  # bounded: a resume that never progressed would loop forever
        try:
            walk = functools.partial(_walk_from, cursor=cursor, seen=seen)
            use(mode, opts, walk)
            break
        except (ServerError, TransportError, RateLimitError) as error:
            errors[type(error).__name__] += 1
            cursor = error.cursor
    else:
        pytest.fail("the walk never finished")
    assert seen == wanted
    assert sum(errors.values()) >= 5 and len(errors) >= 2  # resumed often, after varied errors


def _walk_from(kc: Any, *, cursor: str | None, seen: list[str]) -> Any:
    """Walk the processing item-create jobs from `cursor`, noting each id in `seen`."""
    jobs = kc.iter_item_create_jobs(status="processing", cursor=cursor)
    return consume(jobs, lambda job: seen.append(job.id))
