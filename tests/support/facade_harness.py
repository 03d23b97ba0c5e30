"""Runs one facade call through either client, so that every test covers sync and async alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from klaviyo_catalog import BulkJob, MemoryRateLimiter
from klaviyo_catalog.testing import VirtualClock

from tests.support.hardening_support import HttpFactory, Mode, call

API_KEY = "pk_test_0123456789abcdef"


class Api:
    """`api.get_item_update_job(...)` runs on a fresh sync or async client, per `mode`.

    `http`, if given, makes the app-supplied httpx client of each call for the mode (e.g. one
    over an httpx.MockTransport); `with_options(http=None)` drops it. `on(clock)` runs the
    calls on a virtual clock, attached to each client: their waits take no real time.
    """

    def __init__(
        self,
        mode: Mode,
        base_url: str,
        *,
        http: HttpFactory | None = None,
        clock: VirtualClock | None = None,
        **options: Any,
    ) -> None:
        self.mode = mode
        self.http = http
        self.clock = clock
        self.options: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": base_url,
            "retry_backoff": 0.01,
            "rate_limiter": MemoryRateLimiter(),  # no budget shared between tests
            **options,
        }

    def with_options(self, **options: Any) -> Api:
        http = options.pop("http", self.http)
        merged = {**self.options, **options}
        return Api(self.mode, merged.pop("base_url"), http=http, clock=self.clock, **merged)

    def on(self, clock: VirtualClock) -> Api:
        api = self.with_options()
        api.clock = clock
        return api

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            # The one sync/async runner of the tests.
            options, http, clock = self.options, self.http, self.clock
            return call(self.mode, options, name, *args, http=http, clock=clock, **kwargs)

        return run

    def collect(self, name: str, **kwargs: Any) -> list[BulkJob]:
        jobs: list[BulkJob] = getattr(self, name)(**kwargs)
        return jobs
