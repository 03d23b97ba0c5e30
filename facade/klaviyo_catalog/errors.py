"""The errors a facade call can raise. All derive from `KlaviyoError`.

Nothing else escapes a call: transport failures, undecodable bodies and schema mismatches are
all translated into one of these. Each keeps its context, as openai-python's errors do: the
exception it was translated from is its `__cause__` (a `TransportError`'s is the httpx error,
with the DNS or TLS detail), and an error made from a response carries that `httpx.Response`.
None of them ever holds the API key: the request a response or an httpx error keeps has its
`Authorization` header redacted once the exchange is over, and repr, str and pickle show none.
"""

from __future__ import annotations

import builtins
import functools
import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import httpx
from klaviyo_catalog_api.views import JSONable

from . import _serialize

if TYPE_CHECKING:
    from klaviyo_catalog_api.models import ApiError

    from ._models import BulkJob

__all__ = [
    "APIError",
    "APIErrorDetail",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "DeadlineExceededError",
    "InvalidRequestError",
    "InvalidResponseError",
    "KlaviyoError",
    "NotFoundError",
    "PageLimitExceededError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RevisionRetiredError",
    "ServerError",
    "TransportError",
    "WaitTimeoutError",
]


class KlaviyoError(Exception):
    """Base class of every error raised by this package.

    `cursor` is set on errors raised while listing: pass it as `cursor=` to `list_*` or `iter_*`
    to resume the walk where it stopped.
    """

    cursor: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as cls(*args), which our keyword-only constructors refuse: rebuild
        # from the message, then restore the attributes.
        return _restore, (type(self), self.args), self.__dict__


def _restore(cls: type[KlaviyoError], args: tuple[Any, ...]) -> KlaviyoError:
    """Rebuild an error from its message when unpickled; its attributes are restored after."""
    error = cls.__new__(cls, *args)
    error.args = args
    return error


class ConfigurationError(KlaviyoError, ValueError):
    """The client was set up wrongly (no API key, an insecure base URL, ...)."""


class InvalidRequestError(KlaviyoError, ValueError):
    """An argument cannot be sent (unknown field or include, empty job id, ...).

    Raised before any request is made.
    """


class TransportError(KlaviyoError):
    """The request did not complete: connection refused or reset, DNS, TLS, or a timeout.

    Its `__cause__` is the httpx exception, whose message has the detail (and whose `request`
    has its `Authorization` header redacted).
    """


class DeadlineExceededError(KlaviyoError, builtins.TimeoutError):
    """The call's `deadline` ran out: while waiting for the rate limit, for the rate limiter
    itself, for a response, or for a body that kept trickling in.

    `deadline` is the budget in seconds; `last_error` the failure of an earlier attempt of the
    call, if one failed. `__cause__` is the httpx timeout when a response ran out of time, else
    `last_error`. A failure whose retry the deadline leaves no time for is raised itself, as
    when the retries run out.
    """

    def __init__(
        self, message: str, *, deadline: float, last_error: KlaviyoError | None = None
    ) -> None:
        super().__init__(message)
        self.deadline = deadline
        self.last_error = last_error


class PageLimitExceededError(KlaviyoError):
    """A walk (`iter_*` with `max_pages=`) fetched its page budget and the server still had a
    next page. `cursor` is that page's cursor: pass it as `cursor=` to go on."""

    def __init__(self, message: str, *, max_pages: int, cursor: str) -> None:
        super().__init__(message)
        self.max_pages = max_pages
        self.cursor = cursor


class _ResponseError(KlaviyoError):
    """What an error about a response keeps of it, alike on `APIError` and
    `InvalidResponseError`: `status_code`, `excerpt`, the body's first 200 characters, and
    `response`, the `httpx.Response` (None for an error made without one), whose `headers` it
    shows."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        excerpt: str = "",
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.excerpt = excerpt
        self.response = response

    @property
    def headers(self) -> httpx.Headers:
        """The response's headers (empty for an error made without a response)."""
        return self.response.headers if self.response is not None else httpx.Headers()


class InvalidResponseError(_ResponseError):
    """The server answered with something this client cannot read as the documented response:
    not JSON, truncated, or not matching the schema.

    `status_code` and `excerpt` (the body's first 200 characters) say what came back;
    `response` is the `httpx.Response` when the error was made from one (None for a value
    read later, e.g. a view's attribute), and `__cause__` the parser's own exception.
    """


