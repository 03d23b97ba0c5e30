"""The core hands back every rate-limit ticket: on a success, an HTTP error, a transport error,
and when the flow is closed mid-request (a cancelled task, an interrupted call)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest
from klaviyo_catalog import AsyncCatalogJobs, KlaviyoError, MemoryRateLimiter, Rate, Wait
from klaviyo_catalog._flow import Send
from klaviyo_catalog.testing import FakeKlaviyo, Fault, VirtualClock

from tests.support import documents
from tests.support.hardening_support import run_async
from tests.support.virtual_clock import job_response, virtual_core

RATES = [Rate(1, 10.0)]


def answer_404(request: httpx.Request) -> httpx.Response:
    body = json.dumps(documents.error(404, "No such job.")).encode()
    return httpx.Response(404, content=body, request=request)


OUTCOMES: dict[str, Any] = {
    "success": job_response,
    "http error": answer_404,
    "transport error": lambda request: httpx.ConnectError("refused", request=request),
}


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_the_ticket_is_completed_when_the_outcome_arrives(outcome: str) -> None:
    clock = VirtualClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    core = virtual_core(clock, limiter=limiter, rate_limits=RATES, max_retries=0)
    flow = core.get_job("get_item_update_job", "JOB1", None, None)
    send = next(flow)
    assert isinstance(send, Send)
    clock.now += 3.0  # the answer takes 3 s
    with contextlib.suppress(StopIteration, KlaviyoError):
        flow.send(OUTCOMES[outcome](send.request))
    clock.now += 2.0
    # Completed 2 s ago, the slot frees 8 s from now; in flight it would be a whole window.
    grant = limiter.try_acquire(core.settings.account, "get_item_update_job", RATES)
    assert isinstance(grant, Wait) and grant.seconds == pytest.approx(8.0)


def test_a_flow_closed_mid_request_completes_its_ticket() -> None:
    clock = VirtualClock()
    limiter = MemoryRateLimiter(margin=0.0, clock=clock)
    core = virtual_core(clock, limiter=limiter, rate_limits=RATES)
    flow = core.get_job("get_item_update_job", "JOB1", None, None)
    assert isinstance(next(flow), Send)
    clock.now += 3.0
    flow.close()  # what a cancelled task or an interrupted call does
    clock.now += 2.0
    grant = limiter.try_acquire(core.settings.account, "get_item_update_job", RATES)
    assert isinstance(grant, Wait) and grant.seconds == pytest.approx(8.0)


def test_a_cancelled_task_frees_its_slot() -> None:
    with FakeKlaviyo(rate_limits=None) as fake:
        job_id = fake.add_job("item-update")
        fake.inject(Fault.stall())  # the first request hangs (logged as it arrives)

        async def run() -> None:
            limiter = MemoryRateLimiter()
            async with AsyncCatalogJobs(
                fake.api_key,
                base_url=fake.base_url,
                rate_limiter=limiter,
                rate_limits=[Rate(1, 0.2)],
            ) as kc:
                hanging = asyncio.create_task(kc.get_item_update_job(job_id))
                while not fake.request_log:  # cancelled once the fake holds it, however slow
                    await asyncio.sleep(0.01)
                hanging.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await hanging
                # The slot is free a window after the cancellation, not held forever.
                await asyncio.wait_for(kc.get_item_update_job(job_id), timeout=2.0)

        run_async(run())
