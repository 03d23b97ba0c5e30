"""An app's own httpx client whose response event hook reads the body (a common logging
pattern) must not hang the facade, which otherwise streams the body itself."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable

import httpx
import pytest
from klaviyo_catalog import NotFoundError
from klaviyo_catalog.testing import FakeKlaviyo, Fault

from tests.support import documents as docs
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


def test_an_errors_response_is_the_one_the_transport_returned(
    mode: Mode, make_fake: Callable[..., FakeKlaviyo]
) -> None:
    # One response per attempt: the object an app's hook saw is the one the error carries, its
    # body read into it (gzip-decoded by the client itself), its request redacted.
    returned: list[httpx.Response] = []

    def hook(response: httpx.Response) -> None:
        returned.append(response)

    async def async_hook(response: httpx.Response) -> None:
        returned.append(response)

    def recording_client(mode: Mode) -> httpx.Client | httpx.AsyncClient:
        if mode == "sync":
            return httpx.Client(event_hooks={"response": [hook]})
        return httpx.AsyncClient(event_hooks={"response": [async_hook]})

    fake = make_fake(rate_limits=None)
    body = json.dumps(docs.error(404, "No job with that id.")).encode()
    gzipped = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    encoded = gzipped.compress(body) + gzipped.flush()
    fake.inject(Fault.body(404, encoded, headers=(("Content-Encoding", "gzip"),)))
    client_options = options(fake.base_url, fake.api_key, max_retries=0)
    with pytest.raises(NotFoundError) as caught:
        call(mode, client_options, "get_item_update_job", "NOPE", http=recording_client)
    (response,) = returned
    assert caught.value.response is response
    assert response.content == body and response.is_closed
    assert "content-encoding" not in response.headers  # decoded: no longer true of its content
    assert response.request.headers["authorization"] == "[redacted]"
    assert "network_stream" not in response.extensions  # the error keeps no socket
