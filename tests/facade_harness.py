"""Runs one facade call through either client, so that every test covers sync and async alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from klaviyo_catalog import AsyncCatalogJobs, BulkJob, CatalogJobs
from klaviyo_catalog._ratelimit import MemoryRateLimiter

API_KEY = "pk_test_0123456789abcdef"
# Makes the app-supplied httpx client for a mode ("sync" or "async").
HttpFactory = Callable[[str], httpx.Client | httpx.AsyncClient]


class Api:
    """`api.get_item_update_job(...)` runs on a fresh sync or async client, per `mode`.

    `http`, if given, makes the app-supplied httpx client of each call for the mode (e.g. one
    over an httpx.MockTransport); `with_options(http=None)` drops it.
    """

    def __init__(
        self, mode: str, base_url: str, *, http: HttpFactory | None = None, **options: Any
    ) -> None:
        self.mode = mode
        self.http = http
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
        return Api(self.mode, merged.pop("base_url"), http=http, **merged)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.mode == "sync":
                app = self.http("sync") if self.http is not None else None
                extra: dict[str, Any] = {"http_client": app} if app is not None else {}
                with CatalogJobs(**self.options, **extra) as kc:
                    result = getattr(kc, name)(*args, **kwargs)
                    return list(result) if name.startswith("iter_") else result

            async def run() -> Any:
                app = self.http("async") if self.http is not None else None
                extra: dict[str, Any] = {"http_client": app} if app is not None else {}
                async with AsyncCatalogJobs(**self.options, **extra) as kc:
                    if name.startswith("iter_"):
                        return [job async for job in getattr(kc, name)(*args, **kwargs)]
                    return await getattr(kc, name)(*args, **kwargs)

            return asyncio.run(run())

        return call

    def collect(self, name: str, **kwargs: Any) -> list[BulkJob]:
        jobs: list[BulkJob] = getattr(self, name)(**kwargs)
        return jobs
