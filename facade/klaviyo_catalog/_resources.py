"""The typed views over included resources (`Item`, `Variant`, `Category`, ...).

They are generated from the curated spec by `make gen` (klaviyo_catalog_api.views): one typed
attribute per attribute the spec gives the resource, read from the decoded JSON when asked,
and the generated model, built on first use, as `.model`. The facade builds each view with
`ERRORS`, so that a view it returns raises this package's errors; nothing in the generated
package is changed, and a view built there alone raises ValueError/LookupError.
"""

from __future__ import annotations

from klaviyo_catalog_api.views import (
    VIEWS,
    Category,
    Item,
    Resource,
    ResourceRef,
    Variant,
    ViewErrors,
)

from .errors import ConfigurationError, InvalidResponseError

__all__ = ["ERRORS", "VIEWS", "Category", "Item", "Resource", "ResourceRef", "Variant"]


def _invalid(message: str, excerpt: str | None) -> Exception:
    """A view's error for a value of the wrong type: an InvalidResponseError, as for any
    response that does not match the schema."""
    return InvalidResponseError(message, excerpt=excerpt or "")


def _unsupported(message: str, excerpt: str | None) -> Exception:
    """A view's error for a resource type this generated package has no model of: a
    ConfigurationError, since regenerating is the fix."""
    return ConfigurationError(message)


# What every view the facade builds raises (passed to each, in _jsonapi.included_index).
ERRORS = ViewErrors(invalid=_invalid, unsupported=_unsupported)
