"""A typed, rate-limited client for Klaviyo's catalog bulk-job endpoints.

from klaviyo_catalog import CatalogJobs

with CatalogJobs() as kc:  # the key comes from KLAVIYO_API_KEY
    job = kc.get_item_update_job(job_id, include=["items"])
"""

import logging
import warnings
from typing import TYPE_CHECKING, Any

from ._client import AsyncCatalogJobs, CatalogJobs
from ._methods import IncludeName, KindName, ListOptions, StatusName, WalkOptions
from ._models import BulkJob, JobFailure, JobStatus, Page, ResourceRef, ResponseInfo
from ._polling import WaitProgress
from ._ratelimit import MemoryRateLimiter, Observation, Rate, RateLimiter, Ticket, Wait
from ._resources import Category, Item, Resource, Variant
from ._retry import RetryPolicy
from ._revisions import (
    KlaviyoDeprecationWarning,
    RevisionLifecycle,
    RevisionStatus,
    revision_lifecycle,
)
from ._version import __version__
from .errors import (
    APIError,
    APIErrorDetail,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    DeadlineExceededError,
    InvalidRequestError,
    InvalidResponseError,
    KlaviyoError,
    NotFoundError,
    PageLimitExceededError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    RevisionRetiredError,
    ServerError,
    TransportError,
    WaitTimeoutError,
)

if TYPE_CHECKING:  # imported on first use (see __getattr__): redis is an optional extra
    from ._redis_ratelimit import RedisRateLimiter

__all__ = [
    "APIError",
    "APIErrorDetail",
    "AsyncCatalogJobs",
    "AuthenticationError",
    "BadRequestError",
    "BulkJob",
    "CatalogJobs",
    "Category",
    "ConfigurationError",
    "DeadlineExceededError",
    "IncludeName",
    "InvalidRequestError",
    "InvalidResponseError",
    "Item",
    "JobFailure",
    "JobStatus",
    "KindName",
    "KlaviyoDeprecationWarning",
    "KlaviyoError",
    "ListOptions",
    "MemoryRateLimiter",
    "NotFoundError",
    "Observation",
    "Page",
    "PageLimitExceededError",
    "PaginationError",
    "PermissionDeniedError",
    "Rate",
    "RateLimitError",
    "RateLimiter",
    "RedisRateLimiter",
    "Resource",
    "ResourceRef",
    "ResponseInfo",
    "RetryPolicy",
    "RevisionLifecycle",
    "RevisionRetiredError",
    "RevisionStatus",
    "ServerError",
    "StatusName",
    "Ticket",
    "TransportError",
    "Variant",
    "Wait",
    "WaitProgress",
    "WaitTimeoutError",
    "WalkOptions",
    "__version__",
    "revision_lifecycle",
]

# The public classes of private modules show as klaviyo_catalog.<name> (in help(), reprs and
# tracebacks), where an app imports them from; pickles then name that path too.
for _name in __all__:
    _public = globals().get(_name)
    if isinstance(_public, type) and _public.__module__.startswith(f"{__name__}._"):
        _public.__module__ = __name__

# A library logs, the app decides where it goes: without this, Python's last-resort handler
# would print the library's warnings to stderr in apps that configured no logging.
logging.getLogger("klaviyo_catalog").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name == "RedisRateLimiter":
        # Imported when first asked for: most apps never share limits through Redis.
        from ._redis_ratelimit import RedisRateLimiter

        globals()[name] = RedisRateLimiter
        return RedisRateLimiter
    if name == "JobError":
        # Deprecated: still importable, with a DeprecationWarning, for at least one minor release.
        warnings.warn(
            "klaviyo_catalog.JobError is deprecated; use APIErrorDetail, the one error-object type",
            DeprecationWarning,
            stacklevel=2,
        )
        return APIErrorDetail
    raise AttributeError(f"module 'klaviyo_catalog' has no attribute {name!r}")
