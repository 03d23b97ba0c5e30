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
from typing import Any

import attrs
from klaviyo_catalog_api.views import type_text


def document_attributes(cls: type[Any]) -> None:
    """Append to `cls.__doc__` each public attribute (field, property) with its concrete type,
    and give `cls.__init__` the concrete annotations."""
    substitutions: dict[str, str] = {}
    for base in getattr(cls, "__orig_bases__", ()):
        parameters = getattr(typing.get_origin(base), "__parameters__", ())
        for parameter, argument in zip(parameters, typing.get_args(base), strict=False):
            substitutions[parameter.__name__] = type_text(argument)

    def concrete(annotation: object) -> str:
        return re.sub(r"\w+", lambda m: substitutions.get(m[0], m[0]), type_text(annotation))

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
