"""`CatalogJobs` and `AsyncCatalogJobs`: thin drivers of the shared core in `_core.py`.

The public methods are one-line wrappers that pick an operation and hand its flow to the
driver; only the drivers (and `iter_*`, which must be a generator of each kind) differ.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import os
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

import attrs
import httpx

from ._auth import TokenSource, checked_account, credential
from ._core import Call, Core, Fields, Flow, PageWalk, RateLimits, Send, Settings
from ._models import BulkJob, Page
from ._operations import OPERATIONS, REVISION
from ._ratelimit import Rate, RateLimiter, default_limiter
from ._retry import RetryPolicy
from ._revisions import Revision, warn_if_not_stable
from ._version import __version__
from ._waiting import JobsWait, WaitProgress, wait_for_job
from .errors import ConfigurationError, InvalidRequestError

__all__ = ["AsyncCatalogJobs", "CatalogJobs"]

T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)
DEFAULT_BASE_URL = "https://a.klaviyo.com"
# Read by the library itself, not just the CLI, so that an app and the CLI, run in one
# environment (a staging proxy, a fake in CI), talk to the same server.
BASE_URL_VARIABLE = "KLAVIYO_BASE_URL"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def _checked_base_url(base_url: str) -> str:
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"base_url {base_url!r} is not a URL") from exc
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigurationError(f"base_url {base_url!r} must be an https:// URL")
    if url.query or url.fragment:
        raise ConfigurationError("base_url must not carry a query or fragment")
    if url.scheme == "http" and not _is_loopback(url.host):
        # The API key would cross the network in clear text.
        raise ConfigurationError(
            f"base_url {base_url!r} uses http:// for a non-loopback host; use https://"
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
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _cursor(cursor: str | None, start_cursor: str | None) -> str | None:
    """`iter_*`'s cursor, taking the deprecated `start_cursor=` (one name for list_* and iter_*)."""
    if start_cursor is None:
        return cursor
    if cursor is not None and cursor != start_cursor:
        raise InvalidRequestError("pass cursor= only (start_cursor= is its deprecated name)")
    warnings.warn(
        "start_cursor= is deprecated; pass cursor=, as to list_*",
        DeprecationWarning,
        stacklevel=3,  # the caller of iter_*
    )
    return start_cursor


def _checked_rate_limits(rate_limits: RateLimits) -> RateLimits:
    def check(rates: Any, where: str) -> list[Rate]:
        if isinstance(rates, Rate):
            rates = [rates]
        if (
            not isinstance(rates, Sequence)
            or not rates
            or not all(isinstance(r, Rate) for r in rates)
        ):
            raise ConfigurationError(f"{where} must be a non-empty list of klaviyo_catalog.Rate")
        return list(rates)

    if rate_limits is None:
        return None
    if isinstance(rate_limits, Mapping):
        unknown = sorted(str(op) for op in rate_limits if op not in OPERATIONS)
        if unknown:
            raise ConfigurationError(
                f"rate_limits names no such operation: {', '.join(unknown)}; "
                f"operations: {', '.join(sorted(OPERATIONS))}"
            )
        return {str(op): check(rates, f"rate_limits[{op!r}]") for op, rates in rate_limits.items()}
    return check(rate_limits, "rate_limits")


