"""The scripts in examples/ run as a user would run them, against FakeKlaviyo (and Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping

import pytest
from klaviyo_catalog.testing import FakeKlaviyo, running_redis_server

from tests.support.paths import ROOT

EXAMPLES = ROOT / "examples"


@pytest.fixture
def fake() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo() as fake:
        yield fake


def run(
    script: str, *args: str, fake: FakeKlaviyo | None, env: Mapping[str, str] = {}
) -> tuple[int, str, str]:
    """The script's exit status, stdout and stderr; without a fake, with no KLAVIYO_ variable
    and a base URL nothing listens on (so nothing can reach Klaviyo)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KLAVIYO_", "REDIS_"))}
    if fake is None:
        base["KLAVIYO_BASE_URL"] = "http://127.0.0.1:9"  # discard: refused at once
    else:
        base.update(KLAVIYO_API_KEY=fake.api_key, KLAVIYO_BASE_URL=fake.base_url)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env={**base, **env},
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


def test_monitor_job_exits_3_when_the_job_outlives_the_timeout(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update", status="processing")
    code, out, err = run("monitor_job.py", job_id, "--timeout", "0.3", fake=fake)
    assert code == 3, out + err
    assert "still processing after 0.3 s" in err


KEY = {"KLAVIYO_API_KEY": "pk_example_key_never_sent"}


@pytest.mark.parametrize(
    ("script", "args", "env", "says"),
    [
        ("monitor_job.py", [], KEY, "the following arguments are required: JOB_ID"),
        ("monitor_job.py", ["01JOB"], {}, "KLAVIYO_API_KEY"),
        ("monitor_job.py", ["01JOB", "--timeout", "0"], KEY, "not a positive number"),
        ("monitor_job.py", [""], KEY, "job_id must be a non-empty string"),
        ("list_backlog.py", [], {}, "KLAVIYO_API_KEY"),
        ("list_backlog.py", ["extra"], KEY, "unrecognized arguments: extra"),
        ("shared_limits.py", [], KEY, "the following arguments are required: JOB_ID"),
        ("shared_limits.py", ["01JOB"], KEY, "set REDIS_URL"),
        ("shared_limits.py", ["01JOB"], {"REDIS_URL": "redis://127.0.0.1:9/0"}, "KLAVIYO_API_KEY"),
        ("shared_limits.py", ["01JOB"], {**KEY, "REDIS_URL": "nonsense"}, "Redis URL must"),
    ],
)
def test_an_example_run_wrongly_prints_its_usage_and_exits_2(
    script: str, args: list[str], env: dict[str, str], says: str
) -> None:
    code, out, err = run(script, *args, fake=None, env=env)
    assert code == 2, out + err
    # The usage line (after a deprecation warning, when the generated revision is an old one).
    usage = [line for line in err.splitlines() if line.startswith("usage: ")]
    assert usage and usage[0].startswith("usage: KLAVIYO_API_KEY=pk_... ")
    assert f"python {script}" in err
    assert says in err and "Traceback" not in err
    assert out == ""


def test_low_level_lists_and_gets_through_the_generated_client(fake: FakeKlaviyo) -> None:
    running = fake.add_jobs("item-create", 3, status="processing")
    fake.add_jobs("item-create", 2, status="complete")
    job_id = fake.add_job("item-update", status="complete", items=4)
    code, out, err = run("low_level.py", job_id, fake=fake)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("HTTP 200, request id ")
    assert lines[1:4] == [f"{i}: processing" for i in running]  # the filter reached the fake
    assert lines[4] == f"{job_id}: complete, 4 items included"


def test_low_level_reports_an_error_response(fake: FakeKlaviyo) -> None:
    code, out, err = run("low_level.py", "NO-SUCH-JOB", fake=fake)
    assert code == 1 and "error: HTTP 404" in err, out + err
    code, _, err = run("low_level.py", fake=None)
    assert code == 2 and "usage:" in err
