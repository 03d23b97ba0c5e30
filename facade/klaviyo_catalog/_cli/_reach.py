"""Before the first request: can the API's host be reached at all?

The library retries a failed connection, rightly for an app (a network blip passes), but a
person at a terminal with a wrong --base-url or no network would wait through every retry
(3 to 5 s for a refused connection, minutes for a host that drops packets) to learn it. One
TCP connection, made first, says so at once; once it succeeds, the command's requests keep
every retry of the library for the failures that do pass.
"""

from __future__ import annotations

import socket

import httpx

from .._proxies import environment_proxy
from ..errors import ConfigurationError

# A TCP handshake to Klaviyo takes well under a second from anywhere; a host that has not
# answered in this long is taken as unreachable rather than slow.
CONNECT_SECONDS = 5.0


def unreachable(base_url: str, timeout: float = CONNECT_SECONDS) -> str | None:
    """Why the host of `base_url` cannot be reached, or None: it accepted a connection, or the
    environment names a proxy for it (then only the proxy can tell, and is not second-guessed).
    """
    url = httpx.URL(base_url)
    if _proxied(url):
        return None
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"the host name {url.host} does not resolve"
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _proxied(url: httpx.URL) -> bool:
    """Whether the client's own pool will send `url` through a proxy the environment names (a
    loopback host never is: `klaviyo_catalog._proxies`). A proxy variable the client cannot
    use counts as one: the client refuses it, naming it, when it is built."""
    try:
        return environment_proxy(str(url)) is not None
    except ConfigurationError:
        return True
