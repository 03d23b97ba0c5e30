"""FakeKlaviyo.finish_when_seen and `fake-server --finish-within`: running jobs that finish
within a given time of the first time a client sees them, whenever that is.

The README's first example relies on it (tests/project/test_readme.py runs it against the fake
server); these check the fake's side over loopback HTTP, in under a second each.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from klaviyo_catalog import CatalogJobs, JobStatus
from klaviyo_catalog._cli._fake_server import seed
from klaviyo_catalog.cli import main
from klaviyo_catalog.testing import FakeKlaviyo

from tests.support.hardening_support import MODES, Mode, call, options


@pytest.fixture
def fake() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo() as server:
        yield server


def test_a_job_stays_as_it_is_until_a_client_sees_it(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update", status="processing", total=10)  # shown half done
    other = fake.add_job("item-update", status="complete")
    (delay,) = fake.finish_when_seen(0.05, job_ids=[job_id]).values()
    assert 0 <= delay <= 0.05
    with CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
        time.sleep(0.1)  # twice the time given; a request for another job starts no clock
        kc.get_item_update_job(other)
        assert fake.job_attributes(job_id)["status"] == "processing"
        seen = kc.get_item_update_job(job_id)
        # From the progress it showed, not back to 0.
        assert seen.status is JobStatus.PROCESSING and seen.completed_count >= 4
        done = kc.wait_for_job(seen, poll_interval=0.02, timeout=5)
    assert done.status is JobStatus.COMPLETE and done.completed_count == 10


@pytest.mark.parametrize("mode", MODES)
def test_listed_jobs_finish_within_the_time_given(fake: FakeKlaviyo, mode: Mode) -> None:
    ids = fake.add_jobs("item-create", 30, status="processing", total=10)
    finished = fake.add_job("item-create", status="complete")
    delays = fake.finish_when_seen(0.5, seed=5)
    assert sorted(delays) == sorted(ids) and finished not in delays  # running jobs only
    client = options(fake.base_url, fake.api_key)
    listed_at = time.monotonic()
    running = call(mode, client, "iter_item_create_jobs", status="processing")
    assert len(running) == 30
    done = call(mode, client, "wait_for_jobs", running, poll_interval=0.1, timeout=10)
    elapsed = time.monotonic() - listed_at
    assert sorted(job.id for job in done) == sorted(ids)
    assert all(job.status is JobStatus.COMPLETE and job.completed_count == 10 for job in done)
    assert elapsed < 5  # 0.5 s and a poll or two; 10 s would be the timeout


def test_finish_when_seen_is_reproducible_and_refuses_a_bad_time(fake: FakeKlaviyo) -> None:
    ids = fake.add_jobs("variant-update", 5, status="queued")
    first = fake.finish_when_seen(10.0, seed=3)
    assert fake.finish_when_seen(10.0, seed=3) == first and len(set(first.values())) == 5
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="within"):
            fake.finish_when_seen(bad)
    fake.finish_when_seen(0.0, job_ids=ids[:2])  # 0: complete as soon as first served
    fake.set_job(ids[0], status="processing")  # but a status set by hand sticks, as documented
    with CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
        assert kc.get_variant_update_job(ids[0]).status is JobStatus.PROCESSING
        assert kc.get_variant_update_job(ids[1]).status is JobStatus.COMPLETE


def test_the_fake_servers_backlog_drains_and_its_examples_keep_their_roles() -> None:
    with FakeKlaviyo() as fake, CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
        examples = seed(fake, finish_within=0.3)
        running = list(kc.iter_item_create_jobs(status="processing"))
        assert len(running) > 100
        done = list(kc.wait_for_jobs(running, poll_interval=0.1, timeout=10))
        assert len(done) == len(running)
        stuck = kc.get_variant_update_job(examples["variant-update-stuck"])
        assert stuck.status is JobStatus.PROCESSING  # `jobs wait` on it still shows a timeout
        time.sleep(0.4)
        assert kc.get_variant_update_job(stuck.id).status is JobStatus.PROCESSING


def test_without_the_option_the_fake_servers_backlog_stays_running() -> None:
    with FakeKlaviyo() as fake, CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
        seed(fake)
        first = kc.list_item_create_jobs(status="processing").data[0]
        time.sleep(0.1)
        again = kc.list_item_create_jobs(status="processing").data[0]
        assert again.id == first.id and again.completed_count == first.completed_count


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_fake_server_refuses_a_finish_time_that_is_not_positive(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fake-server", "--finish-within", value]) == 2
    assert "--finish-within" in capsys.readouterr().err
