"""`CatalogJobs` and `AsyncCatalogJobs`: their configuration, and the drivers of the core.

The public methods are not here. The `get_*`, `list_*` and `iter_*` calls are generated from
the curated spec (`klaviyo_catalog_api.methods.JobMethods`), and they and the waits reach the
clients through `_methods.Methods`, which starts a flow of the shared core (`_core.Core`).
This module holds what is left: the constructor and `with_options()` (their arguments checked
by `_checks`), and the two drivers, which perform the flow's actions, blocking or awaiting,
and iterate a walk or a wait as a generator of their kind.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import os
import re
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

import attrs
import httpx

from . import _checks as checks
from ._auth import TokenSource, checked_account, credential
from ._body import DEFAULT_MAX_RESPONSE_BYTES
from ._checks import RateLimits
from ._core import Core
from ._deadline import DEFAULT_DEADLINE
from ._flow import Action, Call, Done, Flow, Send, step
from ._methods import Methods
from ._models import BulkJob, Page
from ._operations import REVISION
from ._pages import PageWalk
from ._pool import Pool, opened, sent
from ._ratelimit import RateLimiter, default_limiter
from ._retry import RetryPolicy
from ._revisions import Revision, warn_if_not_stable
from ._settings import Settings
from ._sockets import deadline_in
from ._version import __version__
from ._waiting import JobsWait
from ._workers import run_blocking, worker_pool
from .errors import ConfigurationError, KlaviyoError

__all__ = ["AsyncCatalogJobs", "CatalogJobs"]

T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)
DEFAULT_BASE_URL = "https://a.klaviyo.com"
DEFAULT_TIMEOUT = httpx.Timeout(30.0)
# Read by the library itself, not just the CLI, so that an app and the CLI, run in one
# environment (a staging proxy, a fake in CI), talk to the same server.
BASE_URL_VARIABLE = "KLAVIYO_BASE_URL"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
# A call on a closed client: its own pool would otherwise quietly open new connections.
CLOSED = "the client is closed (its http_client too, if it was given one); make a new one"
# Userinfo in a URL: never echoed, since it is a password.
_USERINFO = re.compile(r"(?<=//)[^/?#]*@")


def _shown(base_url: object) -> str:
    """base_url for an error message, any user:password@ part masked."""
    return repr(_USERINFO.sub("***@", base_url)) if isinstance(base_url, str) else "given"


def _checked_base_url(base_url: str) -> str:
    """A base URL the key can safely be sent to: https (http only to a loopback host), no user or
    password, no query or fragment; without its trailing slash."""
    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be a str, got {type(base_url).__name__}")
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError):
        raise ConfigurationError(f"base_url {_shown(base_url)} is not a URL") from None
    if url.userinfo or _USERINFO.search(base_url):
        # httpx would replace the API key with Basic auth, and print the password in its log.
        raise ConfigurationError(
            f"base_url {_shown(base_url)} carries a user name or password; "
            "the API key (api_key=) is the only credential sent"
        )
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigurationError(f"base_url {_shown(base_url)} must be an https:// URL")
    if url.query or url.fragment:
        raise ConfigurationError("base_url must not carry a query or fragment")
    if url.scheme == "http" and not _is_loopback(url.host):
        # The API key would cross the network in clear text.
        raise ConfigurationError(
            f"base_url {_shown(base_url)} uses http:// for a non-loopback host; use https://"
        )
    return str(url).rstrip("/")


def _base_url(base_url: str | None) -> str:
    """The argument, else $KLAVIYO_BASE_URL (if set and not empty), else Klaviyo's."""
    if base_url is not None:
        return _checked_base_url(base_url)
    from_env = os.environ.get(BASE_URL_VARIABLE, "").strip()
    if not from_env:
        return DEFAULT_BASE_URL
    try:
        return _checked_base_url(from_env)
    except ConfigurationError as exc:
        raise ConfigurationError(f"${BASE_URL_VARIABLE}: {exc}") from None


