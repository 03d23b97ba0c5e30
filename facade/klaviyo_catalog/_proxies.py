"""Which proxy the client's own pool goes through: the one the environment names, as httpx reads
it (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, lower case first; NO_PROXY), with one exception: a
loopback base URL is never proxied. Plain http is allowed for loopback only, so that the key
never crosses a network in clear text; a proxy would carry it across one.

Every problem with a variable is a ConfigurationError naming the variable, raised when the
client is built; the value itself is never echoed (it may hold the proxy's password).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os

import attrs
import httpx

from ._base_url import PORTS, is_loopback
from .errors import ConfigurationError

_SCHEMES = frozenset({"http", "https", "socks5", "socks5h"})


@attrs.frozen
class Proxy:
    """A proxy to send through: where it came from, its URL without credentials, and those."""

    variable: str
    url: httpx.URL = attrs.field(repr=str)
    auth: tuple[str, str] | None = attrs.field(default=None, repr=False)

    @property
    def socks(self) -> bool:
        """A SOCKS proxy (socks5://, socks5h://), which needs httpcore's SOCKS pool."""
        return self.url.scheme.startswith("socks")


def environment_proxy(base_url: str) -> Proxy | None:
    """The proxy the environment names for `base_url`, checked; None to connect directly."""
    url = httpx.URL(base_url)
    if is_loopback(url.host) or bypassed(url.host):
        return None
    found = _variable(url.scheme)
    if found is None:
        return None
    variable, value = found
    return _parsed(variable, value)


def proxy_for_plain_http(host: str) -> str | None:
    """The variable an app's `httpx.Client` that trusts the environment would take a proxy for
    `http://host` from (httpx proxies loopback hosts too); None if none applies. Only `*` or the
    host itself in NO_PROXY count as excluding it: the entries httpx surely honours."""
    found = _variable("http")
    if found is None:
        return None
    entries = {entry.strip().lower() for entry in _environment("no_proxy").split(",")}
    return None if entries & {"*", host.lower(), host.lower().strip("[]")} else found[0]


def bypassed(host: str) -> bool:
    """Whether NO_PROXY names `host`: `*`, the host itself, a domain it is in, or a network
    (CIDR) holding its address."""
    for entry in _environment("no_proxy").split(","):
        entry = entry.strip().lower()
        if "://" in entry:
            entry = entry.split("://", 1)[1]
        entry = entry.rstrip("/")
        if entry == "*":
            return True
        if not entry:
            continue
        if _in_network(host, entry):
            return True
        domain = entry.lstrip("*").lstrip(".")
        name = host.lower().strip("[]")
        if domain and (name == domain or name.endswith("." + domain)):
            return True
    return False


def _in_network(host: str, entry: str) -> bool:
    try:
        network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        return ipaddress.ip_address(host.strip("[]")) in network
    except ValueError:
        return False


def _variable(scheme: str) -> tuple[str, str] | None:
    """The set variable that names a proxy for `scheme`, and its value (lower case first, as
    urllib and httpx read them)."""
    for name in (f"{scheme}_proxy", "all_proxy"):
        for variable in (name, name.upper()):
            if variable == "HTTP_PROXY" and "REQUEST_METHOD" in os.environ:
                continue  # under CGI a client's Proxy: header becomes HTTP_PROXY ("httpoxy")
            value = os.environ.get(variable, "").strip()
            if value:
                return variable, value
    return None


def _environment(name: str) -> str:
    return os.environ.get(name) or os.environ.get(name.upper()) or ""


def _parsed(variable: str, value: str) -> Proxy:
    """The proxy a variable names; ConfigurationError (naming the variable, not the value) for
    one httpx or httpcore could not use."""
    if "://" not in value:
        value = "http://" + value  # as httpx reads "proxy.example:3128"
    try:
        url = httpx.URL(value)
        port = url.port
    except (httpx.InvalidURL, ValueError, TypeError):
        raise ConfigurationError(f"${variable} is not a proxy URL") from None
    scheme = url.scheme
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"${variable} names a proxy of scheme {scheme[:20]!r}; "
            "http, https, socks5 and socks5h are supported"
        )
    if not url.host or (port is not None and port not in PORTS):
        raise ConfigurationError(f"${variable} is not a proxy URL (no host, or a bad port)")
    if scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise ConfigurationError(
            f"${variable} names a SOCKS proxy, which needs the socksio package "
            "(pip install 'httpx[socks]'), or unset it"
        )
    auth = (url.username, url.password) if url.userinfo else None
    return Proxy(variable, url.copy_with(username=None, password=None), auth)
