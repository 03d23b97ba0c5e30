"""One kind of exception: what a constructor or a call refuses, it refuses with a KlaviyoError
that says what is allowed, before any request, and without echoing a secret."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
from klaviyo_catalog import (
    AsyncCatalogJobs,
    CatalogJobs,
    ConfigurationError,
    InvalidRequestError,
    KlaviyoError,
    MemoryRateLimiter,
)
from klaviyo_catalog._checks import MAX_CURSOR_URL_CHARS, MAX_JOB_ID_CHARS
from klaviyo_catalog.testing import FakeKlaviyo

from tests.support.hardening_support import Mode, call, use

CLIENTS = [CatalogJobs, AsyncCatalogJobs]


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeKlaviyo(rate_limits=None) as server:
        yield server


def client_options(fake: FakeKlaviyo) -> dict[str, Any]:
    """Options of a client for `fake`, with a rate-limit budget of its own."""
    return {"api_key": fake.api_key, "base_url": fake.base_url, "rate_limiter": MemoryRateLimiter()}


def call_on(mode: Mode, fake: FakeKlaviyo, name: str, *args: Any, **kwargs: Any) -> Any:
    """`name(*args, **kwargs)` on a fresh client of `mode` for `fake`, by the one runner."""
    return call(mode, client_options(fake), name, *args, **kwargs)


@pytest.mark.parametrize(
    "name, args, kwargs, message",
    [
        ("get_item_update_job", ("J" * 70_000,), {}, f"at most {MAX_JOB_ID_CHARS}"),
        ("list_item_create_jobs", (), {"cursor": "c" * 70_000}, f"at most {MAX_CURSOR_URL_CHARS}"),
        # Short, but past the limit once percent-encoded (12 characters each).
        ("list_item_create_jobs", (), {"cursor": "\U0001f600" * 3_000}, "once URL-encoded"),
        ("iter_variant_update_jobs", (), {"cursor": "c" * 70_000}, "can be sent"),
        ("list_variant_update_jobs", (), {"status": "p" * 70_000}, "not a job status"),
        ("list_item_create_jobs", (), {"status": True}, "status must be a str"),
        ("list_item_create_jobs", (), {"status": 3}, "status must be a str"),
    ],
)
def test_arguments_that_cannot_be_sent_are_invalid_requests(
    mode: Mode, fake: FakeKlaviyo, name: str, args: Any, kwargs: Any, message: str
) -> None:
    before = len(fake.request_log)
    with pytest.raises(InvalidRequestError, match=message):
        call_on(mode, fake, name, *args, **kwargs)
    assert len(fake.request_log) == before  # nothing went out


@pytest.mark.parametrize(
    "name, args, kwargs, message",
    [
        ("list_item_create_jobs", (), {"statuss": "queued"}, "list_item_create_jobs() got an"),
        ("list_variant_update_jobs", (), {"max_pages": 2}, "keyword argument 'max_pages'"),
        ("iter_item_create_jobs", (), {"page": 2}, "iter_item_create_jobs() got an unexpected"),
        ("list_item_create_jobs", ("queued",), {}, "positional argument"),
        ("iter_variant_update_jobs", ("queued",), {}, "positional argument"),
    ],
)
def test_a_listing_option_it_does_not_take_is_a_type_error(
    mode: Mode, fake: FakeKlaviyo, name: str, args: Any, kwargs: Any, message: str
) -> None:
    """As for a function with named parameters: the listings take their options by keyword
    (`ListOptions`, `WalkOptions`), and a misspelt one is never silently dropped."""
    before = len(fake.request_log)
    with pytest.raises(TypeError, match=re.escape(message)):
        call_on(mode, fake, name, *args, **kwargs)
    assert len(fake.request_log) == before


def test_the_longest_accepted_job_id_and_cursor_reach_the_server(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    from klaviyo_catalog import BadRequestError, NotFoundError

    with pytest.raises(NotFoundError):  # sent, and answered: no such job
        call_on(mode, fake, "get_item_update_job", "J" * MAX_JOB_ID_CHARS)
    with pytest.raises(BadRequestError):  # sent, and answered: no such cursor
        call_on(mode, fake, "list_item_create_jobs", cursor="c" * MAX_CURSOR_URL_CHARS)


@pytest.mark.parametrize("client_class", CLIENTS)
@pytest.mark.parametrize("key", [123, b"pk_bytes", ["pk"], 1.5])
def test_an_api_key_that_is_not_a_str_is_a_configuration_error(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs], key: Any
) -> None:
    with pytest.raises(ConfigurationError, match="API key is empty or not a string"):
        client_class(key)


@pytest.mark.parametrize("client_class", CLIENTS)
@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2-secret@127.0.0.1:8080",
        "https://user:hunter2-secret@a.klaviyo.com",
        "https://:hunter2-secret@a.klaviyo.com/",
        "https://hunter2-secret@a.klaviyo.com",
        "http://hunter2-secret@evil.example",
        "ftp://u:hunter2-secret@x",
    ],
)
def test_a_base_url_with_credentials_is_refused_without_echoing_them(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs],
    url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigurationError) as caught:
        client_class("pk_x", base_url=url)
    assert "hunter2" not in str(caught.value) and "hunter2" not in repr(caught.value)
    assert "hunter2" not in repr(vars(caught.value))
    assert "hunter2" not in caplog.text
    if "ftp" not in url:
        assert "user name or password" in str(caught.value)


@pytest.mark.parametrize("client_class", CLIENTS)
@pytest.mark.parametrize("url", [123, b"https://a.klaviyo.com", ["https://a.klaviyo.com"]])
def test_a_base_url_that_is_not_a_str_is_a_configuration_error(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs], url: Any
) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        client_class("pk_x", base_url=url)


@pytest.mark.parametrize("client_class", CLIENTS)
@pytest.mark.parametrize(
    "options",
    [
        {"max_retries": -1},
        {"max_retries": "3"},
        {"max_retries": True},
        {"max_retries": 2.5},
        {"timeout": float("nan")},
        {"timeout": 0},
        {"timeout": float("inf")},
        {"deadline": float("nan")},
        {"max_response_bytes": 0},
    ],
)
def test_every_bad_option_is_a_configuration_error(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs], options: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        client_class("pk_x", **options)
    assert isinstance(caught.value, KlaviyoError) and next(iter(options)) in str(caught.value)


def test_deadline_none_lifts_the_deadline() -> None:
    with CatalogJobs("pk_x", deadline=None) as kc:
        assert kc.deadline is None


# --- the one rule (`klaviyo_catalog._checks`): who gives a value decides its error ------------


@pytest.mark.parametrize(
    "fields",
    [
        {"max_retries": "3"},  # a TypeError from RetryPolicy before the rule
        {"max_retries": -1},
        {"backoff_base": 0},
        {"backoff_base": "0.5"},
        {"backoff_cap": float("inf")},
        {"deadline": float("nan")},
        {"max_retry_after": -1},
        {"max_retry_after": True},
        {"retry_after_jitter": -0.1},
    ],
)
def test_a_retry_policy_out_of_range_is_a_configuration_error(fields: dict[str, Any]) -> None:
    """Rule 1, for the public RetryPolicy built by hand: what configures a client is a
    ConfigurationError (still a ValueError), never a TypeError, naming the field."""
    from klaviyo_catalog import RetryPolicy

    with pytest.raises(ConfigurationError, match=next(iter(fields))) as caught:
        RetryPolicy(**fields)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": "30"},
        {"timeout": True},
        {"max_retries": 1.0},
        {"deadline": -5},
        {"deadline": "none"},
        {"timeout": httpx.Timeout(5.0, read=float("nan"))},
    ],
)
def test_every_option_of_with_options_is_a_configuration_error(
    mode: Mode, fake: FakeKlaviyo, options: dict[str, Any]
) -> None:
    """Rule 1, sync and async: `with_options()` configures a client, so a bad option is a
    ConfigurationError whatever its type, raised before any request."""
    before = len(fake.request_log)

    def derive(kc: Any) -> Any:
        return kc.with_options(**options)

    with pytest.raises(ConfigurationError, match=next(iter(options))):
        use(mode, client_options(fake), derive)
    assert len(fake.request_log) == before


@pytest.mark.parametrize(
    "name, args, kwargs, message",
    [
        ("iter_item_create_jobs", (), {"max_pages": 0}, "max_pages"),
        ("iter_item_create_jobs", (), {"max_pages": True}, "max_pages"),
        ("iter_variant_update_jobs", (), {"max_pages": "2"}, "max_pages"),
        ("wait_for_job", ("J1",), {"kind": "item-update", "poll_interval": "2"}, "poll_interval"),
        ("wait_for_job", ("J1",), {"kind": "item-update", "poll_interval": True}, "poll_interval"),
        ("wait_for_job", ("J1",), {"kind": "item-update", "timeout": "600"}, "timeout"),
        ("wait_for_job", ("J1",), {"kind": "item-update", "max_poll_interval": 0}, "max_poll"),
        ("wait_for_jobs", ([],), {"timeout": float("nan")}, "timeout"),
        ("wait_for_jobs", ([],), {"quota_share": True}, "quota_share"),
        ("wait_for_jobs", ([],), {"max_poll_interval": float("inf")}, "max_poll_interval"),
        ("get_item_update_job", (7,), {}, "job_id"),
        ("get_item_update_job", ("J1",), {"include": 5}, "include"),
        ("list_item_create_jobs", (), {"fields": ["catalog-item"]}, "fields"),
    ],
)
def test_what_a_call_is_given_is_an_invalid_request_whatever_its_type(
    mode: Mode, fake: FakeKlaviyo, name: str, args: Any, kwargs: Any, message: str
) -> None:
    """Rule 2, sync and async: a bad value given to a call is InvalidRequestError, never a
    TypeError, even when it is of the wrong type, and nothing is sent."""
    before = len(fake.request_log)
    with pytest.raises(InvalidRequestError, match=message):
        call_on(mode, fake, name, *args, **kwargs)
    assert len(fake.request_log) == before


def test_a_type_error_comes_only_from_python_itself(mode: Mode, fake: FakeKlaviyo) -> None:
    """Rule 3, sync and async: an argument a method does not take, or one missing, is Python's
    own TypeError (it names the method), not one of the library's."""
    cases: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("wait_for_job", (), {}),
        ("wait_for_jobs", ([],), {"interval": 5}),
        ("get_item_update_job", ("J1",), {"includes": ["items"]}),
    ]
    for name, args, kwargs in cases:
        with pytest.raises(TypeError, match=re.escape(f"{name}()")) as caught:
            call_on(mode, fake, name, *args, **kwargs)
        assert not isinstance(caught.value, KlaviyoError)


def test_rates_and_rate_limiters_configured_wrongly_are_configuration_errors() -> None:
    """A Rate or a limiter configures a client: ConfigurationError (still a ValueError), and
    a Redis URL it cannot read is named without the URL, which may hold a password."""
    from klaviyo_catalog import ConfigurationError, MemoryRateLimiter, Rate, RedisRateLimiter

    for build in (
        lambda: Rate(0, 1.0),
        lambda: Rate(5, float("inf")),
        lambda: MemoryRateLimiter(margin=-1.0),
        lambda: RedisRateLimiter("nonsense"),
        lambda: RedisRateLimiter(),
        lambda: RedisRateLimiter("redis://localhost", stale_after=0),
    ):
        with pytest.raises(ConfigurationError) as caught:
            build()
        assert isinstance(caught.value, ValueError)
    with pytest.raises(ConfigurationError) as caught:
        RedisRateLimiter("redis://:sekrit-password@localhost:99999999/0")
    assert "sekrit" not in str(caught.value) and caught.value.__cause__ is None
