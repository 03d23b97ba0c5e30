"""An app's own httpx client whose response event hook reads the body (a common logging
pattern) must not hang the facade, which otherwise streams the body itself."""

from __future__ import annotations

import asyncio

import httpx
from klaviyo_catalog import AsyncCatalogJobs, CatalogJobs
from klaviyo_catalog.testing import FakeKlaviyo


def test_a_body_read_by_an_event_hook_is_used_sync_and_async() -> None:
    seen: list[int] = []

    def hook(response: httpx.Response) -> None:
        seen.append(len(response.read()))

    async def async_hook(response: httpx.Response) -> None:
        seen.append(len(await response.aread()))

    with FakeKlaviyo(rate_limits=None) as fake:
        job_id = fake.add_job("item-update", items=2)
        timeout = httpx.Timeout(5.0)
        with (
            httpx.Client(event_hooks={"response": [hook]}, timeout=timeout) as http,
            CatalogJobs(fake.api_key, base_url=fake.base_url, http_client=http) as kc,
        ):
            job = kc.get_item_update_job(job_id, include=["items"])
        assert job.id == job_id and job.items is not None and len(job.items) == 2

        async def run() -> None:
            async with (
                httpx.AsyncClient(event_hooks={"response": [async_hook]}, timeout=timeout) as ah,
                AsyncCatalogJobs(fake.api_key, base_url=fake.base_url, http_client=ah) as akc,
            ):
                again = await akc.get_item_update_job(job_id, include=["items"])
            assert again.id == job_id

        asyncio.run(run())
    assert len(seen) == 2 and all(n > 0 for n in seen)
