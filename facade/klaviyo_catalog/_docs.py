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

# A dotted module path before a name: `dt.datetime` -> `datetime`, `typing.Any` -> `Any`.
_MODULE_PATH = re.compile(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])")


def shown(annotation: object) -> str:
    """An annotation as a reader writes it: no module paths, `NoneType` as `None`."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        text = annotation.__name__
    else:
        text = annotation if isinstance(annotation, str) else repr(annotation)
    return _MODULE_PATH.sub("", text).replace("NoneType", "None")


def document_attributes(cls: type[Any]) -> None:
    """Append to `cls.__doc__` each public attribute (field, property) with its concrete type,
    and give `cls.__init__` the concrete annotations."""
    substitutions: dict[str, str] = {}
    for base in getattr(cls, "__orig_bases__", ()):
        parameters = getattr(typing.get_origin(base), "__parameters__", ())
        for parameter, argument in zip(parameters, typing.get_args(base), strict=False):
            substitutions[parameter.__name__] = shown(argument)

    def concrete(annotation: object) -> str:
        return re.sub(r"\w+", lambda m: substitutions.get(m[0], m[0]), shown(annotation))

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
