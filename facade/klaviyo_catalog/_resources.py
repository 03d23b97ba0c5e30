"""Thin, typed views over included catalog resources (items, variants, categories).

A view reads its attribute straight from the decoded JSON when asked, and checks the value's
type then. Building a generated model for each of a hundred included items costs more than
the whole HTTP round trip; the view costs a dict lookup. The generated model is still there,
built once on first use, as `.model`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import reprlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, overload

from .errors import InvalidResponseError

if TYPE_CHECKING:  # only for the quoted type arguments below; imported lazily at run time
    from klaviyo_catalog_api.models import (  # noqa: F401
        CatalogCategory,
        CatalogItem,
        CatalogVariant,
    )

__all__ = ["Category", "Item", "Resource", "Variant"]

V = TypeVar("V")
M = TypeVar("M")


def string_list(value: list[Any]) -> list[str]:
    if not all(isinstance(v, str) for v in value):
        raise ValueError("not a list of strings")  # reported as InvalidResponseError
    return value


def parse_datetime(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    # Klaviyo sometimes omits the offset; its times are UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


class Attr(Generic[V]):
    """One attribute of a resource: `kinds` are the JSON types accepted, `convert` reads it."""

    def __init__(
        self,
        *kinds: type[Any],
        convert: Callable[[Any], V] | None = None,
        exact: tuple[type[Any], ...] | None = None,
    ) -> None:
        self.kinds = kinds
        self.convert = convert
        # Values of these exact types are returned as they are: the common case, kept cheap.
        self.exact = frozenset(exact if exact is not None else () if convert else kinds)
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, instance: Resource[Any], owner: type[Any]) -> V | None: ...
    def __get__(self, instance: Resource[Any] | None, owner: type[Any]) -> Self | V | None:
        if instance is None:
            return self
        value = instance.attributes.get(self.name)
        if value is None:
            return None
        if type(value) in self.exact:
            result: V = value
            return result
        # bool is an int in Python, but never a number in JSON.
        if not isinstance(value, self.kinds) or (
            isinstance(value, bool) and bool not in self.kinds
        ):
            raise InvalidResponseError(
                f"{instance.type} {instance.id!r}: attribute {self.name!r} has an unexpected "
                f"type ({type(value).__name__})",
                excerpt=reprlib.repr(value),  # bounded: a deep value must not recurse
            )
        if self.convert is None:
            result = value
            return result
        try:
            return self.convert(value)
        except (ValueError, OverflowError) as exc:  # OverflowError: a number no float can hold
            raise InvalidResponseError(
                f"{instance.type} {instance.id!r}: attribute {self.name!r} cannot be read: "
                f"{reprlib.repr(value):.60}"
            ) from exc


class Resource(Generic[M]):
    """An included JSON:API resource: `type`, `id`, raw `attributes`, and typed properties."""

    __slots__ = ("_model", "attributes", "id", "raw", "type")
    model_name: ClassVar[str]  # the generated model; imported on first use, not at start-up

    def __init__(
        self,
        raw: Mapping[str, Any],
        key: tuple[str, str],
        attributes: Mapping[str, Any] | None,
    ) -> None:
        # The caller has checked the document: `key` is its (type, id), `attributes` an object.
        self.raw = raw
        self.type, self.id = key
        self.attributes: Mapping[str, Any] = attributes or {}
        self._model: M | None = None

    @property
    def model(self) -> M:
        """The generated model of this resource, built on first use."""
        if self._model is None:
            models = importlib.import_module("klaviyo_catalog_api.models")
            try:
                self._model = getattr(models, self.model_name).from_dict(self.raw)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                raise InvalidResponseError(
                    f"{self.type} {self.id!r} does not match the schema: {exc!s:.120}"
                ) from exc
        return self._model

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resource) and type(other) is type(self) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash((self.type, self.id))


NUMBER = (int, float)


class _CatalogCommon(Resource[M]):
    __slots__ = ()
    external_id = Attr[str](str)
    title = Attr[str](str)
    description = Attr[str](str)
    price = Attr[float](*NUMBER, convert=float, exact=(float,))
    url = Attr[str](str)
    image_full_url = Attr[str](str)
    image_thumbnail_url = Attr[str](str)
    images = Attr[list[str]](list, convert=string_list)
    custom_metadata = Attr[dict[str, Any]](dict)
    published = Attr[bool](bool)
    created = Attr[dt.datetime](str, convert=parse_datetime)
    updated = Attr[dt.datetime](str, convert=parse_datetime)


class Item(_CatalogCommon["CatalogItem"]):
    """An included `catalog-item`."""

    __slots__ = ()
    model_name = "CatalogItem"


class Variant(_CatalogCommon["CatalogVariant"]):
    """An included `catalog-variant`."""

    __slots__ = ()
    model_name = "CatalogVariant"
    sku = Attr[str](str)
    inventory_policy = Attr[int](int)
    inventory_quantity = Attr[float](*NUMBER, convert=float, exact=(float,))


class Category(Resource["CatalogCategory"]):
    """An included `catalog-category`."""

    __slots__ = ()
    model_name = "CatalogCategory"
    external_id = Attr[str](str)
    name = Attr[str](str)
    updated = Attr[dt.datetime](str, convert=parse_datetime)


VIEWS: Mapping[str, type[Resource[Any]]] = {
    "catalog-item": Item,
    "catalog-variant": Variant,
    "catalog-category": Category,
}
