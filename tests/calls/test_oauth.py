"""OAuth apps: access tokens (fixed or from a function), refresh after a 401, the budget keyed
by `account=`, and FakeKlaviyo's bearer tokens; sync and async alike."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    AuthenticationError,
    CatalogJobs,
    ConfigurationError,
    DeadlineExceededError,
    Rate,
)
from klaviyo_catalog._ratelimit import MemoryRateLimiter, account_key
from klaviyo_catalog.testing import FakeKlaviyo, Fault

from tests.support.hardening_support import run_async

TOKEN = "kat_0123456789abcdefOLD"
FRESH = "kat_0123456789abcdefNEW"


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    return make_fake(access_tokens=[TOKEN])


class Provider:
    """An app's token function: hands out `tokens` in turn, recording the calling threads."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.threads: list[threading.Thread] = []

    def __call__(self) -> str:
        self.threads.append(threading.current_thread())
        return self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]


def client(mode: str, fake: FakeKlaviyo, **options: Any) -> CatalogJobs | AsyncCatalogJobs:
    settings: dict[str, Any] = {
        "base_url": fake.base_url,
        "rate_limiter": MemoryRateLimiter(),
        "retry_backoff": 0.01,
        **options,
    }
    return (CatalogJobs if mode == "sync" else AsyncCatalogJobs)(**settings)


def get(kc: CatalogJobs | AsyncCatalogJobs, job_id: str) -> Any:
    if isinstance(kc, CatalogJobs):
        with kc:
            return kc.get_item_update_job(job_id)

    async def run() -> Any:
        async with kc:
            return await kc.get_item_update_job(job_id)

    return run_async(run())


