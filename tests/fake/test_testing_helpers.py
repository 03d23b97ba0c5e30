"""klaviyo_catalog.testing as an app's test suite uses it: fixture isolation, faults, docs."""

from __future__ import annotations

import datetime as dt
import inspect
import subprocess
import sys
import time

import httpx
import pytest
from klaviyo_catalog import CatalogJobs, RateLimitError, testing
from klaviyo_catalog._ratelimit import default_limiter
from klaviyo_catalog.testing import FakeKlaviyo, Fault, isolated_rate_limits, pytest_plugin

pytest_plugins = ["pytester"]

ISOLATION_TESTS = """
import asyncio
import time

import pytest
from klaviyo_catalog import AsyncCatalogJobs, CatalogJobs
from klaviyo_catalog.testing import Fault


def test_a_throttled(fake_klaviyo):
    job_id = fake_klaviyo.add_job("item-update")
    fake_klaviyo.inject(Fault.rate_limited(30))

    async def fetch():
        async with AsyncCatalogJobs(fake_klaviyo.api_key, base_url=fake_klaviyo.base_url) as kc:
            await kc.get_item_update_job(job_id)

    # The app gives up while the call waits out the 429: the account's 30 s pause outlives it,
    # in the process-wide limiter every fake's (same) key shares.
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(fetch(), 0.5))


def test_b_unrelated(FIXTURE):
    fake = FIXTURE() if callable(FIXTURE) else FIXTURE
    job_id = fake.add_job("item-update")
    started = time.monotonic()
    with CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
        kc.get_item_update_job(job_id)
    assert time.monotonic() - started < 10  # not the 30 s pause of the test before
"""


