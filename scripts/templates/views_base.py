"""Typed, thin views over the JSON:API resources a job document includes.

A view reads an attribute straight from the decoded JSON when asked, and checks its type then:
building a generated model for each of a hundred included resources costs more than the whole
HTTP round trip, a view costs a dict lookup. The generated model is still there, built on first
use, as `.model`. The attributes, their types and the view classes below this base are written
by `make gen` from the curated spec; this base is copied from scripts/templates/views_base.py.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import json
import math
import re
import reprlib
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, NamedTuple, Self, TypeVar, overload

import attrs

V = TypeVar("V")
M = TypeVar("M")
# What a job's status and its errors are read as: types of the package using these views (the
# facade binds its `JobStatus | str` and `APIErrorDetail`), as imports run facade -> generated.
StatusT = TypeVar("StatusT")
ErrorT = TypeVar("ErrorT")

# (message, excerpt) -> the exception to raise.
ErrorFactory = Callable[[str, str | None], Exception]


# Module-level functions, not lambdas: a view keeps its errors, and must pickle.
def _value_error(message: str, excerpt: str | None) -> Exception:
    return ValueError(message)


def _lookup_error(message: str, excerpt: str | None) -> Exception:
    return LookupError(message)


class ViewErrors(NamedTuple):
    """The exceptions a view raises, each made from (message, excerpt): `invalid` for an
    attribute of the wrong type or a resource that does not match its schema, `unsupported`
    for a resource type this package has no model of.

    Whoever builds a view passes them (imports run facade -> generated, so the facade hands
    its own error types to each view it builds, and nothing here is changed at import). A view
    built without them raises ValueError and LookupError (`PLAIN_ERRORS`).
    """

    invalid: ErrorFactory
    unsupported: ErrorFactory


PLAIN_ERRORS = ViewErrors(invalid=_value_error, unsupported=_lookup_error)


def parse_datetime(value: str) -> dt.datetime:
    """An ISO 8601 date-time, always timezone-aware: Klaviyo omits the offset at times, and its
    times are UTC. Raises ValueError."""
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def string_list(value: list[Any]) -> list[str]:
    """The list itself, once every member is checked to be a string; raises ValueError."""
    if not all(isinstance(v, str) for v in value):
        raise ValueError("not a list of strings")
    return value


class JobAttribute(NamedTuple):
    """How one attribute of the spec's job resources is read (`JOB_ATTRIBUTES`, generated).

    `kind` follows the attribute's schema: "status" (the job statuses, an open set), "errors"
    (a list of JSON:API error objects), "datetime", "count" (an integer named `*_count`: null
    or absent reads as 0, Klaviyo's documented default), "integer", "string", "number",
    "boolean", "object", "strings" (a list of strings), "list" or "any". `required`: the spec
    does not allow null, so a job document without it is invalid.
    """

    kind: str
    required: bool


class JSONable:
    """What every result shares: `to_dict()`, plain JSON, and `to_json()`, that as text."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The object as plain JSON."""
        raise NotImplementedError

    def to_json(self, *, indent: int | None = None) -> str:
        """`to_dict()` as JSON text."""
        return json_text(self.to_dict(), indent)


@attrs.frozen
class ResourceRef(JSONable):
    """A related resource the server named but did not include (e.g. a deleted item)."""

    type: str
    id: str

    def to_dict(self) -> dict[str, Any]:
        """`{"type": ..., "id": ...}`: a resource that was not included has nothing more."""
        return {"type": self.type, "id": self.id}


def json_text(document: Mapping[str, Any], indent: int | None) -> str:
    """Strict JSON text of plain JSON, which never fails on what a server sent: non-ASCII kept
    as is (titles); NaN and ±Infinity (which JSON cannot hold, and json.loads reads) as null;
    and when a string holds a lone surrogate (a JSON escape such as "\\ud800"), every
    non-ASCII character escaped, so that the text encodes as UTF-8. The objects keep the exact
    values (`to_dict()` too); only this text differs. Every `to_json()` writes with it."""
    try:
        text = json.dumps(document, indent=indent, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a float out of JSON's range: rare, so the common case pays nothing
        document = _finite(document)
        text = json.dumps(document, indent=indent, ensure_ascii=False, allow_nan=False)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: escaped, as "\\udcff"
            text = json.dumps(document, indent=indent, ensure_ascii=True, allow_nan=False)
    return text


def _finite(value: Any) -> Any:
    """`value` (plain JSON) with NaN and ±Infinity as None, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def type_text(kind: Any) -> str:
    """A type (or annotation text) as a reader writes it, for help(): `list[str]`, `datetime`,
    `dict[str, Any]`, `str | None`: no module paths, `NoneType` as `None`."""
    if isinstance(kind, type) and not typing.get_args(kind):
        text = kind.__name__
    else:
        text = kind if isinstance(kind, str) else repr(kind)
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", text).replace("NoneType", "None")


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
        # What help() and pydoc show for the attribute: its type (from `Attr[str](...)`).
        args = typing.get_args(getattr(self, "__orig_class__", None))
        shown = type_text(args[0]) if args else "Any"
        self.__doc__ = f"{shown} | None: the `{name}` attribute, type-checked when read."

    def __set__(self, instance: Resource[Any], value: object) -> None:
        # Read-only; also makes this a data descriptor, which pydoc lists with its __doc__.
        raise AttributeError(f"{self.name} is read-only")

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
            raise instance._errors.invalid(
                f"{instance.type} {instance.id!r}: attribute {self.name!r} has an unexpected "
                f"type ({type(value).__name__})",
                reprlib.repr(value),  # bounded: a deep value must not recurse
            )
        if self.convert is None:
            result = value
            return result
        try:
            return self.convert(value)
        except (ValueError, OverflowError) as exc:  # OverflowError: a number no float can hold
            raise instance._errors.invalid(
                f"{instance.type} {instance.id!r}: attribute {self.name!r} cannot be read: "
                f"{reprlib.repr(value):.60}",
                reprlib.repr(value),
            ) from exc


class Resource(JSONable, Generic[M]):
    """An included JSON:API resource: `type`, `id`, raw `attributes`, and typed properties."""

    # A dict, so that help() shows each slot's type and meaning.
    __slots__ = {
        "_errors": "ViewErrors: the exceptions this view raises.",
        "_model": "The generated model, once built.",
        "attributes": "Mapping[str, Any]: the resource's attributes, as received.",
        "id": "str: the resource's id.",
        "raw": "Mapping[str, Any]: the resource object, as received.",
        "type": "str: the resource's JSON:API type, e.g. catalog-item.",
    }
    json_type: ClassVar[str]
    # The generated model's class name; None when the spec has no schema for this resource.
    model_name: ClassVar[str | None]

    def __init__(
        self,
        raw: Mapping[str, Any],
        key: tuple[str, str],
        attributes: Mapping[str, Any] | None,
        errors: ViewErrors | None = None,
    ) -> None:
        """A view of the resource object `raw`, whose (type, id) is `key` and attributes
        `attributes` (the caller has checked they are an object); it raises `errors`, by
        default `PLAIN_ERRORS`."""
        self.raw = raw
        self.type, self.id = key
        self.attributes: Mapping[str, Any] = attributes or {}
        self._model: M | None = None
        self._errors = errors or PLAIN_ERRORS

    @property
    def model(self) -> M:
        """The generated model of this resource, built on first use."""
        if self._model is None:
            if self.model_name is None:
                raise self._errors.unsupported(
                    f"this client was generated from a spec with no schema for {self.type!r} "
                    "resources, so there is no model for them; read `.raw` or the typed "
                    "attributes instead, or regenerate from a newer spec",
                    None,
                )
            models = importlib.import_module(".models", __package__)
            try:
                self._model = getattr(models, self.model_name).from_dict(self.raw)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                raise self._errors.invalid(
                    f"{self.type} {self.id!r} does not match the schema: {exc!s:.120}",
                    reprlib.repr(self.raw),
                ) from exc
        return self._model

    def to_dict(self) -> dict[str, Any]:
        """The resource as plain JSON, flat: `type`, `id`, then each attribute the server
        sent, under its name. Attributes this view types are read through it (datetimes as
        ISO 8601 with the UTC offset, numbers as the spec types them); others are passed
        through as sent. Raises (InvalidResponseError, in the facade) if a typed attribute
        does not have its type."""
        document: dict[str, Any] = {"type": self.type, "id": self.id}
        cls = type(self)
        for name, value in self.attributes.items():
            if isinstance(inspect.getattr_static(cls, name, None), Attr):
                value = getattr(self, name)
            document[name] = value.isoformat() if isinstance(value, dt.datetime) else value
        return document

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resource) and type(other) is type(self) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash((self.type, self.id))
