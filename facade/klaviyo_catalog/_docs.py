"""What `help()` and pydoc show of the facade's attrs classes: every public attribute's type.

pydoc lists the attributes of an attrs (slotted) class bare, since a slot has no docstring,
and a field inherited from a generic base keeps its type parameter (`status: StatusT`). So
each class gets an `Attributes` section in its docstring, with the concrete types, and its
`__init__` the concrete annotations (the signature `help()` shows). Documentation only: type
checkers read the annotations in the source.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

import attrs
from klaviyo_catalog_api.views import type_text


def _concrete(cls: type[Any], text: Callable[[object], str] = type_text) -> Callable[[object], str]:
    """An annotation of `cls`'s generic bases as `text`, their type parameters named by the
    types `cls` gives them."""
    substitutions: dict[str, str] = {}
    for base in getattr(cls, "__orig_bases__", ()):
        parameters = getattr(typing.get_origin(base), "__parameters__", ())
        for parameter, argument in zip(parameters, typing.get_args(base), strict=False):
            substitutions[parameter.__name__] = text(argument)

    def concrete(annotation: object) -> str:
        return re.sub(r"\w+", lambda m: substitutions.get(m[0], m[0]), text(annotation))

    return concrete


def document_signature(cls: type[Any]) -> None:
    """Give `cls` the signature of the `__init__` it inherits, in concrete types: help() shows
    `http_client: httpx.Client | None`, not the base's `H | None`."""
    concrete, signature = _concrete(cls, _qualified), inspect.signature(cls)
    parameters = [
        p.replace(annotation=concrete(p.annotation)) for p in signature.parameters.values()
    ]
    cls.__signature__ = signature.replace(parameters=parameters)


def _qualified(annotation: object) -> str:
    """A class as `module.Name` (`httpx.Client`); an annotation's text as it is."""
    if isinstance(annotation, type):
        return f"{annotation.__module__}.{annotation.__qualname__}"
    return str(annotation)


def document_attributes(cls: type[Any]) -> None:
    """Append to `cls.__doc__` each public attribute (field, property) with its concrete type,
    and give `cls.__init__` the concrete annotations."""
    concrete = _concrete(cls)
    types = {f.name: concrete(f.type) for f in attrs.fields(cls) if not f.name.startswith("_")}
    for name in sorted(dir(cls)):
        member = getattr(cls, name, None)
        if name.startswith("_") or name in types:
            continue
        if isinstance(member, property) and member.fget is not None:
            types[name] = concrete(member.fget.__annotations__.get("return", "Any"))
        elif name in (own := inspect.get_annotations(cls)):  # a slotted cached_property
            types[name] = concrete(own[name])
    width = max(map(len, types))
    section = "\n".join(f"    {name:<{width}}  {kind}" for name, kind in types.items())
    text = inspect.cleandoc(cls.__doc__ or "")  # dedented, so that the section lines up
    cls.__doc__ = f"{text}\n\nAttributes (each with its type):\n\n{section}\n"
    init = cls.__init__
    init.__annotations__ = {k: concrete(v) for k, v in init.__annotations__.items()}
