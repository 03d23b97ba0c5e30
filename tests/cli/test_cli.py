"""The `klaviyo-catalog` CLI, run for real: `python -m klaviyo_catalog` against a FakeKlaviyo."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import logging
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import attrs
import pytest
from klaviyo_catalog import BulkJob, CatalogJobs, Item, ResourceRef, RetryPolicy
from klaviyo_catalog._cli import main
from klaviyo_catalog._cli._reach import unreachable as unreachable_host
from klaviyo_catalog._cli._render import job_json, related_table, table
from klaviyo_catalog.testing import FakeKlaviyo, Fault
from klaviyo_catalog_api.catalog_spec import KINDS

from tests.support.hardening_support import closed_port

SECRET = "pk_test_cli_0123456789abcdefSECRET"  # must never appear in any output
PROCESSING = 25  # item-create jobs listed as processing; pages of 10, so three pages
HAS_PRICE = hasattr(Item, "price")  # the earliest revisions' items have no price


def priced(sample: dict[str, Any], price: float) -> dict[str, Any]:
    """A sample resource, with a price where the generated revision has one."""
    return {**sample, "price": price} if HAS_PRICE else sample


PRODUCTS = [
    priced({"external_id": "TEE-BLK", "title": "Classic Tee, Black"}, 24.0),
    priced({"external_id": "CAP-NVY", "title": "Logo Cap, Navy"}, 18.5),
]


@attrs.frozen
class Run:
    code: int
    out: str
    err: str  # without the revision warning, which is in `warnings`
    warnings: tuple[str, ...] = ()


# Printed first on stderr when the generated revision (the CLI's default) is deprecated or
# retired, as after `make curate` of an old revision; the tests of that warning are elsewhere.
REVISION_WARNING = "warning: Klaviyo API revision "


def without_revision_warning(code: int, out: str, err: str) -> Run:
    lines = err.splitlines(keepends=True)
    warned = tuple(line for line in lines if line.startswith(REVISION_WARNING))
    assert len(warned) <= 1, err  # printed once
    # With -v the same warning is also logged (a WARNING record on the same stream).
    logged = REVISION_WARNING.removeprefix("warning: ")
    rest = [
        line
        for line in lines
        if not line.startswith(REVISION_WARNING) and not (warned and f"WARNING {logged}" in line)
    ]
    return Run(code, out, "".join(rest), warned)


@attrs.frozen
class Seeded:
    fake: FakeKlaviyo
    item_update: str
    variant_update: str
    category_update: str
    stuck: str


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    with FakeKlaviyo(api_key=SECRET, rate_limits=None, page_size=10) as fake:
        for i in range(PROCESSING + 5):
            fake.add_job("item-create", status="complete" if i % 6 == 5 else "processing")
        yield Seeded(
            fake,
            item_update=fake.add_job("item-update", status="complete", items=PRODUCTS, failed=1),
            variant_update=fake.add_job(
                "variant-update",
                status="complete",
                items=[priced({"sku": "TEE-BLK-M", "title": "Classic Tee / M"}, 24.0)],
            ),
            category_update=fake.add_job(
                "category-update", status="complete", items=[{"name": "Apparel"}]
            ),
            stuck=fake.add_job("variant-update", status="processing", total=50),
        )
    assert fake.internal_errors == []


@pytest.fixture
def fake(seeded: Seeded) -> FakeKlaviyo:
    seeded.fake.clear_faults()
    seeded.fake.reset_log()
    return seeded.fake


def environment(fake: FakeKlaviyo | None, key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLAVIYO_")}
    if key is not None:
        env["KLAVIYO_API_KEY"] = key
    if fake is not None:
        env["KLAVIYO_BASE_URL"] = fake.base_url
    return env


def check_output(run: Run, key: str | None) -> Run:
    """What every run must honour: no key, no traceback, errors as one line."""
    for secret in {SECRET, key or SECRET}:
        assert secret not in run.out + run.err
    assert "Traceback" not in run.err
    if run.code != 0:
        assert run.err.startswith("error: ") and run.err.count("\n") == 1, run.err
    return run


def cli(
    *args: str,
    fake: FakeKlaviyo | None,
    key: str | None = SECRET,
    extra_env: Mapping[str, str] | None = None,
) -> Run:
    """Run the CLI's `main` in this process, as `klaviyo-catalog` in a pipe.

    In-process keeps the suite fast (a fresh interpreter costs ~0.2 s of CPU a run); the entry
    point itself, signals and terminals are tested in real processes by `cli_process` below.
    Both streams encode strictly to UTF-8, as a terminal's or a pipe's do: text that cannot be
    encoded (a lone surrogate) fails the run, as it would for real.
    """
    out, err = utf8_stream(), utf8_stream()
    library = logging.getLogger("klaviyo_catalog")
    handlers, level = list(library.handlers), library.level
    env = {**environment(fake, key), **(extra_env or {})}
    try:
        with (
            mock.patch.dict(os.environ, env, clear=True),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = main(list(args))
    finally:  # `-v` adds a handler on the library's logger: leave it as it was
        library.handlers[:] = handlers
        library.setLevel(level)
    return check_output(without_revision_warning(code, written(out), written(err)), key)


def utf8_stream() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", newline="\n")


def written(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8")


def cli_process(*args: str, fake: FakeKlaviyo | None, key: str | None = SECRET) -> Run:
    """Run `python -m klaviyo_catalog` in a fresh interpreter: the entry point, for real."""
    done = subprocess.run(
        [sys.executable, "-m", "klaviyo_catalog", *args],
        env=environment(fake, key),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return check_output(without_revision_warning(done.returncode, done.stdout, done.stderr), key)


# `python -m klaviyo_catalog` with Ctrl-C raising KeyboardInterrupt, as in an interactive shell,
# even where the tests run as a background job (which inherits SIGINT ignored, and so would
# the CLI).
AS_IN_A_SHELL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('klaviyo_catalog', run_name='__main__', alter_sys=True)"
)


def in_terminal(*args: str, fake: FakeKlaviyo, columns: int) -> tuple[subprocess.Popen[bytes], int]:
    """Start the CLI with stdout on a pseudo-terminal, as in an interactive shell; returns the
    process and the terminal's end to read."""
    leader, follower = pty.openpty()
    env = {**environment(fake, SECRET), "COLUMNS": str(columns), "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-c", AS_IN_A_SHELL, *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    return process, leader


def read_to_exit(process: subprocess.Popen[bytes], leader: int, seconds: float) -> bytes:
    """What the process writes to the terminal until it exits, read all along: a terminal
    nobody reads fills up and blocks the writer."""
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([leader], [], [], 0.1)[0]:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif process.poll() is not None:
            break
    return out


def stderr_of(process: subprocess.Popen[bytes]) -> str:
    assert process.stderr is not None
    with process.stderr:
        return process.stderr.read().decode()


def cli_in_terminal(*args: str, fake: FakeKlaviyo, columns: int = 120) -> Run:
    """Run with stdout on a pseudo-terminal until it exits."""
    process, leader = in_terminal(*args, fake=fake, columns=columns)
    try:
        out = read_to_exit(process, leader, 20)
        code = process.wait(timeout=5)
    finally:
        os.close(leader)
    return check_output(without_revision_warning(code, out.decode(), stderr_of(process)), SECRET)


def data_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("01J")]


