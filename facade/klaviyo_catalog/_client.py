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
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

import attrs
import httpx

from . import _checks as checks
from ._app_client import checked_app_client
from ._auth import TokenSource, checked_account, credential
from ._base_url import BASE_URL_VARIABLE, base_url_or_default
from ._body import DEFAULT_MAX_RESPONSE_BYTES
from ._checks import RateLimits
from ._core import Core
from ._deadline import DEFAULT_DEADLINE
from ._docs import document_signature
from ._flow import Action, Call, Done, Flow, Send, step
from ._methods import Methods
from ._models import BulkJob, Page
from ._operations import OPERATIONS, REVISION
from ._operations import operation as operation_named
from ._pages import PageWalk
from ._pool import AsyncTransport, Pool, SyncTransport, async_pool_of, sync_pool_of
from ._ratelimit import Rate, RateLimiter, default_limiter
from ._retry import RetryPolicy
from ._revisions import Revision, warn_if_not_stable
from ._settings import Settings
from ._sockets import deadline_in
from ._version import __version__
from ._waiting import JobsWait
from ._workers import CALLS, run_blocking
from .errors import ConfigurationError, InvalidRequestError, KlaviyoError

__all__ = ["BASE_URL_VARIABLE", "AsyncCatalogJobs", "CatalogJobs"]

T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)
DEFAULT_TIMEOUT = httpx.Timeout(30.0)


# An option `with_options` was not given: attrs' sentinel, since None means "no deadline".
UNSET = attrs.NOTHING


def _default_timeout(http_client: object) -> httpx.Timeout:
    """An app-supplied client's own timeout, unless the caller sets one; else 30 s."""
    if isinstance(http_client, httpx.Client | httpx.AsyncClient):
        return http_client.timeout
    return DEFAULT_TIMEOUT


