"""Credentials: a private API key, or an OAuth access token (a string, or a function that
returns a fresh one). Each knows its Authorization header and which strings to keep secret;
none ever shows its secret in a repr.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from ._ratelimit import account_key
from .errors import ConfigurationError

TokenSource = str | Callable[[], str]
# Tokens a provider handed out that are kept for redaction; older ones have long expired.
REMEMBERED_TOKENS = 8


def checked_secret(value: object, what: str) -> str:
    """`value` stripped, if it can be sent in a header as a credential; ConfigurationError
    naming `what` and why (the message never quotes the value)."""
    if not isinstance(value, str) or not value.strip():
        problem = "is empty or not a string"
    elif any(c in value for c in "\r\n"):
        problem = "contains a line break"
    elif not value.isascii() or not value.strip().isprintable():
        # It is sent as a header: httpx would fail on it at request time, with an encoding
        # error that carries the whole header, secret included, in its `object` attribute.
        problem = "contains a control or non-ASCII character"
    else:
        return value.strip()
    # This frame stays in the error's traceback, whose locals error trackers record: without
    # the secret (a key or token with a stray newline is still the key or token).
    del value
    raise ConfigurationError(f"the {what} {problem}")


class Credential:
    """A private API key (`Authorization: Klaviyo-API-Key <key>`) or an OAuth access token
    (`Authorization: Bearer <token>`).

    From a string, or for a token from a function returning a fresh one: called once at
    construction, and again by `refresh()` (the core calls it after a 401, off the event loop
    for the async client).
    """

    def __init__(self, scheme: str, source: TokenSource) -> None:
        self._scheme = scheme
        self._provider: Callable[[], str] | None = None if isinstance(source, str) else source
        self._lock = threading.Lock()
        self._seen: deque[str] = deque(maxlen=REMEMBERED_TOKENS)
        self._token = ""
        if isinstance(source, str):
            self._set(source)
        else:
            self.refresh()
        # The first token: a refresh must not move the client to a budget of its own.
        self._first = self._token

    @property
    def refreshable(self) -> bool:
        """Whether a 401 is worth one `refresh()` and retry: only with a token function."""
        return self._provider is not None

    def authorization(self) -> str:
        """The Authorization header's value, with the current key or token."""
        return f"{self._scheme} {self._token}"

    def default_account(self) -> str:
        """The rate-limit budget's key when the app names no `account=`: a hash of the key, or
        of the first token."""
        return account_key(self._first)

    def secrets(self) -> tuple[str, ...]:
        """The key, or every token seen lately: what must never appear in a message, a log
        line or a kept request."""
        with self._lock:
            return tuple(self._seen)

    def refresh(self) -> None:
        """Ask the provider for a fresh token. ConfigurationError if it fails or returns
        something that is not a token (naming the exception type only: its message might
        quote a token)."""
        # What the provider returned goes straight to checked_secret, in no local of this
        # frame: the frames an error tracker records keep no token (a dict holding one, a
        # token with a trailing newline read from a file).
        what = "access token the access_token function returned"
        self._set(checked_secret(self._call_provider(), what))

    def _call_provider(self) -> object:
        """What the token function returns; if it raises, ConfigurationError naming the type."""
        assert self._provider is not None, "only a token function can be refreshed"
        try:
            return self._provider()
        except Exception as exc:
            failure = type(exc).__name__
        # Raised outside the handler, so that the app's exception (whose message may quote a
        # token) is not kept as this one's context, where error trackers would find it.
        raise ConfigurationError(f"the access_token function failed: {failure}")

    def _set(self, token: str) -> None:
        with self._lock:
            self._token = token
            if token not in self._seen:
                self._seen.append(token)

    def __repr__(self) -> str:
        return "Credential(...)"


def credential(
    api_key: str | None, access_token: TokenSource | None, environment_key: str | None
) -> Credential:
    """The one credential a client uses: `api_key`, or `access_token`, or the environment's
    key. Both given is a ConfigurationError: which one to send would be a guess."""
    if api_key is not None and access_token is not None:
        raise ConfigurationError("pass api_key or access_token, not both")
    if isinstance(access_token, str):
        return Credential("Bearer", checked_secret(access_token, "access token"))
    if access_token is not None:
        if not callable(access_token):
            raise ConfigurationError(
                "access_token must be a string or a function returning one, "
                f"not {type(access_token).__name__}"
            )
        return Credential("Bearer", access_token)
    key = api_key if api_key is not None else environment_key
    if key is None or (isinstance(key, str) and not key.strip()):
        raise ConfigurationError(
            "no Klaviyo credential: pass api_key= (or set the KLAVIYO_API_KEY environment "
            "variable), or access_token= for an OAuth app"
        )
    return Credential("Klaviyo-API-Key", checked_secret(key, "API key"))


def checked_account(account: object) -> str:
    """An app-chosen name for the rate-limit budget: printable, at most 200 characters."""
    if not isinstance(account, str) or not account.strip() or len(account) > 200:
        raise ConfigurationError("account must be a non-empty string of at most 200 characters")
    if not account.isprintable():
        raise ConfigurationError("account must not contain control characters")
    return account