# --- jobs list -------------------------------------------------------------------------------


def test_list_prints_a_table_and_stops_fetching_at_the_limit(fake: FakeKlaviyo) -> None:
    run = cli("jobs", "list", "item-create", "--status", "processing", "--limit", "15", fake=fake)

    assert run.code == 0
    header = run.out.splitlines()[0].split()
    assert header[:2] == ["ID", "STATUS"] and "CREATED" in header
    rows = data_lines(run.out)
    assert len(rows) == 15
    assert all(row.split()[1] == "processing" for row in rows)
    assert "15 processing item-create jobs (stopped at --limit 15)" in run.out
    # 15 jobs are on the first two pages of 10: the third is never requested.
    assert len([r for r in fake.request_log if "catalog-item-bulk-create-jobs" in r.path]) == 2


def test_list_json_is_one_parseable_object_per_line(fake: FakeKlaviyo) -> None:
    run = cli("jobs", "list", "item-create", "--status", "processing", "--json", fake=fake)

    assert run.code == 0
    jobs = [json.loads(line) for line in run.out.splitlines()]
    assert len(jobs) == PROCESSING  # every page
    assert {job["status"] for job in jobs} == {"processing"}
    assert jobs[0]["kind"] == "item-create"
    assert jobs[0]["type"] == "catalog-item-bulk-create-job"
    assert dt.datetime.fromisoformat(jobs[0]["created_at"]).tzinfo is not None


def test_an_unknown_status_is_a_usage_error_naming_the_known_ones(fake: FakeKlaviyo) -> None:
    run = cli("jobs", "list", "item-create", "--status", "processin", fake=fake)

    assert run.code == 2 and run.out == ""
    assert "'processin' is not a job status" in run.err
    assert "known statuses: cancelled, complete, processing, queued" in run.err
    assert fake.request_log == []


