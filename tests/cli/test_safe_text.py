"""Server text made safe where it reaches a person (`klaviyo_catalog._text`), and the library's
log lines, which carry server text (error details, request ids) as their arguments."""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from klaviyo_catalog import BulkJob
from klaviyo_catalog._text import Shown, csv_cell, escape, escape_json
from klaviyo_catalog.errors import ServerError
from klaviyo_catalog.testing import FakeKlaviyo

from tests.support.hardening_support import Mode, call, json_body, options, use

# Terminal controls (OSC 8 link, clear screen, BEL, NUL, an 8-bit CSI), a forged log line,
# a bidi override, an invisible tag character: what a merchant may put in a title or an SKU.
EVIL = (
    "\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07\x1b[2J\r\n"
    "2026-01-01 00:00:00,000 INFO forged\x00\u202etxt.exe\x9b31m\U000e0041"
)
HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # controls, format, surrogates, separators
JOINERS = {"\u200c", "\u200d"}  # ZWNJ and ZWJ: writing systems and emoji sequences need them


def hidden(text: str, allowed: str = "") -> list[str]:
    """The characters of `text` a terminal would not show as themselves, but those allowed."""
    return [
        c
        for c in text
        if unicodedata.category(c) in HIDDEN_CATEGORIES and c not in JOINERS and c not in allowed
    ]


def test_every_control_format_separator_and_surrogate_character_is_escaped() -> None:
    everything = "".join(
        chr(code)
        for code in range(0x110000)
        if unicodedata.category(chr(code)) in HIDDEN_CATEGORIES and chr(code) not in JOINERS
    )
    assert hidden(escape(everything)) == []
    assert escape("\x1b") == "\\x1b" and escape("\u202e") == "\\u202e"
    assert escape("\ud800") == "\\ud800" and escape("\U000e0041") == "\\U000e0041"
    assert escape("\r\n\x00\x07\x9b") == "\\x0d\\x0a\\x00\\x07\\x9b"  # shown, never dropped


def test_what_a_person_reads_is_kept_as_it_is() -> None:
    text = "Classic Tee, Black — Größe M, 日本語, עברית, 👨\u200d👩\u200d👧, tab\\t and a\\path"

    assert escape(text) == text


def test_escaped_json_parses_to_the_exact_values() -> None:
    value = {"title": EVIL + "\ud800", "note": "Größe — 日本語 👍"}
    text = escape_json(json.dumps(value, ensure_ascii=False, indent=2))

    assert json.loads(text) == value
    assert hidden(text, allowed="\n") == []  # indentation's line breaks only
    assert "Größe — 日本語 👍" in text  # non-ASCII text is not escaped
    text.encode("utf-8")  # a lone surrogate would not encode


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        (
            '=HYPERLINK("https://evil.example","click")',
            '\'=HYPERLINK("https://evil.example","click")',
        ),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("\uff1d1+1", "'\uff1d1+1"),  # a full-width equals sign
        ("\t=1+1", "\\x09=1+1"),  # escaped: no longer starts with a tab
        ("\r=1+1", "\\x0d=1+1"),
        ("TEE-BLK", "TEE-BLK"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_a_csv_cell_never_starts_a_formula(cell: str, written: str) -> None:
    assert csv_cell(cell) == written


def test_a_log_argument_is_escaped_only_when_formatted() -> None:
    class Counting:
        calls = 0

        def __str__(self) -> str:
            Counting.calls += 1
            return EVIL

    logger = logging.getLogger("tests.safe_text.quiet")
    logger.setLevel(logging.WARNING)
    logger.info("%s", Shown(Counting()))
    assert Counting.calls == 0  # nothing formatted while the level is off

    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "a %s b %r", (Shown(EVIL),) * 2, None
    )
    message = record.getMessage()
    assert hidden(message) == [] and "\\x1b]8;;" in message and "\\u202e" in message


def test_retry_log_lines_escape_the_server_detail_and_request_id(
    mode: Mode, make_fake: Callable[..., FakeKlaviyo], caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake(rate_limits=None)
    job_id = fake.add_job("item-update")
    body = {"errors": [{"status": 503, "code": "down", "title": "Down", "detail": EVIL}]}
    # Header values are Latin-1: a C1 control (8-bit CSI) and NEL are what one can carry.
    fake.inject(json_body(body, 503, **{"X-Klaviyo-Req-Id": "req-\x9b2J\x85forged"}), times=2)
    client = options(fake.base_url, fake.api_key, max_retries=1)

    with (
        caplog.at_level(logging.DEBUG, logger="klaviyo_catalog"),
        pytest.raises(ServerError) as caught,
    ):
        call(mode, client, "get_item_update_job", job_id)

    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith("retry 1 of 1") for line in lines), lines
    assert sum("req-\\x9b2J\\x85forged" in line for line in lines) == 3  # 2 attempts, 1 retry
    assert all(hidden(line) == [] for line in lines), lines
    assert any("\\x1b]8;;https://evil.example/\\x07click" in line for line in lines)
    # The error itself keeps the server's exact values: only the log line is escaped.
    assert caught.value.errors[0].detail == EVIL
    assert caught.value.request_id == "req-\x9b2J\x85forged"


@pytest.mark.parametrize("kind", ["variant-update", "item-update"])  # by its list, and by GET
def test_a_wait_round_that_broke_off_logs_the_server_detail_escaped(
    mode: Mode, kind: str, make_fake: Callable[..., FakeKlaviyo], caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake(rate_limits=None)
    job_id = fake.add_job(kind, status="processing", polls_to_complete=3)
    body = {"errors": [{"status": 503, "code": "down", "title": "Down", "detail": EVIL}]}
    client = options(fake.base_url, fake.api_key, max_retries=0)
    get = f"get_{kind.replace('-', '_')}_job"

    def work(kc: Any) -> Any:
        def wait(job: BulkJob) -> Any:
            fake.inject(json_body(body, 503))  # the wait's first poll fails; the next one not
            return kc.wait_for_jobs([job], poll_interval=0.01, timeout=10)

        if mode == "sync":
            return wait(getattr(kc, get)(job_id))

        async def in_loop() -> list[BulkJob]:
            return [done async for done in wait(await getattr(kc, get)(job_id))]

        return in_loop()

    with caplog.at_level(logging.WARNING, logger="klaviyo_catalog"):
        finished = use(mode, client, work)

    assert [job.id for job in finished] == [job_id]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "this round" in warnings[0], warnings
    assert hidden(warnings[0]) == [] and "\\x1b]8;;https://evil.example/" in warnings[0]