def _is_loopback(host: str) -> bool:
    """Whether a host is this machine, by name or by address."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Unset:
    """The type of UNSET: an option `with_options` was not given (None means "no deadline")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


def _default_timeout(http_client: object) -> httpx.Timeout:
    """An app-supplied client's own timeout, unless the caller sets one; else 30 s."""
    if isinstance(http_client, httpx.Client | httpx.AsyncClient):
        return http_client.timeout
    return DEFAULT_TIMEOUT


class _ClientBase(Generic[H]):
    """Configuration shared by both clients, and their one constructor; no I/O."""

    _http_class: ClassVar[type[httpx.Client] | type[httpx.AsyncClient]]
    _pool: Pool[H]
    _closes: bool  # closing this client closes the pool (its own, not a with_options() copy)

    def __init__(
        self,
        api_key: str | None = None,
        *,
        access_token: TokenSource | None = None,
        account: str | None = None,
        revision: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 4,
        retry_backoff: float = 0.5,
        deadline: float | None = DEFAULT_DEADLINE,
        max_retry_after: float = 60.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        rate_limits: RateLimits = None,
        rate_limiter: RateLimiter | None = None,
        http_client: H | None = None,
    ) -> None:
        """A client: the class docstring describes each argument. Every one is checked here,
        before any request; one that is wrong raises ConfigurationError."""
        if api_key is not None and access_token is not None:
            raise ConfigurationError("pass api_key or access_token, not both")
        # Checked here, once: a malformed revision would otherwise be sent, answered 400, and
        # look like an API error. str() gives the canonical spelling.
        chosen_revision = str(Revision.parse(REVISION if revision is None else revision))
        retry = RetryPolicy(  # checks its fields too, by their own names
            max_retries=checks.retries(max_retries),
            backoff_base=checks.seconds(retry_backoff, "retry_backoff"),
            deadline=checks.optional_seconds(deadline, "deadline"),
            max_retry_after=checks.retry_after_ceiling(max_retry_after),
        )
        base = _base_url(base_url)
        chosen_account = checked_account(account) if account is not None else None
        # Last of the checks: a token function is called here, once.
        auth = credential(api_key, access_token, os.environ.get("KLAVIYO_API_KEY"))
        self._settings = Settings(
            credential=auth,
            account=chosen_account or auth.default_account(),
            revision=chosen_revision,
            base_url=base,
            timeout=checks.timeout(
                timeout if timeout is not None else _default_timeout(http_client)
            ),
            retry=retry,
            limiter=rate_limiter if rate_limiter is not None else default_limiter(),
            rate_limits=checks.rate_limits(rate_limits),
            user_agent=f"klaviyo-catalog-jobs/{__version__} httpx/{httpx.__version__}",
            max_response_bytes=checks.byte_count(max_response_bytes),
        )
        http_class: Any = self._http_class
        if http_client is not None and not isinstance(http_client, http_class):
            raise ConfigurationError(
                f"http_client must be an httpx.{http_class.__name__} for {type(self).__name__}"
            )
        self._pool = Pool(http_class, http_client)
        self._closes = self._pool.owned
        self._core = Core(self._settings, self._pool.build_request)
        # Last: a constructor that raised has warned about nothing. The stack level points the
        # warning at the app line that built the client.
        warn_if_not_stable(chosen_revision, stacklevel=2)

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | _Unset = UNSET,
        max_retries: int | _Unset = UNSET,
        deadline: float | _Unset | None = UNSET,
    ) -> Self:
        """A client with other per-call options, sharing this one's connection pool, rate
        limiter and credentials. Options not given are kept; `deadline=None` removes one.

            kc.with_options(timeout=120).get_item_update_job(job_id, include=["items"])
            kc.with_options(max_retries=0).list_item_create_jobs()

        It is cheap (no new connections), so build one per call if need be. Closing it does
        nothing: the pool belongs to the client it came from, and closes with that one.
        Raises ConfigurationError for an option out of range.
        """
        settings = self._settings
        retry = settings.retry
        if not isinstance(max_retries, _Unset):
            retry = attrs.evolve(retry, max_retries=checks.retries(max_retries))
        if not isinstance(deadline, _Unset):
            retry = attrs.evolve(retry, deadline=checks.optional_seconds(deadline, "deadline"))
        changes: dict[str, Any] = {"retry": retry}
        if not isinstance(timeout, _Unset):
            changes["timeout"] = checks.timeout(timeout)
        derived = copy.copy(self)  # every attribute, so the pool and limiter are shared
        derived._settings = attrs.evolve(settings, **changes)
        derived._closes = False
        derived._core = Core(derived._settings, self._pool.build_request)
        return derived

    @property
    def revision(self) -> str:
        """The API revision sent with every request."""
        return self._settings.revision

    @property
    def base_url(self) -> str:
        """The API root requests go to, without a trailing slash."""
        return self._settings.base_url

    def __repr__(self) -> str:
        # Never the key; not even a prefix of it.
        return f"{type(self).__name__}(base_url={self.base_url!r}, revision={self.revision!r})"


