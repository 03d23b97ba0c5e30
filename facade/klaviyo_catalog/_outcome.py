"""What the outcome of one attempt means: the typed error and the wait before a retry, the
ResponseInfo an app may see, and the attempt's DEBUG line.

Everything here only reads an outcome; the request loop (`_exchange`) decides what to do.
Nothing that leaves this module holds the credential: response headers that carry it are
dropped, and an httpx error's frames, which hold the request headers, are cleared.
"""

from __future__ import annotations

import logging
import traceback

import httpx

from . import _jsonapi as jsonapi
from ._models import ResponseInfo
from ._operations import Operation, RequestParts
from ._retry import RetryPolicy, retry_after_seconds
from ._revisions import MOVE_ON
from ._text import Shown
from .errors import (
    APIError,
    InvalidResponseError,
    KlaviyoError,
    RateLimitError,
    RevisionRetiredError,
    TransportError,
    error_class,
)

logger = logging.getLogger("klaviyo_catalog")

# Response headers never copied into ResponseInfo: they may carry session or credential data.
SECRET_HEADERS = frozenset(
    {b"set-cookie", b"set-cookie2", b"cookie", b"authorization", b"proxy-authorization"}
)


def classify(
    op: Operation,
    result: httpx.Response | httpx.HTTPError,
    retry_number: int,
    policy: RetryPolicy,
    revision: str,
) -> tuple[KlaviyoError, float | None]:
    """The error this failed outcome means, and the wait before a retry (None: do not retry)."""
    if isinstance(result, httpx.HTTPError):
        what = "timed out" if isinstance(result, httpx.TimeoutException) else "failed"
        # The message names the exception type only: httpx's own may quote the request.
        # Its detail (DNS, TLS, errno) stays on the httpx error, the __cause__.
        error = TransportError(f"{op.name}: the request {what} ({type(result).__name__})")
        error.__cause__ = without_locals(result)
        return error, policy.backoff(retry_number)
    response = result
    if response.status_code == 429:
        retry_after = retry_after_seconds(response.headers)
        throttled = api_error(op, response, revision, retry_after=retry_after)
        if retry_after is not None and retry_after > policy.max_retry_after:
            return throttled, None  # not worth waiting for: the caller decides, now
        return throttled, policy.wait_after_429(retry_after, retry_number)
    if response.status_code >= 400:
        if policy.should_retry_status(response.status_code):
            return api_error(op, response, revision), policy.backoff(retry_number)
        return api_error(op, response, revision), None
    # 1xx/3xx: redirects are not followed, so the Authorization header never leaves.
    return InvalidResponseError(
        f"{op.name}: unexpected HTTP {response.status_code}",
        status_code=response.status_code,
        excerpt=jsonapi.excerpt(response.content),
        response=response,
    ), None


def api_error(
    op: Operation, response: httpx.Response, revision: str, retry_after: float | None = None
) -> APIError:
    """The APIError subclass for an error response, its message naming the operation, the
    status and Klaviyo's first error."""
    details = jsonapi.error_details(response)
    excerpt = jsonapi.excerpt(response.content)
    summary = details[0].describe() if details else excerpt
    reason = response.reason_phrase or "error"
    message = f"{op.name}: HTTP {response.status_code} {reason}: {summary or 'empty body'}"
    cls = error_class(response.status_code)
    if cls is RevisionRetiredError:
        message += f". Klaviyo no longer serves revision {revision}; to {MOVE_ON}."
    error = cls(
        message,
        status_code=response.status_code,
        errors=details,
        request_id=request_id_of(response),
        excerpt=excerpt,
        response=response,
    )
    if isinstance(error, RateLimitError):
        error.retry_after = retry_after
    return error


def response_info(
    response: httpx.Response,
    request_id: str | None,
    elapsed: float,
    attempts: int,
    secrets: tuple[str, ...],
) -> ResponseInfo:
    """The response's metadata for the app, without cookies or any header that carries one of
    the credential's `secrets`."""
    raw = response.headers.raw
    # One search of all the values for each credential; only one found somewhere is looked
    # for header by header. (A credential is printable ASCII: it cannot span the "\n".)
    values = b"\n".join(value for _, value in raw).decode("latin-1")
    found = [secret for secret in secrets if secret in values]
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in raw
        if name.lower() not in SECRET_HEADERS
        and not (found and any(secret in value.decode("latin-1") for secret in found))
    }
    return ResponseInfo(
        request_id=request_id,
        status_code=response.status_code,
        headers=headers,
        elapsed=max(0.0, elapsed),
        attempts=attempts,
    )


def without_locals(error: BaseException) -> BaseException:
    """`error` and the exceptions chained to it, with the locals of their finished frames
    cleared: httpx's and httpcore's frames hold the request headers, key included, as bytes.
    Types, messages and line numbers stay."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        todo += [current.__cause__, current.__context__]
    return error


def request_id_of(response: httpx.Response) -> str | None:
    """Klaviyo's request id (`X-Klaviyo-Req-Id`); `X-Request-Id` from a proxy in front."""
    found: str | None = response.headers.get("x-klaviyo-req-id") or response.headers.get(
        "x-request-id"
    )
    return found


def log_attempt(parts: RequestParts, result: object, attempt: int, elapsed: float) -> str | None:
    """Log one attempt at DEBUG (never its headers: they carry the credential); return the
    response's request id."""
    if isinstance(result, httpx.Response):
        request_id = request_id_of(result)
        status: object = result.status_code
    else:
        request_id, status = None, type(result).__name__
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s -> %s (request id %s, attempt %d, %.3fs)",
            parts.method,
            Shown(parts.path),  # it holds the job id
            status,
            Shown(request_id or "none"),  # X-Klaviyo-Req-Id, or a proxy's X-Request-Id
            attempt,
            elapsed,
        )
    return request_id
