"""Proxies from the environment: the key never reaches one in clear text, and every problem
with a proxy variable is a ConfigurationError naming the variable, never echoing its password.

The client's own pool takes the proxy httpx would (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY)
except for a loopback base URL, which is never proxied: plain http is allowed for loopback only.
"""

from __future__ import annotations

import base64
import importlib.util
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from klaviyo_catalog import AsyncCatalogJobs, CatalogJobs, ConfigurationError, TransportError
from klaviyo_catalog._proxies import environment_proxy
from klaviyo_catalog.testing import FakeKlaviyo

from tests.support.hardening_support import SECRET_KEY, Mode, call, options

VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD")
PASSWORD = "pr0xy-s3cret-9c1d"
Client = type[CatalogJobs] | type[AsyncCatalogJobs]
CLIENTS = [CatalogJobs, AsyncCatalogJobs]


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the variables it is about; none leak in from the machine."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


class RecordingProxy:
    """A proxy on 127.0.0.1 that records the head of every request it gets and refuses it
    (403): enough to see what a client sends a proxy, without going anywhere."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        heads = self.heads

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data = b""
                sock: socket.socket = self.request
                sock.settimeout(5)
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                heads.append(data)
                sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    with RecordingProxy() as server:
        yield server


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    fake = make_fake(rate_limits=None, api_key=SECRET_KEY)
    fake.add_job("item-update", job_id="J1")
    return fake


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"])
def test_a_loopback_base_url_is_never_proxied(
    mode: Mode,
    variable: str,
    fake: FakeKlaviyo,
    proxy: RecordingProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    client_options = options(fake.base_url, SECRET_KEY, max_retries=0)
    assert call(mode, client_options, "get_item_update_job", "J1").id == "J1"
    assert proxy.heads == []  # the key went to the fake over loopback, not to the proxy
    assert len(fake.request_log) == 1


def test_an_https_base_url_goes_through_the_proxy_in_a_tunnel(
    mode: Mode, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = proxy.url.removeprefix("http://").split(":")
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:{PASSWORD}@{host}:{port}")
    client_options = options("https://klaviyo.invalid", SECRET_KEY, max_retries=0)
    with pytest.raises(TransportError, match="ProxyError") as caught:
        call(mode, client_options, "get_item_update_job", "J1")
    assert isinstance(caught.value.__cause__, httpx.ProxyError)
    (head,) = proxy.heads
    # Only the tunnel's CONNECT reached the proxy: the request and its key go inside TLS.
    assert head.startswith(b"CONNECT klaviyo.invalid:443 HTTP/1.1\r\n")
    credentials = base64.b64encode(f"user:{PASSWORD}".encode())
    assert b"\r\nProxy-Authorization: Basic " + credentials + b"\r\n" in head
    assert SECRET_KEY.encode() not in head
    assert PASSWORD not in str(caught.value)


def test_no_proxy_and_loopback_choose_a_direct_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    through = environment_proxy("https://a.klaviyo.com")
    assert through is not None and through.variable == "HTTPS_PROXY"
    assert str(through.url) == "http://proxy.example:3128" and through.auth is None
    for no_proxy in ("klaviyo.com", ".klaviyo.com", "*", "other.example, a.klaviyo.com"):
        monkeypatch.setenv("NO_PROXY", no_proxy)
        assert environment_proxy("https://a.klaviyo.com") is None, no_proxy
    monkeypatch.setenv("NO_PROXY", "notklaviyo.com,10.0.0.0/8")
    assert environment_proxy("https://a.klaviyo.com") is not None
    assert environment_proxy("https://10.1.2.3") is None
    monkeypatch.setenv("ALL_PROXY", "http://proxy.example:3128")
    for loopback in ("http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:9"):
        assert environment_proxy(loopback) is None


def test_lower_case_wins_and_cgi_ignores_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.example:1")
    monkeypatch.setenv("https_proxy", "http://lower.example:2")
    found = environment_proxy("https://a.klaviyo.com")
    assert found is not None and found.variable == "https_proxy"
    # Under CGI a request's Proxy: header arrives as HTTP_PROXY ("httpoxy"): not a proxy.
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    monkeypatch.setenv("HTTP_PROXY", "http://attacker.example:1")
    assert environment_proxy("http://example.invalid") is None


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("HTTPS_PROXY", f"http://user:{PASSWORD}@[::1", "not a proxy URL"),
        ("HTTPS_PROXY", f"http://user:{PASSWORD}@proxy.example:99999", "bad port"),
        ("https_proxy", f"ftp://user:{PASSWORD}@proxy.example:21", "scheme 'ftp'"),
        ("ALL_PROXY", f"http://user:{PASSWORD}@:3128", "no host"),
    ],
)
@pytest.mark.parametrize("client_class", CLIENTS)
def test_a_proxy_variable_httpx_could_not_use_is_a_configuration_error(
    client_class: Client,
    variable: str,
    value: str,
    problem: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=problem) as caught:
        client_class(SECRET_KEY)
    assert f"${variable}" in str(caught.value)
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value.args)
    assert caught.value.__cause__ is None  # httpx's error, which quotes the URL, is not kept


@pytest.mark.parametrize("client_class", CLIENTS)
def test_a_socks_proxy_without_socksio_is_a_configuration_error(
    client_class: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec  # socksio may be installed here: as if it were not

    def without_socksio(name: str, *args: Any) -> Any:
        return None if name == "socksio" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_socksio)
    monkeypatch.setenv("ALL_PROXY", f"socks5://user:{PASSWORD}@127.0.0.1:1080")
    with pytest.raises(ConfigurationError, match=r"\$ALL_PROXY names a SOCKS proxy") as caught:
        client_class(SECRET_KEY)
    assert "socksio" in str(caught.value) and PASSWORD not in str(caught.value)


def app_client(mode: Mode, **options: Any) -> httpx.Client | httpx.AsyncClient:
    return httpx.Client(**options) if mode == "sync" else httpx.AsyncClient(**options)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "all_proxy"])
@pytest.mark.parametrize("client_class", CLIENTS)
def test_an_apps_client_that_would_proxy_plain_http_is_refused(
    client_class: Client, variable: str, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpx's own client takes the environment's proxy for loopback hosts too.
    monkeypatch.setenv(variable, proxy.url)
    http: Any = httpx.Client() if client_class is CatalogJobs else httpx.AsyncClient()
    with pytest.raises(ConfigurationError, match=rf"proxy in \${variable}"):
        client_class(SECRET_KEY, base_url="http://127.0.0.1:9", http_client=http)
    assert proxy.heads == []


def test_an_apps_client_that_goes_direct_for_loopback_is_used(
    mode: Mode, fake: FakeKlaviyo, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    client_options = options(fake.base_url, SECRET_KEY)
    ignoring = call(  # an app's client that ignores the environment
        mode,
        client_options,
        "get_item_update_job",
        "J1",
        http=lambda mode: app_client(mode, trust_env=False),
    )
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    excluded = call(mode, client_options, "get_item_update_job", "J1", http=app_client)
    assert ignoring.id == excluded.id == "J1"
    assert proxy.heads == [] and len(fake.request_log) == 2