def test_list_says_when_nothing_matches(fake: FakeKlaviyo) -> None:
    run = cli("jobs", "list", "variant-update", "--status", "cancelled", fake=fake)

    assert (run.code, run.out) == (0, "no cancelled variant-update jobs\n")


def test_global_options_work_after_the_subcommand_and_beat_the_environment(
    fake: FakeKlaviyo,
) -> None:
    unused = {"KLAVIYO_BASE_URL": "http://127.0.0.1:9"}  # nothing listens there
    args = ["--base-url", fake.base_url, "--revision", "2023-12-15", "--limit", "1"]

    run = cli("jobs", "list", "variant-update", *args, fake=None, extra_env=unused)

    assert run.code == 0
    assert [r.headers["revision"] for r in fake.request_log] == ["2023-12-15"]


# --- jobs get --------------------------------------------------------------------------------


def test_get_with_include_shows_the_items(seeded: Seeded, fake: FakeKlaviyo) -> None:
    run = cli("jobs", "get", "item-update", seeded.item_update, "--include", fake=fake)

    assert run.code == 0
    assert f"Job        {seeded.item_update}" in run.out
    assert "Status     complete" in run.out
    # The job's error, with the external id of the item its meta.id names (an update job's).
    assert "could not be updated: invalid value. [TEE-BLK]" in run.out
    assert "Items (2)" in run.out
    table = run.out[run.out.index("Items (2)") :].splitlines()[1:]
    header = table[0].split()
    # The view's one-value attributes, in the spec's order; the external id, already part of
    # each id, is left out.
    assert header[:2] == ["ID", "TITLE"] and "EXTERNAL_ID" not in header
    assert "Classic Tee, Black" in table[1] and "Logo Cap, Navy" in table[2]
    assert ("PRICE" in header) == HAS_PRICE
    if HAS_PRICE:
        price = table[0].index("PRICE")  # right-aligned under its header
        assert [row[price : price + 5] for row in table[1:3]] == ["24.00", "18.50"]


@pytest.mark.parametrize(
    ("kind", "job", "shown"),
    [
        ("variant-update", "variant_update", ["TITLE", "TEE-BLK-M", "Classic Tee / M"]),
        ("category-update", "category_update", ["NAME", "Apparel"]),
    ],
)
def test_get_shows_variants_and_categories(
    seeded: Seeded, fake: FakeKlaviyo, kind: str, job: str, shown: list[str]
) -> None:
    run = cli("jobs", "get", kind, getattr(seeded, job), "--include", fake=fake)

    assert run.code == 0
    assert all(text in run.out for text in shown)


def test_get_json_is_one_document(seeded: Seeded, fake: FakeKlaviyo) -> None:
    run = cli("jobs", "get", "item-update", seeded.item_update, "--include", "--json", fake=fake)
    plain = cli("jobs", "get", "item-update", seeded.item_update, "--json", fake=fake)

    assert run.code == 0
    job = json.loads(run.out)
    assert (job["id"], job["status"], job["failed_count"]) == (seeded.item_update, "complete", 1)
    assert dt.datetime.fromisoformat(job["completed_at"])
    assert [item["title"] for item in job["items"]] == [
        "Classic Tee, Black",
        "Logo Cap, Navy",
    ]
    assert job["errors"][0]["meta"] == {"id": "$custom:::$default:::TEE-BLK"}  # an update job's
    # Without --include, the items the job names, by type and id only.
    assert all(item.keys() == {"type", "id"} for item in json.loads(plain.out)["items"])


def test_a_resource_the_server_did_not_include_is_marked() -> None:
    ref = ResourceRef("catalog-item", "$custom:::$default:::GONE")
    job = BulkJob(
        id="01J0",
        kind="catalog-item-bulk-update-job",
        status="complete",
        created_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        completed_at=None,
        expires_at=None,
        total_count=1,
        completed_count=1,
        failed_count=0,
        errors=[],
        items=[ref],
    )

    row = related_table("items", [ref])[1]
    assert row.startswith(ref.id) and row.endswith("(not included)")
    assert job_json(job)["items"] == [{"type": "catalog-item", "id": ref.id}]


# --- jobs wait -------------------------------------------------------------------------------


