"""`base_url` shapes the rules forbid are refused when the client is built, not answered 404 on
every call: an empty query or fragment, a port no connection can use."""

from __future__ import annotations

import pytest
from klaviyo_catalog import AsyncCatalogJobs, CatalogJobs, ConfigurationError

CLIENTS = [CatalogJobs, AsyncCatalogJobs]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://a.klaviyo.com/?", "query or fragment"),
        ("https://a.klaviyo.com/#", "query or fragment"),
        ("https://a.klaviyo.com?", "query or fragment"),
        ("https://a.klaviyo.com/api?x=1", "query or fragment"),
        ("http://127.0.0.1:8080/#top", "query or fragment"),
        ("https://a.klaviyo.com:0", "port 0"),
        ("https://a.klaviyo.com:99999", "port 99999"),
        ("http://127.0.0.1:65536/", "port 65536"),
    ],
)
@pytest.mark.parametrize("client_class", CLIENTS)
def test_a_base_url_the_rules_forbid_is_refused(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs],
    url: str,
    problem: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        client_class("pk_x", base_url=url)
    monkeypatch.setenv("KLAVIYO_BASE_URL", url)  # the same rules for the environment's
    with pytest.raises(ConfigurationError, match=rf"\$KLAVIYO_BASE_URL: .*{problem}"):
        client_class("pk_x")


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://a.klaviyo.com/", "https://a.klaviyo.com"),
        ("https://a.klaviyo.com:443", "https://a.klaviyo.com"),  # the default port, dropped
        ("http://127.0.0.1:1/", "http://127.0.0.1:1"),
        ("http://localhost:65535/proxy/klaviyo/", "http://localhost:65535/proxy/klaviyo"),
    ],
)
def test_the_edges_of_what_is_allowed_are_kept(url: str, kept: str) -> None:
    with CatalogJobs("pk_x", base_url=url) as kc:
        assert kc.base_url == kept
