"""Fixtures every test module shares: the sync/async `mode` and a FakeKlaviyo factory.

The tests are grouped by what they test (calls, limits, waiting, hostile, cli, spec, fake,
project); what they share is in `tests.support`. The one runner of either client is in
`tests.support.hardening_support`: `use(mode, options, work)` and `call(mode, options, name,
...)` on a fresh client, `Loop` for a loop kept over a whole test, `run_async` for a coroutine
of the test's own; no test module runs an event loop otherwise. `mode` parametrizes a test over
both clients, so that sync and async are proven by one test body.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

# Imported up front, so that no pytester run in a worker is the first to import it: an
# in-process run drops what it imported first from sys.modules, and a second copy of anyio
# then escapes httpcore's mapping of its errors (BrokenResourceError instead of ReadError).
import anyio  # noqa: F401
import pytest
from klaviyo_catalog.testing import FakeKlaviyo

from tests.support.hardening_support import MODES, Mode


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Mode:
    """ "sync" (CatalogJobs) or "async" (AsyncCatalogJobs): the test runs once with each."""
    result: Mode = request.param
    return result


@pytest.fixture
def make_fake() -> Iterator[Callable[..., FakeKlaviyo]]:
    """Start a FakeKlaviyo with the given options; each is stopped after the test, which fails
    if the fake hit an internal error (a bug of the fake, not of the client)."""
    started: list[FakeKlaviyo] = []

    def make(**options: Any) -> FakeKlaviyo:
        fake = FakeKlaviyo(**options).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()
    assert [error for fake in started for error in fake.internal_errors] == []


# --- no silent skips in CI ------------------------------------------------------------------------

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note every skipped test (on the xdist controller too, where the reports arrive)."""
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With CI=true a skip is a failure: what a test needs (redis-server, Prism, openssl, the
    spec extracts) is installed by .ci/run or is in the repository, so a skip there means a
    test did not run that CI claims to have run."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller decides
        return
    if os.environ.get("CI") == "true" and _skipped and exitstatus == pytest.ExitCode.OK:
        names = "\n  ".join(sorted(set(_skipped)))
        print(f"\nCI=true, and {len(_skipped)} tests were skipped:\n  {names}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