def test_a_fixed_token_is_sent_as_bearer(mode: str, fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    assert get(client(mode, fake, access_token=TOKEN), job_id).id == job_id
    [record] = fake.request_log
    assert record.headers["authorization"] == f"Bearer {TOKEN}" and record.status == 200


def test_after_a_401_the_function_gives_a_fresh_token_and_the_call_is_retried_once(
    mode: str, fake: FakeKlaviyo
) -> None:
    job_id = fake.add_job("item-update")
    provider = Provider(TOKEN, FRESH)
    kc = client(mode, fake, access_token=provider, max_retries=0)
    assert len(provider.threads) == 1  # once, at construction
    fake.revoke_access_token(TOKEN)  # it expired
    fake.add_access_token(FRESH)
    assert get(kc, job_id).id == job_id  # no retries allowed, yet the refresh retried once
    sent = [(r.headers["authorization"], r.status) for r in fake.request_log]
    assert sent == [(f"Bearer {TOKEN}", 401), (f"Bearer {FRESH}", 200)]
    assert len(provider.threads) == 2
    if mode == "async":  # the function may block (a database, an HTTP refresh): off the loop
        assert provider.threads[1] is not threading.main_thread()


def test_a_second_401_is_an_authentication_error(mode: str, fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("item-update")
    provider = Provider(TOKEN, "kat_still_wrong")
    kc = client(mode, fake, access_token=provider)
    fake.revoke_access_token(TOKEN)
    with pytest.raises(AuthenticationError):
        get(kc, job_id)
    assert [r.status for r in fake.request_log] == [401, 401]
    assert len(provider.threads) == 2  # called again once, not in a loop


def test_a_fixed_token_is_not_retried_after_a_401(mode: str, fake: FakeKlaviyo) -> None:
    with pytest.raises(AuthenticationError):
        get(client(mode, fake, access_token="kat_unknown"), fake.add_job("item-update"))
    assert [r.status for r in fake.request_log] == [401]


def test_a_key_and_a_token_together_are_refused(fake: FakeKlaviyo) -> None:
    for cls in (CatalogJobs, AsyncCatalogJobs):
        with pytest.raises(ConfigurationError, match="api_key or access_token, not both"):
            cls(fake.api_key, access_token=TOKEN, base_url=fake.base_url)


def test_a_token_wins_over_the_environments_key(
    mode: str, fake: FakeKlaviyo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLAVIYO_API_KEY", fake.api_key)
    get(client(mode, fake, access_token=TOKEN), fake.add_job("item-update"))
    assert fake.request_log[0].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("kat\r\nX-Evil: 1", "line break"),
        ("kat\u00e9", "non-ASCII"),
        (42, "a string or a function"),
        (lambda: 42, "empty or not a string"),
        (lambda: "kat\n", "line break"),
    ],
)
def test_a_token_that_cannot_be_sent_is_refused_at_once(token: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CatalogJobs(access_token=token)


def test_a_failing_token_function_is_a_configuration_error_that_quotes_nothing() -> None:
    def broken() -> str:
        raise RuntimeError(f"refresh failed for {TOKEN}")

    with pytest.raises(ConfigurationError) as caught:
        CatalogJobs(access_token=broken)
    assert str(caught.value) == "the access_token function failed: RuntimeError"
    assert caught.value.__cause__ is None and caught.value.__context__ is None


# --- the budget: one per installed app instance ------------------------------------------------


def over_budget(
    mode: str, fake: FakeKlaviyo, limiter: MemoryRateLimiter, **credential: Any
) -> bool:
    """Make one call; True if it had to wait for the shared budget of 1 call per 10 s."""
    kc = client(
        mode, fake, rate_limiter=limiter, rate_limits=[Rate(1, 10.0)], deadline=0.5, **credential
    )
    try:
        get(kc, fake.add_job("item-update"))
    except DeadlineExceededError as exc:  # the wait for the budget would pass the deadline
        assert "rate limit" in str(exc)
        return True
    return False


def test_the_budget_is_keyed_by_the_account_the_app_names(mode: str, fake: FakeKlaviyo) -> None:
    fake.add_access_token(FRESH)
    limiter = MemoryRateLimiter()
    assert not over_budget(mode, fake, limiter, access_token=TOKEN, account="shop-42")
    # Another token of the same installation shares its budget ...
    assert over_budget(mode, fake, limiter, access_token=FRESH, account="shop-42")
    # ... and another installation has its own.
    assert not over_budget(mode, fake, limiter, access_token=FRESH, account="shop-43")


def test_without_account_each_credential_has_its_own_budget(mode: str, fake: FakeKlaviyo) -> None:
    fake.add_access_token(FRESH)
    limiter = MemoryRateLimiter()
    assert not over_budget(mode, fake, limiter, access_token=TOKEN)
    assert not over_budget(mode, fake, limiter, access_token=FRESH)
    assert over_budget(mode, fake, limiter, access_token=TOKEN)


def test_the_default_account_is_a_hash_that_survives_a_refresh(fake: FakeKlaviyo) -> None:
    kc = CatalogJobs(access_token=Provider(TOKEN, FRESH), base_url=fake.base_url)
    account = kc.account
    assert account == account_key(TOKEN) and TOKEN not in account
    fake.revoke_access_token(TOKEN)
    fake.add_access_token(FRESH)
    with kc:
        kc.get_item_update_job(fake.add_job("item-update"))
    assert kc.account == account
    assert CatalogJobs(access_token=TOKEN, account="shop-1").account == "shop-1"


@pytest.mark.parametrize("account", ["", " ", "a\nb", "x" * 201, 7])
def test_an_account_name_that_is_not_one_is_refused(account: Any) -> None:
    with pytest.raises(ConfigurationError, match="account"):
        CatalogJobs(access_token=TOKEN, account=account)


# --- the fake's bearer tokens ------------------------------------------------------------------


def test_the_fake_accepts_only_the_bearer_tokens_it_was_given(fake: FakeKlaviyo) -> None:
    url = fake.url("item-update", fake.add_job("item-update"))

    def status(authorization: str) -> int:
        headers = {**fake.headers(), "Authorization": authorization}
        return httpx.get(url, headers=headers, timeout=5).status_code

    assert status(f"Bearer {TOKEN}") == 200
    assert status("Bearer kat_other") == 401
    assert status(f"Klaviyo-API-Key {TOKEN}") == 401  # a token is not a key
    fake.add_access_token("kat_other")
    assert status("Bearer kat_other") == 200
    fake.revoke_access_token(TOKEN)
    assert status(f"Bearer {TOKEN}") == 401
    assert status(f"Klaviyo-API-Key {fake.api_key}") == 200  # the key still works


def test_a_response_header_carrying_the_token_is_left_out_of_response_info(
    mode: str, fake: FakeKlaviyo
) -> None:
    document = {
        "data": {
            "type": "catalog-item-bulk-update-job",
            "id": "J1",
            "attributes": {"status": "complete", "created_at": "2024-05-01T10:00:00+00:00"},
        }
    }
    echo = (("X-Echo", f"Bearer {TOKEN}"), ("X-Klaviyo-Req-Id", "req-7"))
    fake.inject(Fault.body(200, json.dumps(document).encode(), headers=echo))
    info = get(client(mode, fake, access_token=TOKEN), "J1").response_info
    assert info.request_id == "req-7" and "x-echo" not in info.headers
    assert TOKEN not in repr(info) + repr(dict(info.headers))


def test_a_key_client_can_name_its_account_too() -> None:
    assert CatalogJobs("pk_a", account="main-store").account == "main-store"
    assert CatalogJobs("pk_a").account == account_key("pk_a")
