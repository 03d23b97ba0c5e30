"""The typed views over included resources (`Item`, `Variant`, `Category`, ...).

They are generated from the curated spec by `make gen` (klaviyo_catalog_api.views): one typed
attribute per attribute the spec gives the resource, read from the decoded JSON when asked,
and the generated model, built on first use, as `.model`. Here they only learn to raise this
package's errors.
"""

from __future__ import annotations

from klaviyo_catalog_api.views import (
    VIEWS,
    Category,
    Item,
    Resource,
    ResourceRef,
    Variant,
    set_error_factories,
)

from .errors import ConfigurationError, InvalidResponseError

__all__ = ["VIEWS", "Category", "Item", "Resource", "ResourceRef", "Variant"]


def _invalid(message: str, excerpt: str | None) -> Exception:
    """The generated views' error for a value of the wrong type: an InvalidResponseError, as for
    any response that does not match the schema."""
    return InvalidResponseError(message, excerpt=excerpt or "")


def _unsupported(message: str, excerpt: str | None) -> Exception:
    """The generated views' error for a resource type this generated package has no model of: a
    ConfigurationError, since regenerating is the fix."""
    return ConfigurationError(message)


set_error_factories(invalid=_invalid, unsupported=_unsupported)