class PaginationError(InvalidResponseError):
    """A listing cannot go on, though every page it read was delivered in full.

    The last page's `links.next` names no usable `page[cursor]` (it is not a URL, or has no
    cursor), or it repeats a cursor already walked. Klaviyo's spec allows any URI there, so the
    page itself is kept; only asking for the page after it raises this. `cursor` is the cursor
    of that last page (None for the first one): pass it as `cursor=` to `list_*` or `iter_*` to
    read the page again, and its next link with it, later. `next_link` is what the server sent.
    """

    def __init__(self, message: str, *, cursor: str | None, next_link: str | None = None) -> None:
        super().__init__(message, excerpt=next_link[:200] if next_link else "")
        self.cursor = cursor
        self.next_link = next_link


@attrs.frozen
class APIErrorDetail(JSONable):
    """One JSON:API error object, as Klaviyo sent it: an entry of an error response's `errors`
    (`APIError.errors`) or of a job's (`BulkJob.errors`, where `detail` is always present).

    Every member is optional in JSON:API and None where Klaviyo sent nothing. `raw` is the
    object as received (a dict), `model` the generated model of it, built on first use.
    `JobError` is a deprecated name of this class.
    """

    detail: str | None = None
    id: str | None = None
    code: str | None = None
    title: str | None = None
    source_pointer: str | None = None
    source_parameter: str | None = None
    meta: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @functools.cached_property
    def model(self) -> ApiError:
        """The generated model of this error object (`klaviyo_catalog_api.models.ApiError`)."""
        models = importlib.import_module("klaviyo_catalog_api.models")
        try:
            model: ApiError = models.ApiError.from_dict(self.raw)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise InvalidResponseError(
                f"an error object does not match the generated model: {exc!s:.120}"
            ) from exc
        return model

    def describe(self) -> str:
        """One line: the detail (else the title or code), and where it points, if it does."""
        text = self.detail or self.title or self.code or "no detail given"
        where = self.source_pointer or self.source_parameter
        return f"{text} (at {where})" if where else text

    def to_dict(self) -> dict[str, Any]:
        """Every field but `raw` under its name, None where Klaviyo sent nothing."""
        fields = attrs.asdict(self, recurse=False, filter=lambda field, _: field.name != "raw")
        return {**fields, "meta": _serialize.json_ready(self.meta)}


class APIError(_ResponseError):
    """Klaviyo answered with an error status.

    `status_code`; `errors`, the JSON:API error objects of the body; `request_id`, Klaviyo's
    `X-Klaviyo-Req-Id` (quote it to their support); `excerpt`, the body's first 200
    characters; `response`, the `httpx.Response` itself (its `.request` has the
    `Authorization` header redacted), and `headers`, its headers.
    """

    status_code: int  # always an error status here

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        errors: Sequence[APIErrorDetail] = (),
        request_id: str | None = None,
        excerpt: str = "",
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, excerpt=excerpt, response=response)
        self.errors = list(errors)
        self.request_id = request_id


class BadRequestError(APIError):
    """400: a parameter was rejected; `errors[i].source_parameter` says which."""


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIError):
    """403: the key lacks the `catalogs:read` scope, or a CDN refused the request."""


class NotFoundError(APIError):
    """404: no such job (or a path the chosen revision does not have).

    Raised by `wait_for_jobs` (and `wait_for_job`) once every other job has been reported:
    `vanished` then holds the last state seen of each job whose GET answered 404 meanwhile.
    """

    vanished: tuple[BulkJob, ...] = ()


class RevisionRetiredError(APIError):
    """410: Klaviyo no longer serves the API revision this client sent. The message says how to
    move to a newer one (`make curate SPEC=... && make gen`)."""


class RateLimitError(APIError):
    """429, after the retries ran out. `retry_after` is the server's last advice, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx, after the retries ran out."""


class WaitTimeoutError(KlaviyoError, builtins.TimeoutError):
    """`wait_for_job` or `wait_for_jobs` ran out of time.

    `pending` holds the last state seen of every job still unfinished (the jobs already
    reported are not in it), and `job` the first of them: for `wait_for_job`, its job.
    """

    def __init__(
        self, message: str, *, job: BulkJob, pending: Sequence[BulkJob] | None = None
    ) -> None:
        super().__init__(message)
        self.job = job
        self.pending: tuple[BulkJob, ...] = tuple(pending) if pending is not None else (job,)


STATUS_ERRORS: Mapping[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    410: RevisionRetiredError,
    429: RateLimitError,
}


def error_class(status_code: int) -> type[APIError]:
    """The APIError subclass for an HTTP error status (APIError itself for one without)."""
    if status_code >= 500:
        return ServerError
    return STATUS_ERRORS.get(status_code, APIError)
