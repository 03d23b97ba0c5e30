"""The API root a client sends its key to: checked once, when the client is built.

https, or http to this machine only (tests, FakeKlaviyo); no user name or password, no query or
fragment (not even an empty `?` or `#`), and a port httpx could actually connect to. A shape the
rules forbid would otherwise be accepted and turn every call into a 404, or worse, send the key
where it should not go.
"""

from __future__ import annotations

import ipaddress
import os
import re

import httpx

from .errors import ConfigurationError

DEFAULT_BASE_URL = "https://a.klaviyo.com"
# Read by the library itself, not just the CLI, so that an app and the CLI, run in one
# environment (a staging proxy, a fake in CI), talk to the same server.
BASE_URL_VARIABLE = "KLAVIYO_BASE_URL"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
# Userinfo in a URL: never echoed, since it is a password.
_USERINFO = re.compile(r"(?<=//)[^/?#]*@")
PORTS = range(1, 65536)  # the ports a URL may name


def shown(url: object) -> str:
    """A URL for an error message, any user:password@ part masked."""
    return repr(_USERINFO.sub("***@", url)) if isinstance(url, str) else "given"


def checked_base_url(base_url: str) -> str:
    """A base URL the key can safely be sent to (see the module), without its trailing slash;
    else ConfigurationError."""
    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be a str, got {type(base_url).__name__}")
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError):
        raise ConfigurationError(f"base_url {shown(base_url)} is not a URL") from None
    if url.userinfo or _USERINFO.search(base_url):
        # httpx would replace the API key with Basic auth, and print the password in its log.
        raise ConfigurationError(
            f"base_url {shown(base_url)} carries a user name or password; "
            "the API key (api_key=) is the only credential sent"
        )
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigurationError(f"base_url {shown(base_url)} must be an https:// URL")
    # The raw text, not httpx's parse: an empty query or fragment ("https://host/?") parses
    # as none, yet every request would then be built against a different path.
    if url.query or url.fragment or "?" in base_url or "#" in base_url:
        raise ConfigurationError("base_url must not carry a query or fragment (no '?' or '#')")
    if url.port is not None and url.port not in PORTS:
        raise ConfigurationError(
            f"base_url {shown(base_url)} has port {url.port}; a port is 1 to 65535"
        )
    if url.scheme == "http" and not is_loopback(url.host):
        # The API key would cross the network in clear text.
        raise ConfigurationError(
            f"base_url {shown(base_url)} uses http:// for a non-loopback host; use https://"
        )
    return str(url).rstrip("/")


def base_url_or_default(base_url: str | None) -> str:
    """The argument, else $KLAVIYO_BASE_URL (if set and not empty), else Klaviyo's."""
    if base_url is not None:
        return checked_base_url(base_url)
    from_env = os.environ.get(BASE_URL_VARIABLE, "").strip()
    if not from_env:
        return DEFAULT_BASE_URL
    try:
        return checked_base_url(from_env)
    except ConfigurationError as exc:
        raise ConfigurationError(f"${BASE_URL_VARIABLE}: {exc}") from None


def is_loopback(host: str) -> bool:
    """Whether a host is this machine, by name or by address."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