def test_wait_without_a_terminal_prints_a_plain_line_per_poll(fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update", total=40, failed=2, polls_to_complete=4)

    run = cli("jobs", "wait", "item-update", job_id, "--poll-interval", "0.02", fake=fake)

    assert run.code == 0
    assert "\r" not in run.out and "\x1b" not in run.out
    lines = run.out.splitlines()
    assert "0/1 jobs done  0 completed, 0 failed, 40 items" in lines[0]  # the first get
    assert "1/1 jobs done  38 completed, 2 failed, 40 items" in lines[-4]
    assert lines[-3].startswith(f"job {job_id} is complete after ")
    assert lines[-3].endswith("38 completed, 2 failed, 40 total")
    assert all(line.startswith("  - The catalog-item could not be") for line in lines[-2:])
    assert len(lines) == 4 + 3  # the start and three rounds; the job and its two errors


def test_wait_for_many_jobs_of_a_listable_kind(fake: FakeKlaviyo) -> None:
    ids = fake.add_jobs("item-create", 3, status="processing", total=10)
    for i, job_id in enumerate(ids):
        fake.finish_in(job_id, 0.5 + 0.3 * i)

    run = cli("jobs", "wait", "item-create", *ids, "--poll-interval", "0.1", fake=fake)

    assert run.code == 0
    lines = run.out.splitlines()
    assert "/3 jobs done" in lines[0]
    done = [line.split()[1] for line in lines if line.startswith("job ")]
    assert sorted(done) == sorted(ids)
    assert (
        lines[-1].startswith("3 jobs done in 0:0")
        and "3 complete; 30 items completed" in (lines[-1])
    )


def test_wait_for_an_unknown_item_create_job_exits_1(fake: FakeKlaviyo) -> None:
    run = cli("jobs", "wait", "item-create", "01JNOSUCHJOB", fake=fake)

    assert run.code == 1
    # Fetched by its GET, whose 404 names it.
    assert "HTTP 404" in run.err and "01JNOSUCHJOB" in run.err


def test_wait_json_prints_a_line_per_poll_then_the_jobs(fake: FakeKlaviyo) -> None:
    ids = [fake.add_job("variant-update", total=5, polls_to_complete=n) for n in (2, 3)]

    run = cli(
        "jobs", "wait", "variant-update", *ids, "--poll-interval", "0.02", "--json", fake=fake
    )

    assert run.code == 0
    events = [json.loads(line) for line in run.out.splitlines()]
    assert events[0]["event"] == "progress" and events[0]["done"] == 0 and events[0]["jobs"] == 2
    finished = [e["job"] for e in events if e["event"] == "done"]
    assert sorted(j["id"] for j in finished) == sorted(ids)
    assert all(j["status"] == "complete" and j["completed_count"] == 5 for j in finished)
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["done"] == 2 and progress[-1]["total_items"] == 10
    assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)


def interrupt_in_terminal(
    *args: str, fake: FakeKlaviyo, until: bytes, columns: int = 80
) -> tuple[int, bytes, str]:
    """Run on a pseudo-terminal until the output holds `until`, then press Ctrl-C."""
    process, leader = in_terminal(*args, fake=fake, columns=columns)
    out = b""
    try:
        while until not in out:
            assert select.select([leader], [], [], 20)[0], f"never printed {until!r}: {out!r}"
            out += os.read(leader, 4096)
        process.send_signal(signal.SIGINT)
        out += read_to_exit(process, leader, 30)  # a loaded machine may take a while
        code = process.wait(timeout=10)
    finally:
        os.close(leader)
    return code, out, stderr_of(process)


def test_wait_on_a_terminal_draws_one_bar_that_ticks_fits_and_ends_clean_on_ctrl_c(
    seeded: Seeded, fake: FakeKlaviyo
) -> None:
    code, out, err = interrupt_in_terminal(
        "jobs", "wait", "variant-update", seeded.stuck, "--poll-interval", "30",
        fake=fake, until=b"0:02", columns=70,
    )  # fmt: skip

    frames = [f for f in out.decode().split("\r") if f]
    bars = [f.removesuffix("\x1b[K") for f in frames if f.startswith("[")]
    assert all(f.endswith("\x1b[K") for f in frames if f.startswith("["))
    assert all(len(bar) <= 69 for bar in bars)  # never wider than the terminal
    assert bars[0].startswith("[█") and "0/1 jobs done" in bars[0]  # it is half done
    # Redrawn every second while no poll is due: the elapsed time ticks.
    assert {"0:00", "0:01", "0:02"} <= {bar.rsplit(" ", 1)[-1] for bar in bars}
    # Ctrl-C: the bar's line is ended, the error is one line, the exit status 130.
    assert code == 130
    # (after the one deprecation warning line a retired generated revision gives)
    assert [line for line in err.splitlines() if not line.startswith("warning: ")] == [
        "error: interrupted"
    ]
    assert out.endswith(b"\r\n") and b"Traceback" not in out


