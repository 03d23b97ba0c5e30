"""pytest fixtures for FakeKlaviyo; registered through the `pytest11` entry point.

`fake_klaviyo` is a running fake with default settings. `fake_klaviyo_factory(**kwargs)` starts
more, configured ones. Each is stopped at teardown, and a test fails if the fake itself broke.

Both give the test its own client-side rate-limit state: clients built during the test with
the default limiter share a fresh, empty one, dropped at teardown. So a 429 (and the pause it
causes) or a spent budget in one test never slows another.

Loading the plugin costs next to nothing: pytest loads it in every test session of every app
that installs the library, so the fake (its server, spec model and documents) is imported only
when a test first asks for one of these fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from klaviyo_catalog.testing import FakeKlaviyo

FakeFactory = Callable[..., "FakeKlaviyo"]


def _check(fake: FakeKlaviyo) -> None:
    """Fail the test if the fake raised internally: such a bug is served as a 500, which the
    code under test could otherwise take for Klaviyo's own failure and pass."""
    if fake.internal_errors:
        raise AssertionError(f"FakeKlaviyo failed internally: {fake.internal_errors!r}")


@pytest.fixture
def fake_klaviyo() -> Iterator[FakeKlaviyo]:
    """A running `FakeKlaviyo` with default settings, stopped after the test.

    Point a client at it with `CatalogJobs(fake_klaviyo.api_key,
    base_url=fake_klaviyo.base_url)`. The test runs with a fresh process-wide rate limiter
    (see `isolated_rate_limits`), and fails at teardown if the fake raised internally.
    """
    from klaviyo_catalog.testing import FakeKlaviyo, isolated_rate_limits  # on first use

    with isolated_rate_limits(), FakeKlaviyo() as fake:
        yield fake
    _check(fake)


@pytest.fixture
def fake_klaviyo_factory() -> Iterator[FakeFactory]:
    """A function that starts a configured `FakeKlaviyo`: `fake_klaviyo_factory(revision=...,
    rate_limits=[(5, 1.0)], access_tokens=[...])` takes `FakeKlaviyo`'s keyword arguments.

    Every fake it started is stopped after the test; the test runs with a fresh process-wide
    rate limiter, as with `fake_klaviyo`.
    """
    from klaviyo_catalog.testing import FakeKlaviyo, isolated_rate_limits  # on first use

    started: list[FakeKlaviyo] = []

    def start(**kwargs: Any) -> FakeKlaviyo:
        fake = FakeKlaviyo(**kwargs).start()
        started.append(fake)
        return fake

    with isolated_rate_limits():
        yield start
        for fake in started:
            fake.stop()
    for fake in started:
        _check(fake)
