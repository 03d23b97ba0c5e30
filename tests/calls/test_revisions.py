"""Revision strings and Klaviyo's revision lifecycle: parsing, status, warnings, 410 Gone."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import warnings

import pytest
from klaviyo_catalog import (
    APIError,
    AsyncCatalogJobs,
    CatalogJobs,
    ConfigurationError,
    KlaviyoDeprecationWarning,
    RevisionRetiredError,
    RevisionStatus,
    revision_lifecycle,
)
from klaviyo_catalog._revisions import Revision
from klaviyo_catalog.testing import FakeKlaviyo
from klaviyo_catalog_api.catalog_spec import REVISION

from tests.support.hardening_support import run_async

TODAY = dt.datetime.now(dt.UTC).date()


def revision_aged(days: int) -> str:
    """A revision string dated `days` before today, so tests never depend on the calendar."""
    return (TODAY - dt.timedelta(days=days)).isoformat()


DEPRECATED = revision_aged(365 + 180)
RETIRED = revision_aged(3 * 365)
STABLE = revision_aged(30)


@pytest.mark.parametrize("text", ["2026-07-15", "2024-10-15.pre", "2023-01-24.beta_2"])
def test_revision_strings_parse_and_print_back(text: str) -> None:
    assert str(Revision.parse(text)) == text


@pytest.mark.parametrize(
    "text", [" 2023-01-24", "2023-01-24 ", "latest", "2023-02-30", "2023-1-24", "", "2023-01-24."]
)
def test_malformed_revisions_are_configuration_errors(text: str) -> None:
    with pytest.raises(ConfigurationError, match="revision"):
        Revision.parse(text)


@pytest.mark.parametrize("value", [None, 20230124, b"2023-01-24"])
def test_a_revision_that_is_no_string_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ConfigurationError):
        Revision.parse(value)


def test_revisions_compare_as_dates_and_a_preview_before_its_release() -> None:
    ordered = ["2022-10-17", "2023-01-24", "2024-10-15.pre", "2024-10-15", "2026-07-15"]
    shuffled = [ordered[i] for i in (3, 0, 4, 2, 1)]
    assert [str(r) for r in sorted(Revision.parse(t) for t in shuffled)] == ordered


@pytest.mark.parametrize(
    ("revision", "status"),
    [
        # Klaviyo's own listing in late October 2026: 2022-2024 retired, 2025 deprecated.
        ("2022-10-17", RevisionStatus.RETIRED),
        ("2024-10-15", RevisionStatus.RETIRED),
        ("2025-01-15", RevisionStatus.DEPRECATED),
        ("2025-10-15", RevisionStatus.DEPRECATED),
        ("2026-01-15", RevisionStatus.STABLE),
        ("2026-07-15", RevisionStatus.STABLE),
    ],
)
def test_lifecycle_matches_klaviyos_listing(revision: str, status: RevisionStatus) -> None:
    assert revision_lifecycle(revision, today=dt.date(2026, 10, 20)).status is status


def test_lifecycle_dates_and_boundaries() -> None:
    life = revision_lifecycle("2025-04-15", today=dt.date(2026, 4, 14))
    assert life.status is RevisionStatus.STABLE
    assert (life.released_on, life.deprecated_on, life.retired_on) == (
        dt.date(2025, 4, 15),
        dt.date(2026, 4, 15),
        dt.date(2027, 4, 15),
    )
    on = revision_lifecycle
    assert on("2025-04-15", today=dt.date(2026, 4, 15)).status is RevisionStatus.DEPRECATED
    assert on("2025-04-15", today=dt.date(2027, 4, 14)).status is RevisionStatus.DEPRECATED
    assert on("2025-04-15", today=dt.date(2027, 4, 15)).status is RevisionStatus.RETIRED
    assert on("2024-02-29", today=dt.date(2026, 2, 28)).status is RevisionStatus.RETIRED


def test_the_shipped_revision_is_not_retired_at_generation() -> None:
    # The generated revision, judged on its own date: a client always starts out usable.
    released = Revision.parse(REVISION).date
    assert revision_lifecycle(REVISION, today=released).status is RevisionStatus.STABLE


def test_a_deprecated_revision_warns_once_at_construction(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="klaviyo_catalog"):
        with pytest.warns(KlaviyoDeprecationWarning) as record:
            CatalogJobs("pk_test", revision=DEPRECATED).close()
        with pytest.warns(KlaviyoDeprecationWarning):
            CatalogJobs("pk_test", revision=DEPRECATED).close()
    assert len(record) == 1
    message = str(record[0].message)
    retires = revision_lifecycle(DEPRECATED).retired_on.isoformat()
    assert "deprecated" in message and retires in message and "make curate SPEC=" in message
    assert record[0].filename == __file__  # points at the app's line, not the library's
    assert [r.getMessage() for r in caplog.records].count(message) == 1  # logged once


def test_a_retired_revision_warns_that_it_is_retired() -> None:
    with pytest.warns(KlaviyoDeprecationWarning, match="was retired on") as record:
        AsyncCatalogJobs("pk_test", revision=RETIRED)
    assert issubclass(record[0].category, DeprecationWarning)


def test_a_stable_revision_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CatalogJobs("pk_test", revision=STABLE).close()


@pytest.mark.parametrize("revision", [" 2023-01-24", "latest", "2023-13-01"])
def test_a_client_refuses_a_malformed_revision(revision: str) -> None:
    with pytest.raises(ConfigurationError, match="revision"):
        CatalogJobs("pk_test", revision=revision)


def test_410_gone_is_revision_retired_error_with_advice() -> None:
    with FakeKlaviyo(retire_revisions_on=TODAY) as fake:
        job_id = fake.add_job("item-update", status="complete")
        with (
            pytest.warns(KlaviyoDeprecationWarning),
            CatalogJobs(fake.api_key, base_url=fake.base_url, revision=RETIRED) as kc,
            pytest.raises(RevisionRetiredError) as raised,
        ):
            kc.get_item_update_job(job_id)
        assert isinstance(raised.value, APIError) and raised.value.status_code == 410
        assert RETIRED in str(raised.value) and "make curate SPEC=" in str(raised.value)
        assert len(fake.request_log) == 1  # not retried: retrying cannot help

        async def main() -> None:
            async with AsyncCatalogJobs(
                fake.api_key, base_url=fake.base_url, revision=RETIRED
            ) as kc:
                await kc.get_item_update_job(job_id)

        with pytest.warns(KlaviyoDeprecationWarning), pytest.raises(RevisionRetiredError):
            run_async(main())


def test_the_fake_serves_old_revisions_unless_asked_to_retire_them() -> None:
    with FakeKlaviyo() as fake:
        job_id = fake.add_job("item-update", status="complete")
        with (
            pytest.warns(KlaviyoDeprecationWarning),
            CatalogJobs(fake.api_key, base_url=fake.base_url, revision=RETIRED) as kc,
        ):
            assert kc.get_item_update_job(job_id).id == job_id


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLAVIYO_")}
    return subprocess.run(
        [sys.executable, "-m", "klaviyo_catalog", *args],
        env={**env, "KLAVIYO_API_KEY": "pk_test_cli"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_cli_refuses_a_malformed_revision_as_a_usage_error() -> None:
    run = cli("--revision", "banana", "jobs", "list", "item-create")
    assert run.returncode == 2 and "banana" in run.stderr and "YYYY-MM-DD" in run.stderr


def test_cli_prints_the_deprecation_warning_once() -> None:
    with FakeKlaviyo(api_key="pk_test_cli") as fake:
        fake.add_job("item-create", status="processing")
        run = cli(
            "--base-url", fake.base_url, "--revision", DEPRECATED, "jobs", "list", "item-create"
        )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("deprecated") == 1 and run.stderr.startswith("warning: ")