def test_a_narrow_terminal_drops_the_item_counts_before_the_bar(
    seeded: Seeded, fake: FakeKlaviyo
) -> None:
    code, out, _ = interrupt_in_terminal(
        "jobs", "wait", "variant-update", seeded.stuck, "--poll-interval", "30",
        fake=fake, until=b"jobs done", columns=40,
    )  # fmt: skip

    bars = [f.removesuffix("\x1b[K") for f in out.decode().split("\r") if f.startswith("[")]
    assert bars and all(len(bar) <= 39 and "items" not in bar for bar in bars)
    assert code == 130


def test_wait_timeout_exits_3(seeded: Seeded, fake: FakeKlaviyo) -> None:
    run = cli(
        "jobs", "wait", "variant-update", seeded.stuck, "--timeout", "0.3",
        "--poll-interval", "0.1", fake=fake,
    )  # fmt: skip

    assert run.code == 3
    assert "still processing" in run.err and "--timeout" in run.err
    assert "0/1 jobs done  25 completed, 0 failed, 50 items" in run.out.splitlines()[0]


# --- jobs watch ------------------------------------------------------------------------------


def test_watch_in_a_pipe_prints_json_lines_of_every_running_job(fake: FakeKlaviyo) -> None:
    with CatalogJobs(SECRET, base_url=fake.base_url) as kc:
        running = {
            j.id
            for status in ("queued", "processing")
            for j in [
                *kc.iter_item_create_jobs(status=status),
                *kc.iter_variant_update_jobs(status=status),
            ]
        }

    run = cli("jobs", "watch", "--count", "2", "--interval", "0.05", fake=fake)

    assert run.code == 0
    lines = [json.loads(line) for line in run.out.splitlines()]
    for poll in (1, 2):
        assert {j["id"] for j in lines if j["poll"] == poll} == running
    assert {j["kind"] for j in lines} == {
        "item-create",
        "variant-update",
    }


def test_watch_on_a_terminal_redraws_a_table(fake: FakeKlaviyo) -> None:
    run = cli_in_terminal("jobs", "watch", "--count", "1", fake=fake)

    assert run.code == 0
    assert run.out.startswith("\x1b[H")
    assert "running jobs (" in run.out
    assert "KIND" in run.out and "item-create" in run.out


# --- errors and exit codes -------------------------------------------------------------------


def test_unknown_job_exits_1(fake: FakeKlaviyo) -> None:
    run = cli("jobs", "get", "item-update", "01JNOSUCHJOB", fake=fake)

    assert run.code == 1
    assert "404" in run.err and "check the job id" in run.err


def test_wrong_key_exits_1_without_printing_it(fake: FakeKlaviyo) -> None:
    run = cli("jobs", "list", "item-create", fake=fake, key="pk_wrong_key_never_shown")

    assert run.code == 1
    assert "401" in run.err and "KLAVIYO_API_KEY" in run.err


def test_unreadable_response_exits_1(fake: FakeKlaviyo) -> None:
    fake.inject(Fault.truncated())

    run = cli("jobs", "list", "item-create", fake=fake)

    assert run.code == 1


def test_a_next_link_without_cursor_lists_the_page_then_exits_1(fake: FakeKlaviyo) -> None:
    attributes = {"status": "queued", "created_at": "2024-05-01T10:00:00+00:00"}
    document = {
        "data": [{"type": "catalog-item-bulk-create-job", "id": "JOB-A", "attributes": attributes}],
        "links": {"next": "https://elsewhere.example/no-cursor"},
    }
    fake.inject(Fault.body(200, json.dumps(document).encode()))

    run = cli("jobs", "list", "item-create", fake=fake)

    assert run.code == 1
    assert "JOB-A" in run.out  # the page's jobs are printed before the walk stops
    assert "no page[cursor]" in run.err and "run it again later" in run.err
    assert len(fake.request_log) == 1  # the other host is never asked


def test_missing_key_exits_2(fake: FakeKlaviyo) -> None:
    run = cli("jobs", "list", "item-create", fake=fake, key=None)

    assert run.code == 2
    assert run.err.startswith("error: no API key: set KLAVIYO_API_KEY")
    assert fake.request_log == []


TOKEN = "kat_cli_token_0123456789SECRET"  # an OAuth access token: never printed either


def test_an_access_token_in_the_environment_is_sent_as_bearer(
    make_fake: Callable[..., FakeKlaviyo],
) -> None:
    server = make_fake(access_tokens=[TOKEN])
    server.add_job("item-create", status="processing")
    env = {"KLAVIYO_ACCESS_TOKEN": TOKEN}

    run = cli("jobs", "list", "item-create", fake=server, key=None, extra_env=env)

    assert run.code == 0, run.err
    assert len(data_lines(run.out)) == 1
    assert [r.headers["authorization"] for r in server.request_log] == [f"Bearer {TOKEN}"]
    assert TOKEN not in run.out + run.err


