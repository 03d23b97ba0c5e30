"""An app's own httpx client whose response event hook reads the body (a common logging
pattern) must not hang the facade, which otherwise streams the body itself."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from klaviyo_catalog.testing import FakeKlaviyo

from tests.support.hardening_support import Mode, call, options


def test_a_body_read_by_an_event_hook_is_used(
    mode: Mode, make_fake: Callable[..., FakeKlaviyo]
) -> None:
    seen: list[int] = []

    def hook(response: httpx.Response) -> None:
        seen.append(len(response.read()))

    async def async_hook(response: httpx.Response) -> None:
        seen.append(len(await response.aread()))

    def logging_client(mode: Mode) -> httpx.Client | httpx.AsyncClient:
        timeout = httpx.Timeout(5.0)
        if mode == "sync":
            return httpx.Client(event_hooks={"response": [hook]}, timeout=timeout)
        return httpx.AsyncClient(event_hooks={"response": [async_hook]}, timeout=timeout)

    fake = make_fake(rate_limits=None)
    job_id = fake.add_job("item-update", items=2)
    client_options = options(fake.base_url, fake.api_key)
    job = call(
        mode, client_options, "get_item_update_job", job_id, include=["items"], http=logging_client
    )
    assert job.id == job_id and job.items is not None and len(job.items) == 2
    assert len(seen) == 1 and seen[0] > 0
