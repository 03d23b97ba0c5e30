"""pytest fixtures for FakeKlaviyo; registered through the `pytest11` entry point.

`fake_klaviyo` is a running fake with default settings. `fake_klaviyo_factory(**kwargs)` starts
more, configured ones. Each is stopped at teardown, and a test fails if the fake itself broke.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from klaviyo_catalog.testing import FakeKlaviyo

FakeFactory = Callable[..., FakeKlaviyo]


def _check(fake: FakeKlaviyo) -> None:
    if fake.internal_errors:
        raise AssertionError(f"FakeKlaviyo failed internally: {fake.internal_errors!r}")


@pytest.fixture
def fake_klaviyo() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo() as fake:
        yield fake
    _check(fake)


@pytest.fixture
def fake_klaviyo_factory() -> Iterator[FakeFactory]:
    started: list[FakeKlaviyo] = []

    def start(**kwargs: Any) -> FakeKlaviyo:
        fake = FakeKlaviyo(**kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()
    for fake in started:
        _check(fake)