class _Unset:
    """The type of UNSET: an option `with_options` was not given (None means "no deadline")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


def _timeout(timeout: float | httpx.Timeout) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigurationError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return httpx.Timeout(timeout)


def _retries(max_retries: int) -> int:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        raise ConfigurationError(f"max_retries must be an int >= 0, not {max_retries!r}")
    return max_retries


class _ClientBase(Generic[H]):
    """Configuration shared by both clients, and their one constructor; no I/O."""

    _http_class: ClassVar[type[httpx.Client] | type[httpx.AsyncClient]]

    def __init__(
        self,
        api_key: str | None = None,
        *,
        access_token: TokenSource | None = None,
        account: str | None = None,
        revision: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 4,
        retry_backoff: float = 0.5,
        deadline: float | None = None,
        max_retry_after: float = 60.0,
        rate_limits: RateLimits = None,
        rate_limiter: RateLimiter | None = None,
        http_client: H | None = None,
    ) -> None:
        if api_key is not None and access_token is not None:
            raise ConfigurationError("pass api_key or access_token, not both")
        # Checked here, once: a malformed revision would otherwise be sent, answered 400, and
        # look like an API error. str() gives the canonical spelling.
        chosen_revision = str(Revision.parse(REVISION if revision is None else revision))
        try:
            retry = RetryPolicy(
                max_retries=_retries(max_retries),
                backoff_base=retry_backoff,
                deadline=deadline,
                max_retry_after=max_retry_after,
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(str(exc)) from exc
        base = _base_url(base_url)
        chosen_account = checked_account(account) if account is not None else None
        # Last of the checks: a token function is called here, once.
        auth = credential(api_key, access_token, os.environ.get("KLAVIYO_API_KEY"))
        self._settings = Settings(
            credential=auth,
            account=chosen_account or auth.default_account(),
            revision=chosen_revision,
            base_url=base,
            timeout=_timeout(timeout),
            retry=retry,
            limiter=rate_limiter if rate_limiter is not None else default_limiter(),
            rate_limits=_checked_rate_limits(rate_limits),
            user_agent=f"klaviyo-catalog-jobs/{__version__} httpx/{httpx.__version__}",
        )
        http_class: Any = self._http_class
        if http_client is not None and not isinstance(http_client, http_class):
            raise ConfigurationError(
                f"http_client must be an httpx.{http_class.__name__} for {type(self).__name__}"
            )
        self._owns_http = http_client is None
        self._http: H = http_client if http_client is not None else http_class()
        self._core = Core(self._settings, self._http.build_request)
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
        try:
            if not isinstance(max_retries, _Unset):
                retry = attrs.evolve(retry, max_retries=_retries(max_retries))
            if not isinstance(deadline, _Unset):
                retry = attrs.evolve(retry, deadline=deadline)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(str(exc)) from None
        changes: dict[str, Any] = {"retry": retry}
        if not isinstance(timeout, _Unset):
            changes["timeout"] = _timeout(timeout)
        derived = copy.copy(self)  # every attribute, so the pool and limiter are shared
        derived._settings = attrs.evolve(settings, **changes)
        derived._owns_http = False
        derived._core = Core(derived._settings, self._http.build_request)
        return derived

    @property
    def revision(self) -> str:
        return self._settings.revision

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    def __repr__(self) -> str:
        # Never the key; not even a prefix of it.
        return f"{type(self).__name__}(base_url={self.base_url!r}, revision={self.revision!r})"


class CatalogJobs(_ClientBase[httpx.Client]):
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
    - `base_url`: https, or http for a loopback host only (tests, FakeKlaviyo); defaults to
      the KLAVIYO_BASE_URL environment variable, else https://a.klaviyo.com.
    - `timeout`: per attempt, seconds or an httpx.Timeout. `deadline`: for a whole call,
      retries and waits included.
    - `max_retries`: extra attempts after 429, 5xx, connection errors and timeouts;
      `retry_backoff`: the first backoff step, in seconds. `max_retry_after`: the longest
      `Retry-After` (seconds) a 429 is waited out for; beyond it the call raises
      `RateLimitError` at once, with the server's `retry_after`, and nothing else waits.
    - `rate_limits`: a list of `Rate` for every operation, or a mapping from operation name to
      such a list; defaults to the spec's `x-klaviyo-ratelimit`. `rate_limiter`: where the
      budget is kept; the default is shared by every client of this process, and
      `RedisRateLimiter` shares it across processes and hosts.
    - `http_client`: an `httpx.Client` of the app's (proxies, transports); the facade still
      sets its own auth and headers, and does not close it.
    """

    _http_class = httpx.Client

    def _run(self, flow: Flow[T]) -> T:
        # Closing the flow on any way out (KeyboardInterrupt included) lets it hand back its
        # rate-limit ticket.
        with contextlib.closing(flow):
            outcome: Any = None
            while True:
                try:
                    action = flow.send(outcome)
                except StopIteration as done:
                    result: T = done.value
                    return result
                if isinstance(action, Send):
                    try:
                        # Never a redirect, whatever the app's client says: it carries the key.
                        outcome = self._http.send(action.request, follow_redirects=False)
                    except httpx.HTTPError as exc:  # the flow decides whether to retry
                        outcome = exc
                elif isinstance(action, Call):
                    try:
                        outcome = action.function()
                    except Exception as exc:  # the flow types it
                        outcome = exc
                else:
                    time.sleep(action.seconds)
                    outcome = None

    # --- single jobs ---

    def get_item_update_job(
        self, job_id: str, *, include: Iterable[str] | None = None, fields: Fields = None
    ) -> BulkJob:
        return self._run(self._core.get_job("get_item_update_job", job_id, include, fields))

    def get_variant_update_job(
        self, job_id: str, *, include: Iterable[str] | None = None, fields: Fields = None
    ) -> BulkJob:
        return self._run(self._core.get_job("get_variant_update_job", job_id, include, fields))

    def get_category_update_job(
        self, job_id: str, *, include: Iterable[str] | None = None, fields: Fields = None
    ) -> BulkJob:
        return self._run(self._core.get_job("get_category_update_job", job_id, include, fields))

    # --- listings: one page, or every page lazily ---

    def list_item_create_jobs(
        self, *, status: str | None = None, cursor: str | None = None, fields: Fields = None
    ) -> Page[BulkJob]:
        return self._run(
            self._core.list_page(
                "list_item_create_jobs", status=status, cursor=cursor, fields=fields
            )
        )

    def list_variant_update_jobs(
        self, *, status: str | None = None, cursor: str | None = None, fields: Fields = None
    ) -> Page[BulkJob]:
        return self._run(
            self._core.list_page(
                "list_variant_update_jobs", status=status, cursor=cursor, fields=fields
            )
        )

    def iter_item_create_jobs(
        self,
        *,
        status: str | None = None,
        cursor: str | None = None,
        fields: Fields = None,
        start_cursor: str | None = None,
    ) -> Iterator[BulkJob]:
        """Every item-create job of every page, one page in memory at a time, from
        `cursor` (an error's `.cursor` resumes a walk) or the first page. `start_cursor` is the
        deprecated name of `cursor`."""
        cursor = _cursor(cursor, start_cursor)
        return self._walk("list_item_create_jobs", status, cursor, fields)

    def iter_variant_update_jobs(
        self,
        *,
        status: str | None = None,
        cursor: str | None = None,
        fields: Fields = None,
        start_cursor: str | None = None,
    ) -> Iterator[BulkJob]:
        """Every variant-update job of every page, one page in memory at a time, from
        `cursor` (an error's `.cursor` resumes a walk) or the first page. `start_cursor` is the
        deprecated name of `cursor`."""
        cursor = _cursor(cursor, start_cursor)
        return self._walk("list_variant_update_jobs", status, cursor, fields)

    def _walk(
        self, name: str, status: str | None, cursor: str | None, fields: Fields
    ) -> Iterator[BulkJob]:
        walk = PageWalk(cursor)
        while walk.proceed():  # a loop, not recursion; one page in memory at a time
            page = self._run(
                self._core.list_page(name, status=status, cursor=walk.cursor, fields=fields)
            )
            walk.advance(page)
            yield from page

    # --- polling ---

    def wait_for_job(
        self,
        job: BulkJob,
        *,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        timeout: float = 600.0,
        on_progress: Callable[[BulkJob], object] | None = None,
        include: Iterable[str] | None = None,
        fields: Fields = None,
    ) -> BulkJob:
        """Poll one job until it is complete or cancelled, and return its final state.

        The first poll comes `poll_interval` seconds after the call, and each interval is 1.5
        times the one before, up to `max_poll_interval`: with the defaults the polls fall at
        2, 5, 9.5, 16, 26, 42, 64, 94 ... seconds, then every 30 s. Pass
        `max_poll_interval=poll_interval` for a fixed interval. Item-create jobs, which have
        no single-job endpoint, are polled through their list, as `wait_for_jobs` does; the
        others by their GET, with `include` and `fields` if given, else those the job was
        fetched with (the relationships and sparse fields it holds), so the result keeps its
        items. `on_progress` gets the starting state, then each polled state.

        Raises WaitTimeoutError (with `.job`, the last state seen) after `timeout` seconds,
        and NotFoundError if the job is gone. A 429, 5xx or network failure that outlasts the
        client's retries skips that poll; the wait goes on.
        """
        return self._run(
            wait_for_job(
                self._core,
                job,
                poll_interval=poll_interval,
                max_poll_interval=max_poll_interval,
                timeout=timeout,
                on_progress=on_progress,
                include=include,
                fields=fields,
            )
        )

    def wait_for_jobs(
        self,
        jobs: Iterable[BulkJob],
        *,
        poll_interval: float = 5.0,
        max_poll_interval: float | None = None,
        timeout: float = 3600.0,
        quota_share: float = 0.5,
        on_progress: Callable[[WaitProgress], object] | None = None,
    ) -> Iterator[BulkJob]:
        """Wait for many jobs of any kinds at once; yield each as it finishes, exactly once.

        ```python
        for job in kc.wait_for_jobs(jobs, poll_interval=5):
            print(job.id, job.status, job.failed_count)
        ```

        Each job is yielded in the first state that shows it complete or cancelled (jobs
        already done are yielded first). A round every `poll_interval` seconds polls
        item-create and variant-update jobs through their lists (about one request per 100
        running jobs, plus a search of the finished list or a GET for the jobs that left
        it), and the other kinds with one GET each. The wait uses at most `quota_share` of
        each operation's rate limits, so the app's own calls keep the rest, and lengthens the
        interval when a round needs more than that. With `max_poll_interval` the interval
        also grows x1.5 per round up to it.

        A job found in no list at all (a status this client does not know, or one that was
        deleted) stays pending, and is looked for again less and less often; `on_progress`
        counts it in `missing`. `on_progress` gets a `WaitProgress` at the start and after
        each round. Raises WaitTimeoutError, whose `pending` lists the jobs still unfinished,
        once `timeout` seconds have passed, and NotFoundError when a job's GET says it is
        gone. A 429, 5xx or network failure that outlasts the retries, or a cursor that
        breaks, only costs that round.
        """
        wait = JobsWait(
            self._core,
            jobs,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            timeout=timeout,
            quota_share=quota_share,
            on_progress=on_progress,
        )
        return self._drain(wait)

    def _drain(self, wait: JobsWait) -> Iterator[BulkJob]:
        while not wait.finished:
            yield from self._run(wait.next_round())

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncCatalogJobs(_ClientBase[httpx.AsyncClient]):
    """The same as `CatalogJobs`, for asyncio: `async with`, `await`, `async for`."""

    _http_class = httpx.AsyncClient

    async def _run(self, flow: Flow[T]) -> T:
        # Imported here: asyncio costs sync-only apps ~25 ms of start-up, and an async app has
        # it loaded already.
        import asyncio

        # A cancelled task closes the flow, which hands back its rate-limit ticket.
        with contextlib.closing(flow):
            outcome: Any = None
            while True:
                try:
                    action = flow.send(outcome)
                except StopIteration as done:
                    result: T = done.value
                    return result
                if isinstance(action, Send):
                    try:  # never a redirect, as above
                        outcome = await self._http.send(action.request, follow_redirects=False)
                    except httpx.HTTPError as exc:
                        outcome = exc
                elif isinstance(action, Call):
                    try:  # off the event loop: it blocks on I/O
                        outcome = await asyncio.to_thread(action.function)
                    except Exception as exc:
                        outcome = exc
                else:
                    await asyncio.sleep(action.seconds)
                    outcome = None

    async def get_item_update_job(
        self, job_id: str, *, include: Iterable[str] | None = None, fields: Fields = None
    ) -> BulkJob:
        return await self._run(self._core.get_job("get_item_update_job", job_id, include, fields))

    async def get_variant_update_job(
        self, job_id: str, *, include: Iterable[str] | None = None, fields: Fields = None
    ) -> BulkJob:
        return await self._run(
            self._core.get_job("get_variant_update_job", job_id, include, fields)
        )

    async def get_category_update_job(
        self, job_id: str, *, include: Iterable[str] | None = None, fields: Fields = None
    ) -> BulkJob:
        return await self._run(
            self._core.get_job("get_category_update_job", job_id, include, fields)
        )

    async def list_item_create_jobs(
        self, *, status: str | None = None, cursor: str | None = None, fields: Fields = None
    ) -> Page[BulkJob]:
        return await self._run(
            self._core.list_page(
                "list_item_create_jobs", status=status, cursor=cursor, fields=fields
            )
        )

    async def list_variant_update_jobs(
        self, *, status: str | None = None, cursor: str | None = None, fields: Fields = None
    ) -> Page[BulkJob]:
        return await self._run(
            self._core.list_page(
                "list_variant_update_jobs", status=status, cursor=cursor, fields=fields
            )
        )

    def iter_item_create_jobs(
        self,
        *,
        status: str | None = None,
        cursor: str | None = None,
        fields: Fields = None,
        start_cursor: str | None = None,
    ) -> AsyncIterator[BulkJob]:
        """Every item-create job of every page (`async for`), one page in memory at a time, from
        `cursor` (an error's `.cursor` resumes a walk) or the first page. `start_cursor` is the
        deprecated name of `cursor`."""
        cursor = _cursor(cursor, start_cursor)
        return self._walk("list_item_create_jobs", status, cursor, fields)

    def iter_variant_update_jobs(
        self,
        *,
        status: str | None = None,
        cursor: str | None = None,
        fields: Fields = None,
        start_cursor: str | None = None,
    ) -> AsyncIterator[BulkJob]:
        """Every variant-update job of every page (`async for`), one page in memory at a time, from
        `cursor` (an error's `.cursor` resumes a walk) or the first page. `start_cursor` is the
        deprecated name of `cursor`."""
        cursor = _cursor(cursor, start_cursor)
        return self._walk("list_variant_update_jobs", status, cursor, fields)

    async def _walk(
        self, name: str, status: str | None, cursor: str | None, fields: Fields
    ) -> AsyncIterator[BulkJob]:
        walk = PageWalk(cursor)
        while walk.proceed():
            page = await self._run(
                self._core.list_page(name, status=status, cursor=walk.cursor, fields=fields)
            )
            walk.advance(page)
            for job in page:
                yield job

    async def wait_for_job(
        self,
        job: BulkJob,
        *,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        timeout: float = 600.0,
        on_progress: Callable[[BulkJob], object] | None = None,
        include: Iterable[str] | None = None,
        fields: Fields = None,
    ) -> BulkJob:
        """The same as `CatalogJobs.wait_for_job` (see there), awaited."""
        return await self._run(
            wait_for_job(
                self._core,
                job,
                poll_interval=poll_interval,
                max_poll_interval=max_poll_interval,
                timeout=timeout,
                on_progress=on_progress,
                include=include,
                fields=fields,
            )
        )

    def wait_for_jobs(
        self,
        jobs: Iterable[BulkJob],
        *,
        poll_interval: float = 5.0,
        max_poll_interval: float | None = None,
        timeout: float = 3600.0,
        quota_share: float = 0.5,
        on_progress: Callable[[WaitProgress], object] | None = None,
    ) -> AsyncIterator[BulkJob]:
        """The same as `CatalogJobs.wait_for_jobs` (see there), as an async iterator:
        `async for job in kc.wait_for_jobs(jobs): ...`."""
        wait = JobsWait(
            self._core,
            jobs,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            timeout=timeout,
            quota_share=quota_share,
            on_progress=on_progress,
        )
        return self._drain(wait)

    async def _drain(self, wait: JobsWait) -> AsyncIterator[BulkJob]:
        while not wait.finished:
            for job in await self._run(wait.next_round()):
                yield job

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