class CatalogJobs(_ClientBase[httpx.Client], Methods[BulkJob, Page[BulkJob], Iterator[BulkJob]]):
    """Klaviyo's catalog bulk jobs, synchronously. Use it as a context manager, or close() it.

    - `api_key`: a private key; defaults to the KLAVIYO_API_KEY environment variable.
    - `access_token`: instead of a key, an OAuth app's access token (sent as `Authorization:
      Bearer`): a string, or a function returning a fresh one. The function is called once
      here and again after a 401, and the request is then retried once (the async client
      calls it in a worker thread). Both `api_key` and `access_token` is a ConfigurationError.
    - `account`: the name of the rate-limit budget, e.g. one installed app instance (OAuth
      apps get a quota per installation); defaults to a hash of the key or of the first
      token. Name it when tokens rotate across processes that share a RedisRateLimiter.
    - `revision`: the `revision` header; defaults to the revision the client was generated
      from. Another one works for reading jobs (paths and media type follow it), but new
      fields and limits come with regenerating for it (see the README).
    - `base_url`: https, or http for a loopback host only (tests, FakeKlaviyo), never with a
      user name or password in it; defaults to the KLAVIYO_BASE_URL environment variable,
      else https://a.klaviyo.com.
    - `deadline`: seconds for a whole call, 120 by default: every attempt, rate-limit wait,
      retry backoff, rate-limiter round trip and the reading of the body share it, and a call
      that runs out raises `DeadlineExceededError`. None lifts it (then only `timeout`
      bounds each attempt, per phase). `timeout`: per attempt and per phase (connect, each
      read, ...), seconds or an httpx.Timeout; shortened to what the deadline leaves.
    - `max_response_bytes`: the largest response body accepted, decoded (16 MiB by default);
      a larger one, or a gzip bomb, is `InvalidResponseError`, read no further.
    - `max_retries`: extra attempts after 429, 5xx, connection errors and timeouts;
      `retry_backoff`: the first backoff step, in seconds. `max_retry_after`: the longest
      `Retry-After` (seconds) a 429 is waited out for; beyond it the call raises
      `RateLimitError` at once, with the server's `retry_after`, and nothing else waits. It
      also caps a success's `RateLimit-Reset`, how long a budget the server calls spent holds
      the account's calls; at most a year.
    - `rate_limits`: a list of `Rate` for every operation, or a mapping from operation name to
      such a list; defaults to the spec's `x-klaviyo-ratelimit`. `rate_limiter`: where the
      budget is kept; the default is shared by every client of this process, and
      `RedisRateLimiter` shares it across processes and hosts.
    - `http_client`: an `httpx.Client` of the app's (proxies, transports); the facade still
      sets its own auth and headers, and does not close it. Without one, the client keeps a
      pool of 20 connections, all kept alive, and a process forked from this one (gunicorn
      `--preload`, multiprocessing) gets a pool of its own at its first call; an app's own
      client is the app's to replace after fork().

    Every argument is checked here, and every error a call raises is a `KlaviyoError`.
    """

    _http_class = httpx.Client

    def _run(self, flow: Flow[T]) -> T:
        # Closing the flow on any way out (KeyboardInterrupt included) lets it hand back its
        # rate-limit ticket.
        with contextlib.closing(flow):
            state = step(flow, None)
            while not isinstance(state, Done):
                state = step(flow, self._perform(state))
            return state.value

    def _perform(self, action: Action) -> Any:
        """Do what the flow asked, blocking; the outcome it is sent back (see `Flow`)."""
        if isinstance(action, Send):
            return self._send(action)
        if isinstance(action, Call):
            return run_blocking(action)
        time.sleep(action.seconds)
        return None

    def _send(self, send: Send) -> Any:
        """The response, its body read into the flow's Body; or the exception (the flow types
        it). The client's own sockets wait no longer than the deadline (`_sockets`); with an
        app's client, the deadline is checked as each chunk of the body arrives."""
        pool = self._pool
        pool.in_this_process()
        http = pool.http
        if http.is_closed:
            return ConfigurationError(CLOSED)
        try:
            with deadline_in(send.timeout):
                if isinstance(pool.direct, httpx.BaseTransport):
                    request = send.request
                    response = opened(http, request, pool.direct.handle_request(request))
                else:
                    # Never a redirect, whatever the app's client says: it carries the key.
                    response = http.send(send.request, stream=True, follow_redirects=False)
                try:
                    body = send.receive(response)
                    # The raw stream itself: iter_raw() refuses a body a transport had already
                    # read (MockTransport's), whose bytes the stream still holds.
                    if response.is_stream_consumed:
                        # An app's event hook read the body: the stream would wait forever.
                        body.feed(response.content)
                    else:
                        for chunk in _sync_stream(response):
                            body.feed(chunk)
                finally:
                    response.close()
            return body.response()
        except (httpx.HTTPError, KlaviyoError) as exc:
            return sent(exc, send.request)

    def _run_to_job(self, flow: Flow[BulkJob]) -> BulkJob:
        return self._run(flow)

    def _run_to_page(self, flow: Flow[Page[BulkJob]]) -> Page[BulkJob]:
        return self._run(flow)

    def _drive_walk(self, walk: PageWalk) -> Iterator[BulkJob]:
        while walk.proceed():  # a loop, not recursion; one page in memory at a time
            yield from self._run(self._core.next_page(walk))

    def _drive_wait(self, wait: JobsWait) -> Iterator[BulkJob]:
        while not wait.finished:
            yield from self._run(wait.next_round())

    def close(self) -> None:
        """Close the client's own connections (an app's `http_client` stays open)."""
        if self._closes:
            self._pool.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncCatalogJobs(
    _ClientBase[httpx.AsyncClient],
    Methods[
        Coroutine[Any, Any, BulkJob],
        Coroutine[Any, Any, Page[BulkJob]],
        AsyncIterator[BulkJob],
    ],
):
    """The same as `CatalogJobs`, for asyncio: `async with`, `await`, `async for`.

    Calls beyond the connection pool's size wait their turn here, in a semaphore, rather than
    inside httpcore's pool, which thrashes (closes and reopens connections) when far more
    tasks than connections share it. The semaphore is the size of the pool (20 for the
    client's own; for an app's `http_client`, its keep-alive limit). A client used under a
    second event loop (another `asyncio.run()`) rebuilds its own pool for it.
    """

    _http_class = httpx.AsyncClient

    async def _run(self, flow: Flow[T]) -> T:
        # A cancelled task closes the flow, which hands back its rate-limit ticket.
        with contextlib.closing(flow):
            state = step(flow, None)
            while not isinstance(state, Done):
                state = step(flow, await self._perform(state))
            return state.value

    async def _perform(self, action: Action) -> Any:
        """Do what the flow asked, awaiting; the outcome it is sent back (see `Flow`)."""
        # Imported here: asyncio costs sync-only apps ~25 ms of start-up, and an async app has
        # it loaded already.
        import asyncio

        if isinstance(action, Send):
            return await self._send(action)
        if isinstance(action, Call):
            try:  # off the event loop: it blocks on I/O
                # Shielded: a timed-out round trip still finishes (a ticket completes).
                future = asyncio.wrap_future(worker_pool().submit(action.function))
                return await asyncio.wait_for(asyncio.shield(future), action.timeout)
            except Exception as exc:
                return exc
        await asyncio.sleep(action.seconds)
        return None

    async def _send(self, send: Send) -> Any:
        """As `CatalogJobs._send`; the whole exchange, a wait for a connection slot included,
        is also cut off at the deadline to the instant."""
        import asyncio

        pool = self._pool
        slots = pool.slots(asyncio.get_running_loop())
        http = pool.http
        if http.is_closed:
            return ConfigurationError(CLOSED)
        try:
            async with asyncio.timeout(send.timeout), slots:
                if isinstance(pool.direct, httpx.AsyncBaseTransport):
                    request = send.request
                    received = await pool.direct.handle_async_request(request)
                    response = opened(http, request, received)
                else:
                    # Never a redirect, as above.
                    response = await http.send(send.request, stream=True, follow_redirects=False)
                try:
                    body = send.receive(response)
                    if response.is_stream_consumed:
                        body.feed(response.content)  # read by an app's event hook
                    else:
                        async for chunk in _async_stream(response):
                            body.feed(chunk)
                finally:
                    await response.aclose()
            return body.response()
        except (httpx.HTTPError, KlaviyoError) as exc:
            return sent(exc, send.request)
        except TimeoutError as exc:  # asyncio.timeout's: the deadline passed
            return exc
        except RuntimeError as exc:
            if type(exc) is not RuntimeError:  # httpx's own StreamError and the like
                raise
            # "Event loop is closed", from an app's client used under a second loop.
            error = ConfigurationError(
                f"the http_client failed: RuntimeError: {exc!s:.100}; an httpx.AsyncClient "
                "belongs to the event loop it was first used in: give AsyncCatalogJobs one "
                "made in this loop, or none (its own pool follows the loop)"
            )
            error.__cause__ = exc
            return error

    def _run_to_job(self, flow: Flow[BulkJob]) -> Coroutine[Any, Any, BulkJob]:
        return self._run(flow)

    def _run_to_page(self, flow: Flow[Page[BulkJob]]) -> Coroutine[Any, Any, Page[BulkJob]]:
        return self._run(flow)

    async def _drive_walk(self, walk: PageWalk) -> AsyncIterator[BulkJob]:
        while walk.proceed():
            for job in await self._run(self._core.next_page(walk)):
                yield job

    async def _drive_wait(self, wait: JobsWait) -> AsyncIterator[BulkJob]:
        while not wait.finished:
            for job in await self._run(wait.next_round()):
                yield job

    async def aclose(self) -> None:
        """Close the client's own connections (an app's `http_client` stays open)."""
        if self._closes:
            import asyncio

            # Connections opened under another (closed) loop cannot be closed from this one.
            self._pool.slots(asyncio.get_running_loop())
            await self._pool.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _sync_stream(response: httpx.Response) -> httpx.SyncByteStream:
    """The response's raw stream; a TypeError for an async one, which an app's odd transport
    could return."""
    stream = response.stream
    if not isinstance(stream, httpx.SyncByteStream):
        raise TypeError("an httpx.Client returned an async response stream")
    return stream


def _async_stream(response: httpx.Response) -> httpx.AsyncByteStream:
    """The response's raw stream; a TypeError for a sync one, which an app's odd transport could
    return."""
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError("an httpx.AsyncClient returned a sync response stream")
    return stream