def test_a_rejected_access_token_exits_1_without_printing_it(
    make_fake: Callable[..., FakeKlaviyo],
) -> None:
    server = make_fake(access_tokens=["kat_another_token"])
    env = {"KLAVIYO_ACCESS_TOKEN": TOKEN}

    run = cli("jobs", "list", "item-create", fake=server, key=None, extra_env=env)

    assert run.code == 1
    assert "KLAVIYO_ACCESS_TOKEN" in run.err and TOKEN not in run.out + run.err


def test_a_key_and_a_token_together_are_a_usage_error(fake: FakeKlaviyo) -> None:
    run = cli("jobs", "list", "item-create", fake=fake, extra_env={"KLAVIYO_ACCESS_TOKEN": TOKEN})

    assert run.code == 2
    assert "unset one of them" in run.err and TOKEN not in run.err
    assert fake.request_log == []


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "get", "item-archive", "01J0"],  # no such kind
        ["jobs", "list", "item-renamed"],
        ["jobs", "list", "item-create", "--limit", "0"],
        ["jobs", "list", "item-create", "--api-key", "x"],  # the key is never an option
        ["jobs", "list", "item-create", "--status", 'complete")'],  # InvalidRequestError
        ["--base-url", "http://example.com", "jobs", "list", "item-create"],  # key in clear
        ["jobs"],
    ],
)
def test_usage_errors_exit_2_on_one_line(fake: FakeKlaviyo, args: Sequence[str]) -> None:
    run = cli(*args, fake=fake)

    assert run.code == 2
    assert fake.request_log == []


def test_help_names_the_key_variable_and_exit_codes() -> None:
    run = cli_process("--help", fake=None)

    assert run.code == 0
    assert "KLAVIYO_API_KEY" in run.out and "3 `jobs wait` timed out" in run.out


# --- fake-server -----------------------------------------------------------------------------