@pytest.mark.parametrize("fixture", ["fake_klaviyo", "fake_klaviyo_factory"])
def test_a_429_in_one_test_never_slows_the_next(pytester: pytest.Pytester, fixture: str) -> None:
    pytester.makepyfile(ISOLATION_TESTS.replace("FIXTURE", fixture))
    # No autoloaded plugins: an in-process run drops from sys.modules whatever it imported
    # first (anyio, by its plugin), and a second anyio breaks httpcore's error mapping for the
    # async tests this worker runs next.
    plugin = ("-p", "klaviyo_catalog.testing.pytest_plugin")
    result = pytester.runpytest_inprocess(
        "--disable-plugin-autoload", *plugin, "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)


def test_isolated_rate_limits_swaps_the_default_and_restores_it() -> None:
    before = default_limiter()
    with isolated_rate_limits() as fresh:
        assert default_limiter() is fresh is not before
        with FakeKlaviyo() as fake, CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
            assert kc.rate_limiter is fresh
    assert default_limiter() is before


# --- the plugin costs nothing until a fixture is used ------------------------------------------

FAKE_MODULE = "klaviyo_catalog.testing._fake"


def test_importing_the_plugin_does_not_import_the_fake() -> None:
    script = f"""
import sys
import klaviyo_catalog.testing.pytest_plugin
print({FAKE_MODULE!r} in sys.modules)
from klaviyo_catalog.testing import FakeKlaviyo  # the public name still works, on first use
print({FAKE_MODULE!r} in sys.modules, FakeKlaviyo.__name__)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "FakeKlaviyo"]


LAZY_SESSION = f"""
import sys

from klaviyo_catalog import CatalogJobs


def test_1_a_test_without_the_fixtures_has_not_loaded_the_fake():
    assert "klaviyo_catalog.testing.pytest_plugin" in sys.modules  # loaded by its entry point
    assert {FAKE_MODULE!r} not in sys.modules


def test_2_the_fixture_serves_a_working_fake(fake_klaviyo):
    job_id = fake_klaviyo.add_job("item-update", status="complete", items=2)
    with CatalogJobs(fake_klaviyo.api_key, base_url=fake_klaviyo.base_url) as kc:
        assert len(kc.get_item_update_job(job_id, include=["items"]).items) == 2


def test_3_the_factory_too(fake_klaviyo_factory):
    fake = fake_klaviyo_factory(api_key="pk_other")
    with CatalogJobs("pk_other", base_url=fake.base_url) as kc:
        assert kc.get_item_update_job(fake.add_job("item-update", status="complete")).is_done
    assert {FAKE_MODULE!r} in sys.modules
"""


def test_an_apps_session_loads_the_fake_only_when_a_fixture_is_used(
    pytester: pytest.Pytester,
) -> None:
    # As in an app's test run: the plugin comes from the installed `pytest11` entry point, in a
    # fresh process, and the tests run in file order.
    pytester.makepyfile(LAZY_SESSION)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=3)


# --- faults take numbers -----------------------------------------------------------------------


def first_response(fake: FakeKlaviyo) -> httpx.Response:
    job_id = fake.add_job("item-update")
    return httpx.get(fake.url("item-update", job_id), headers=fake.headers(), timeout=5)


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [(3, "3"), (0, "0"), (1.5, "1.5"), (2.0, "2"), ("7", "7"), ("soon", "soon")],
)
def test_rate_limited_takes_seconds_as_a_number_or_a_string(
    fake_klaviyo: FakeKlaviyo, retry_after: float | str, header: str
) -> None:
    fake_klaviyo.inject(Fault.rate_limited(retry_after))
    response = first_response(fake_klaviyo)
    assert response.status_code == 429
    assert response.headers["retry-after"] == header
    assert response.json()["errors"][0]["code"] == "throttled"


def test_rate_limited_takes_a_datetime_as_an_http_date(fake_klaviyo: FakeKlaviyo) -> None:
    when = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    fake_klaviyo.inject(Fault.rate_limited(when))
    assert first_response(fake_klaviyo).headers["retry-after"] == "Wed, 02 Jan 2030 03:04:05 GMT"


def test_status_takes_a_numeric_retry_after_and_the_client_honours_it(
    fake_klaviyo: FakeKlaviyo,
) -> None:
    job_id = fake_klaviyo.add_job("item-update")
    fake_klaviyo.inject(Fault.status(503, retry_after=0))
    fake_klaviyo.inject(Fault.rate_limited(0))
    with CatalogJobs(fake_klaviyo.api_key, base_url=fake_klaviyo.base_url) as kc:
        assert kc.get_item_update_job(job_id).id == job_id
    assert [r.status for r in fake_klaviyo.request_log] == [503, 429, 200]


def test_a_numeric_rate_limited_fault_reaches_the_client_as_a_429(
    fake_klaviyo: FakeKlaviyo,
) -> None:
    job_id = fake_klaviyo.add_job("item-update")
    fake_klaviyo.inject(Fault.rate_limited(0))
    kc = CatalogJobs(fake_klaviyo.api_key, base_url=fake_klaviyo.base_url, max_retries=0)
    with kc, pytest.raises(RateLimitError) as caught:
        kc.get_item_update_job(job_id)
    assert caught.value.retry_after == 0


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: Fault.rate_limited(-1), ValueError),
        (lambda: Fault.rate_limited(float("nan")), ValueError),
        (lambda: Fault.rate_limited(True), TypeError),
        (lambda: Fault.rate_limited([3]), TypeError),  # type: ignore[arg-type]
        (lambda: Fault.rate_limited(dt.datetime(2030, 1, 1)), ValueError),  # naive
        (lambda: Fault.rate_limited("1\r\nX-Evil: 1"), ValueError),
        (lambda: Fault.status(99), ValueError),
        (lambda: Fault.status("503"), ValueError),  # type: ignore[arg-type]
        (lambda: Fault.delay("1"), TypeError),  # type: ignore[arg-type]
        (lambda: Fault.delay(-0.1), ValueError),
    ],
)
def test_a_fault_that_cannot_be_sent_is_refused_when_built(
    build: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        build()  # type: ignore[operator]


def test_a_numeric_delay_delays(fake_klaviyo: FakeKlaviyo) -> None:
    fake_klaviyo.inject(Fault.delay(0.2))
    started = time.monotonic()
    assert first_response(fake_klaviyo).status_code == 200
    assert time.monotonic() - started >= 0.2


# --- documentation -----------------------------------------------------------------------------


def public_members(obj: object) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name, member in vars(obj).items():
        if name.startswith("_") and name not in ("__enter__", "__init__"):
            continue
        if isinstance(member, classmethod | staticmethod):
            member = member.__func__
        if isinstance(member, property):
            member = member.fget
        if inspect.isfunction(member):
            found.append((name, member))
    return found


def test_the_whole_public_testing_api_and_the_fixtures_have_docstrings() -> None:
    missing = []
    for name in testing.__all__:
        value = getattr(testing, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        if not inspect.getdoc(value):
            missing.append(name)
        if inspect.isclass(value):
            for member_name, member in public_members(value):
                if member_name != "__init__" and not inspect.getdoc(member):
                    missing.append(f"{name}.{member_name}")
    for fixture in (pytest_plugin.fake_klaviyo, pytest_plugin.fake_klaviyo_factory):
        wrapped = getattr(fixture, "__wrapped__", fixture)
        if not (inspect.getdoc(wrapped) or inspect.getdoc(fixture)):
            missing.append(getattr(wrapped, "__name__", repr(fixture)))
    assert missing == []
