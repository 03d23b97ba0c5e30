"""The views' errors are chosen by whoever builds them, with no import-time hook.

The facade builds each included resource's view with its own error types, so a view a client
returns raises InvalidResponseError (a value of the wrong type, a resource that does not match
its schema) or ConfigurationError (a resource type the generated package has no model of);
the generated views used alone raise ValueError and LookupError, even with the facade
imported in the same process.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from klaviyo_catalog import ConfigurationError, InvalidResponseError, Item, KlaviyoError
from klaviyo_catalog.testing import FakeKlaviyo
from klaviyo_catalog_api import views

from tests.support import documents as docs
from tests.support.hardening_support import MODES, Mode, call, json_body, options


class Thing(views.Resource[Any]):
    """A view of a resource type the spec gives no schema (some early snapshots publish none)."""

    __slots__ = ()
    json_type = "catalog-thing"
    model_name = None


def served_item(mode: Mode, links: Any = None, **attributes: Any) -> Item:
    """The one item of a job fetched with include=["items"] by a client of `mode`, from a
    document whose item has `attributes` (and `links`, if given)."""
    resource: dict[str, Any] = {"type": "catalog-item", "id": "I1", "attributes": attributes}
    if links is not None:
        resource["links"] = links
    document = docs.single(docs.job("J1", shape=docs.NEW, linkage=["I1"]), [resource])
    with FakeKlaviyo(rate_limits=None) as fake:
        fake.inject(json_body(document))
        client_options = options(fake.base_url, fake.api_key)
        job = call(mode, client_options, "get_item_update_job", "J1", include=["items"])
    (item,) = job.items
    assert isinstance(item, Item)
    return item


@pytest.mark.parametrize("mode", MODES)
def test_a_view_a_client_returns_raises_the_facades_errors(mode: Mode) -> None:
    item = served_item(mode, title="Cap", price="cheap", created="not a date")
    assert item.title == "Cap"
    with pytest.raises(InvalidResponseError, match="'price' has an unexpected type") as info:
        _ = item.price
    assert info.value.excerpt == "'cheap'"
    with pytest.raises(InvalidResponseError, match="'created' cannot be read"):
        _ = item.created
    with pytest.raises(InvalidResponseError, match="price"):
        item.to_dict()
    linked = served_item(mode, links="nowhere", title="Cap")  # `links` must be an object
    assert linked.title == "Cap"  # the view reads what it can; the model is refused
    with pytest.raises(InvalidResponseError, match="does not match the schema"):
        _ = linked.model


@pytest.mark.parametrize("mode", MODES)
def test_a_view_without_a_model_is_a_configuration_error_through_a_client(
    mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = served_item(mode, title="Cap")
    # A spec with no schema for the resource (some early snapshots publish none).
    monkeypatch.setattr(Item, "model_name", None)
    with pytest.raises(ConfigurationError, match="no schema for 'catalog-item'"):
        _ = item.model


def test_generated_views_alone_raise_plain_errors_with_the_facade_imported() -> None:
    assert "klaviyo_catalog" in sys.modules  # the facade is imported, and changed nothing here
    item = views.Item({}, ("catalog-item", "I1"), {"price": "cheap", "created": "never"})
    with pytest.raises(ValueError, match="'price' has an unexpected type") as info:
        _ = item.price
    assert not isinstance(info.value, KlaviyoError)
    with pytest.raises(ValueError, match="'created' cannot be read"):
        _ = item.created
    with pytest.raises(ValueError, match="does not match the schema"):
        _ = views.Item(
            {"type": "catalog-item", "id": "I1", "links": "x"}, ("catalog-item", "I1"), {}
        ).model
    bare = Thing({}, ("catalog-thing", "T1"), {})
    with pytest.raises(LookupError, match="no schema for 'catalog-thing'") as lookup:
        _ = bare.model
    assert not isinstance(lookup.value, KlaviyoError)


def test_whoever_builds_a_view_chooses_its_errors() -> None:
    class Refused(Exception):
        pass

    def refuse(message: str, excerpt: str | None) -> Exception:
        return Refused(message, excerpt)

    errors = views.ViewErrors(invalid=refuse, unsupported=refuse)
    item = views.Item({}, ("catalog-item", "I1"), {"price": [1]}, errors)
    with pytest.raises(Refused) as info:
        _ = item.price
    assert info.value.args[1] == "[1]"
    other = views.Item({}, ("catalog-item", "I2"), {"price": [1]})  # its neighbour: unchanged
    with pytest.raises(ValueError):
        _ = other.price