def test_fake_server_serves_seeded_jobs_and_stops_on_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    server = subprocess.Popen(
        [sys.executable, "-m", "klaviyo_catalog", "fake-server", "--ready-file", str(ready)],
        env=environment(None, None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not ready.exists() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        with CatalogJobs(info["api_key"], base_url=info["base_url"]) as kc:
            assert len(kc.list_item_create_jobs(status="processing")) == 100  # a full page
            job = kc.get_item_update_job(info["examples"]["item-update"], include=["items"])
            assert job.items and all(not isinstance(i, ResourceRef) for i in job.items)
            running = kc.get_item_update_job(info["examples"]["item-update-running"])
            assert kc.wait_for_job(running, poll_interval=0.01, timeout=10).is_done
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=10)
    finally:
        server.kill()
        server.wait()

    assert server.returncode == 0, err
    assert f"export KLAVIYO_BASE_URL={info['base_url']}" in out
    assert f"export KLAVIYO_API_KEY={info['api_key']}" in out
    assert "Traceback" not in err
    assert not ready.exists()  # it described a server that is gone


def test_fake_server_on_a_busy_port_exits_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        run = cli("fake-server", "--port", str(busy.getsockname()[1]), fake=None, key=None)

    assert run.code == 2
    assert "choose another --port" in run.err


def test_verbose_logs_requests_and_retries_on_stderr(fake: FakeKlaviyo, seeded: Seeded) -> None:
    fake.inject(Fault.status(503))
    run = cli("-v", "jobs", "get", "item-update", seeded.item_update, fake=fake)
    assert run.code == 0, run.err
    assert "retry 1 of" in run.err  # check_output has made sure the key is in neither stream


def test_errors_csv_pairs_each_failure_with_its_item(fake: FakeKlaviyo, seeded: Seeded) -> None:
    run = cli("jobs", "errors", "item-update", seeded.item_update, "--csv", fake=fake)
    assert run.code == 0, run.err
    header, *rows = list(csv.reader(io.StringIO(run.out)))
    assert header == ["resource_type", "resource_id", "external_id", "code", "pointer", "detail"]
    assert len(rows) == 1  # the job was seeded with one failed item
    row = dict(zip(header, rows[0], strict=True))
    assert row["external_id"] in {p["external_id"] for p in PRODUCTS}
    assert row["resource_type"] == "catalog-item" and row["resource_id"].endswith(
        row["external_id"]
    )
    assert row["detail"]


def test_errors_table_and_a_job_without_errors(fake: FakeKlaviyo, seeded: Seeded) -> None:
    run = cli("jobs", "errors", "item-update", seeded.item_update, fake=fake)
    assert run.code == 0 and run.out.splitlines()[0].split()[:3] == [
        "resource_type",
        "resource_id",
        "external_id",
    ]
    assert run.out.rstrip().endswith("1 error in job " + seeded.item_update + " (complete)")
    clean = cli("jobs", "errors", "category-update", seeded.category_update, fake=fake)
    assert clean.code == 0 and "has no errors" in clean.out


def test_a_wide_table_keeps_the_columns_that_fit_and_says_how_many_it_left_out() -> None:
    rows = [["id-1", "x" * 50, "short", "12.50"], ["id-22", "y", "s", "3.00"]]
    lines = table(["ID", "LONG", "NAME", "PRICE"], rows, numeric={"PRICE"}, width=24)
    # LONG would not fit in 24 columns; the narrower NAME and PRICE after it still do.
    assert lines == [
        "ID     NAME   PRICE",
        "id-1   short  12.50",
        "id-22  s       3.00",
        "(and 1 more column: --json shows all)",
    ]


# --- every kind of the generated table -------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(name for name, k in KINDS.items() if k.get_operation))
def test_get_errors_and_wait_take_every_kind_with_a_get(
    make_fake: Callable[..., FakeKlaviyo], kind: str
) -> None:
    server = make_fake(api_key=SECRET, rate_limits=None)
    job_id = server.add_job(kind, status="complete", failed=1)

    get = cli("jobs", "get", kind, job_id, "--include", "--json", fake=server)
    errors = cli("jobs", "errors", kind, job_id, "--json", fake=server)
    wait = cli("jobs", "wait", kind, job_id, fake=server)

    assert get.code == errors.code == wait.code == 0, get.err + errors.err + wait.err
    assert json.loads(get.out)["id"] == job_id
    assert len(errors.out.splitlines()) == 1
    assert f"job {job_id} is complete" in wait.out


@pytest.mark.parametrize("kind", sorted(name for name, k in KINDS.items() if k.list_operation))
def test_list_wait_and_watch_take_every_listable_kind(
    make_fake: Callable[..., FakeKlaviyo], kind: str
) -> None:
    server = make_fake(api_key=SECRET, rate_limits=None)
    running = server.add_job(kind, status="processing", polls_to_complete=2)

    listed = cli("jobs", "list", kind, "--json", fake=server)
    watched = cli("jobs", "watch", "--count", "1", fake=server)
    wait = cli("jobs", "wait", kind, running, "--poll-interval", "0.01", fake=server)

    assert listed.code == watched.code == wait.code == 0, listed.err + watched.err + wait.err
    assert [json.loads(line)["id"] for line in listed.out.splitlines()] == [running]
    assert [json.loads(line)["id"] for line in watched.out.splitlines()] == [running]
    assert f"job {running} is complete" in wait.out


def test_wait_for_more_ids_than_a_page_holds_finds_them_through_the_list(
    make_fake: Callable[..., FakeKlaviyo],
) -> None:
    server = make_fake(api_key=SECRET, rate_limits=None)
    ids = server.add_jobs("variant-update", 101, status="complete")

    run = cli("jobs", "wait", "variant-update", *ids, "--json", fake=server)

    assert run.code == 0, run.err
    done = [json.loads(line) for line in run.out.splitlines()]
    assert sorted(e["job"]["id"] for e in done if e["event"] == "done") == sorted(ids)
    # Two pages of the list, not 101 GETs.
    assert len(server.request_log) == 2
    assert all(r.path.rstrip("/").endswith("-jobs") for r in server.request_log)


# --- options anywhere, usage errors, unreachable hosts ---------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        ["-v", "jobs", "get", "item-update", "ID"],
        ["jobs", "-v", "get", "item-update", "ID"],
        ["jobs", "get", "-v", "item-update", "ID"],
        ["jobs", "get", "item-update", "ID", "-v"],
        ["jobs", "get", "item-update", "ID", "--verbose"],
    ],
)
def test_verbose_is_taken_anywhere(seeded: Seeded, fake: FakeKlaviyo, where: list[str]) -> None:
    args = [seeded.item_update if arg == "ID" else arg for arg in where]

    run = cli(*args, fake=fake)

    assert run.code == 0, run.err
    assert f"DEBUG GET /api/catalog-item-bulk-update-jobs/{seeded.item_update}" in run.err


def test_without_verbose_nothing_is_logged(seeded: Seeded, fake: FakeKlaviyo) -> None:
    run = cli("jobs", "get", "item-update", seeded.item_update, fake=fake)

    assert (run.code, run.err) == (0, "")