class _ClientBase(Generic[H]):
    """Configuration shared by both clients, and their one constructor; no I/O."""

    _http_class: ClassVar[type[httpx.Client] | type[httpx.AsyncClient]]
    _pool: Pool[Any]
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
        base = base_url_or_default(base_url)
        chosen_account = checked_account(account) if account is not None else None
        http_class: Any = self._http_class
        if http_client is not None:
            if not isinstance(http_client, http_class):
                raise ConfigurationError(
                    f"http_client must be an httpx.{http_class.__name__} for {type(self).__name__}"
                )
            checked_app_client(http_client, base)
        # The environment's proxy variables are read (and checked) here; no connection opens.
        pool = _POOLS[self._http_class](http_client, base)
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
        self._pool = pool
        self._closes = pool.owned
        self._core = Core(self._settings)
        # Last: a constructor that raised has warned about nothing. The stack level points the
        # warning at the app line that built the client.
        warn_if_not_stable(chosen_revision, stacklevel=2)

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | attrs.NothingType = UNSET,
        max_retries: int | attrs.NothingType = UNSET,
        deadline: float | attrs.NothingType | None = UNSET,
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
        if max_retries is not UNSET:
            retry = attrs.evolve(retry, max_retries=checks.retries(max_retries))
        if deadline is not UNSET:
            retry = attrs.evolve(retry, deadline=checks.optional_seconds(deadline, "deadline"))
        changes: dict[str, Any] = {"retry": retry}
        if timeout is not UNSET:
            changes["timeout"] = checks.timeout(timeout)
        derived = copy.copy(self)  # every attribute, so the pool and limiter are shared
        derived._settings = attrs.evolve(settings, **changes)
        derived._closes = False
        derived._core = Core(derived._settings)
        return derived

    @property
    def revision(self) -> str:
        """The API revision sent with every request."""
        return self._settings.revision

    @property
    def base_url(self) -> str:
        """The API root requests go to, without a trailing slash."""
        return self._settings.base_url

    @property
    def account(self) -> str:
        """The name of the rate-limit budget this client's calls count against: the `account`
        it was given, else a hash of its key (or first token), never the credential itself."""
        return self._settings.account

    @property
    def timeout(self) -> httpx.Timeout:
        """Each attempt's timeout, per phase (connect, each read, ...)."""
        return self._settings.timeout

    @property
    def max_retries(self) -> int:
        """How many extra attempts a call makes after a 429, a 5xx or a network failure."""
        return self._settings.retry.max_retries

    @property
    def deadline(self) -> float | None:
        """The seconds a whole call may take, its waits and retries included; None: no
        deadline."""
        return self._settings.retry.deadline

    @property
    def rate_limiter(self) -> RateLimiter:
        """Where the rate-limit budget is kept: the one given, else the process-wide default."""
        return self._settings.limiter

    @property
    def max_connections(self) -> int:
        """The most requests this client has in flight at once: its own pool's connections
        (sized from the spec's limits, all kept alive), or 20 through an app's `http_client`
        (httpx's default keep-alive count). `AsyncCatalogJobs` queues calls beyond it."""
        return self._pool.size

    def rate_limits_for(self, operation: str) -> Sequence[Rate]:
        """The limits the operation named (`"get_item_update_job"`, as in `rate_limits`) is
        held to: the client's `rate_limits` for it, else the spec's. An unknown name raises
        InvalidRequestError."""
        if not isinstance(operation, str) or operation not in OPERATIONS:
            raise InvalidRequestError(
                f"operation must be one of {', '.join(sorted(OPERATIONS))}; got {operation!r:.80}"
            )
        return self._settings.rates(operation_named(operation))

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
      sets its own auth and headers, adds the client's default headers and cookies, never
      follows a redirect, and does not close it. The deadline bounds its calls too (a sync
      exchange is awaited in a worker thread). A plain-http (loopback) base URL with a client
      that would take a proxy from the environment is a ConfigurationError. Without one, the
      client keeps a pool of its own (`max_connections`, sized from the spec's limits, all
      kept alive), through the proxy the environment names (never for a loopback host), and
      a process forked from this one (gunicorn `--preload`, multiprocessing) gets a pool of
      its own at its first call; an app's own client is the app's to replace after fork().

    Every argument is checked here, and every error a call raises is a `KlaviyoError`.
    """

    _http_class = httpx.Client
    _pool: Pool[SyncTransport]

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
        """The response, its body read in; or the exception (the flow types it). One way down
        and back: the transport (the client's own, or the app's client) sends the request, and
        the response it returns is read within its bounds (`Send.read`). Socket waits end by
        the deadline (`deadline_in`: the own pool's sockets read it, the app's client's
        exchange is awaited until it)."""
        try:
            transport = self._pool.current()
            with deadline_in(send.timeout):
                return transport.exchange(send)
        except (httpx.HTTPError, KlaviyoError, TimeoutError) as exc:
            return exc  # TimeoutError: the app's client's exchange outlasted the deadline

    _run_to_job = _run_to_page = _run

    def _drive_walk(self, walk: PageWalk) -> Iterator[BulkJob]:
        while walk.proceed():  # a loop, not recursion; one page in memory at a time
            yield from self._run(self._core.next_page(walk))

    def _drive_wait(self, wait: JobsWait) -> Iterator[BulkJob]:
        while not wait.finished:
            yield from self._run(wait.next_round())

    def close(self) -> None:
        """Close the client's own connections (an app's `http_client` stays open)."""
        if self._closes:
            self._pool.transport.close()

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
    tasks than connections share it. The semaphore is the size of the pool, `max_connections`
    (for the client's own, sized from the spec's limits; for an app's `http_client`, 20,
    httpx's default keep-alive count). A client used under a second event loop (another
    `asyncio.run()`) rebuilds its own pool for it.
    """

    _http_class = httpx.AsyncClient
    _pool: Pool[AsyncTransport]

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
                future = asyncio.wrap_future(CALLS.submit(action.function))
                return await asyncio.wait_for(asyncio.shield(future), action.timeout)
            except Exception as exc:
                return exc
        await asyncio.sleep(action.seconds)
        return None

    async def _send(self, send: Send) -> Any:
        """As `CatalogJobs._send`; the whole exchange, a wait for a connection slot included,
        is cut off at the deadline to the instant, whichever the transport."""
        import asyncio

        try:
            transport, slots = self._pool.for_loop(asyncio.get_running_loop())
            async with asyncio.timeout(send.timeout), slots:
                return await transport.exchange(send)
        except (httpx.HTTPError, KlaviyoError, TimeoutError) as exc:
            return exc  # TimeoutError: asyncio.timeout's, the deadline passed
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

    _run_to_job = _run_to_page = _run

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
        if self._closes and not self._pool.transport.is_closed:
            import asyncio

            # Connections opened under another (closed) loop cannot be closed from this one.
            transport, _ = self._pool.for_loop(asyncio.get_running_loop())
            await transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# A client's pool, by the class of httpx client it takes: an app's (None: its own) for a base URL.
_POOLS: dict[type[httpx.Client] | type[httpx.AsyncClient], Callable[[Any, str], Pool[Any]]] = {
    httpx.Client: sync_pool_of,
    httpx.AsyncClient: async_pool_of,
}
# help(): `http_client`'s type as each client takes it (see _docs).
for _client_class in (CatalogJobs, AsyncCatalogJobs):
    document_signature(_client_class)
