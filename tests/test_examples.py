"""The scripts in examples/ run as a user would run them, against FakeKlaviyo (and Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from klaviyo_catalog.testing import FakeKlaviyo, running_redis_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def fake() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo() as fake:
        yield fake


def run(
    script: str, *args: str, fake: FakeKlaviyo, env: Mapping[str, str] = {}
) -> tuple[int, str, str]:
    """The script's exit status, stdout and stderr."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KLAVIYO_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env={**base, "KLAVIYO_API_KEY": fake.api_key, "KLAVIYO_BASE_URL": fake.base_url, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_monitor_job_follows_a_job_to_completion(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update", status="processing", total=4, polls_to_complete=3)
    code, out, err = run("monitor_job.py", job_id, fake=fake)
    assert code == 0, err
    assert f"{job_id}: processing" in out and f"{job_id}: complete 100%" in out


def test_monitor_job_reports_failed_items(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update", status="complete", total=3, failed=1)
    code, out, err = run("monitor_job.py", job_id, fake=fake)
    assert code == 1, out + err
    assert "error: " in err


def test_list_backlog_counts_every_page(fake: FakeKlaviyo) -> None:
    fake.add_jobs("item-create", 130, status="processing")
    fake.add_jobs("item-create", 5, status="complete")
    fake.add_jobs("variant-update", 2, status="queued")
    code, out, err = run("list_backlog.py", fake=fake)
    assert code == 0, err
    assert "item-create: 135 jobs (complete: 5, processing: 130)" in out
    assert "variant-update: 2 jobs (queued: 2)" in out


def test_shared_limits_fetches_jobs_from_four_processes(fake: FakeKlaviyo) -> None:
    job_ids = [fake.add_job("item-update", status="complete", total=2) for _ in range(6)]
    with running_redis_server() as redis:
        code, out, err = run("shared_limits.py", *job_ids, fake=fake, env={"REDIS_URL": redis.url})
    assert code == 0, err
    assert [line.split(":")[0] for line in out.splitlines()] == job_ids