def test_errors_json_prints_one_failure_a_line(seeded: Seeded, fake: FakeKlaviyo) -> None:
    run = cli("jobs", "errors", "item-update", seeded.item_update, "--json", fake=fake)
    clean = cli("jobs", "errors", "category-update", seeded.category_update, "--json", fake=fake)

    assert run.code == clean.code == 0
    [failure] = [json.loads(line) for line in run.out.splitlines()]
    assert failure["error"]["detail"].startswith("The catalog-item could not be updated")
    assert failure["resource"]["type"] == "catalog-item"
    # An update job names the resource by its full id: paired with it.
    assert failure["resource"]["id"] == failure["error"]["meta"]["id"]
    assert clean.out == ""  # no failures: no lines


@pytest.mark.parametrize(
    ("args", "help_of"),
    [
        (["jobs", "get", "item-update", "01J0", "--bogus"], "jobs get"),
        (["jobs", "list", "item-create", "--limit"], "jobs list"),
        (["jobs", "errors", "item-update", "01J0", "--csv", "--json"], "jobs errors"),
        (["jobs", "wait", "item-update", "01J0", "--timeout", "-1"], "jobs wait"),
        (["jobs", "watch", "extra"], "jobs watch"),
        (["fake-server", "--bogus"], "fake-server"),
        (["jobs", "lst"], "jobs"),
        (["--bogus"], ""),
    ],
)
def test_a_usage_error_names_the_help_of_its_command(
    fake: FakeKlaviyo, args: list[str], help_of: str
) -> None:
    run = cli(*args, fake=fake)

    assert run.code == 2
    command = f"klaviyo-catalog {help_of}".rstrip()
    assert run.err.rstrip().endswith(f"see `{command} --help`"), run.err
    assert fake.request_log == []


def test_an_unreachable_host_fails_at_once_naming_the_url() -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()

    run = cli("jobs", "get", "item-update", "01J0", "-v", "--base-url", base_url, fake=None)

    assert run.code == 1
    # One line: no request was made (-v would have logged it), so none was retried.
    assert run.err == f"error: cannot reach {base_url}: connection refused: check --base-url " + (
        f"({base_url}) and the network\n"
    )
    assert time.monotonic() - started < 2  # the library's retries would take 3-5 s


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (socket.gaierror(-2, "Name or service not known"), "the host name a.klaviyo.com does not"),
        (TimeoutError(), "no answer within 5s"),
        (OSError(101, "Network is unreachable"), "Network is unreachable"),
    ],
)
def test_an_unreachable_host_says_why(
    monkeypatch: pytest.MonkeyPatch, failure: OSError, reason: str
) -> None:
    def connect(address: tuple[str, int], timeout: float) -> socket.socket:
        assert address == ("a.klaviyo.com", 443) and timeout == 5
        raise failure

    monkeypatch.setattr(socket, "create_connection", connect)
    run = cli("jobs", "get", "item-update", "01J0", fake=None)

    assert run.code == 1
    assert run.err.startswith(f"error: cannot reach https://a.klaviyo.com: {reason}")


def test_a_proxy_from_the_environment_is_not_second_guessed(
    make_fake: Callable[..., FakeKlaviyo], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loopback base URL is never proxied (plain http would hand the proxy the key): it is
    # checked as any other, and the proxy gets nothing.
    proxy = make_fake(api_key=SECRET)  # serves the absolute-form requests a proxy gets
    job_id = proxy.add_job("item-update")
    unreachable = f"http://127.0.0.1:{closed_port()}"
    env = {"ALL_PROXY": proxy.base_url, "NO_PROXY": ""}
    run = cli("jobs", "get", "item-update", job_id, "--base-url", unreachable, fake=None,
              extra_env=env)  # fmt: skip
    assert run.err.startswith(f"error: cannot reach {unreachable}: connection refused")
    assert proxy.request_log == []
    # A host the pool reaches through the proxy is left to the proxy to judge.
    monkeypatch.setenv("HTTPS_PROXY", proxy.base_url)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("checked"))
    assert unreachable_host("https://klaviyo.invalid") is None


def test_a_connection_lost_after_the_host_answered_names_the_url(
    fake: FakeKlaviyo, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, retry_number: 0.0)
    fake.inject(Fault.reset(mid_body=False), times=5)  # the first attempt and its 4 retries

    run = cli("jobs", "get", "item-update", seeded.item_update, fake=fake)

    assert run.code == 1
    assert "the request failed" in run.err
    assert run.err.rstrip().endswith(f"check --base-url ({fake.base_url}) and the network")
