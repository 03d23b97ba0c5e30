"""The generated `methods.py`: one public method per operation of the curated spec.

`generate.py` calls `methods_module` with the facts it read from the spec. Every job kind gets
`get_<noun>_<verb>_job`, `list_<noun>_<verb>_jobs` and `iter_<noun>_<verb>_jobs`, each a
one-line call of a hook the facade's clients implement, with its real signature (so mypy,
pyright, `help()` and an IDE all see it) and the spec's vocabularies as `Literal` types (so a
type checker catches a misspelt status, include or kind). Adding an operation to the curation
is all a new method needs.
"""

from __future__ import annotations

import textwrap
from typing import Any

HEAD = '''"""The public calls of both clients: one per operation of the curated spec.

`make gen` writes, for every job kind, `get_<noun>_<verb>_job`, `list_<noun>_<verb>_jobs` and
`iter_<noun>_<verb>_jobs`: each calls a hook the facade implements (`_get`, `_list`, `_iter`),
and returns what the client's type parameters say (`JobR`: a `BulkJob`, or an awaitable one on
`AsyncCatalogJobs`; `PageR`: a `Page[BulkJob]`, or an awaitable one; `JobsR`: an iterator of
`BulkJob`, or an async iterator). The spec's vocabularies are `Literal` types below.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Generic, Literal, TypedDict, TypeVar

JobR = TypeVar("JobR")
PageR = TypeVar("PageR")
JobsR = TypeVar("JobsR")

#: Sparse fieldsets: a JSON:API type -> the fields to return, e.g.
#: `{"catalog-item": ["title", "price"]}`.
Fields = Mapping[str, Iterable[str]]
'''


def _literal(values: Any) -> str:
    return "Literal[" + ", ".join(repr(v) for v in values) + "]"


def _docstring(paragraphs: list[str], indent: str = "        ") -> list[str]:
    out: list[str] = []
    for i, paragraph in enumerate(paragraphs):
        if i:
            out.append("")
        out += textwrap.wrap(
            paragraph, 92, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
        )
    out[0] = out[0].replace(indent, indent + '"""', 1)
    out.append(indent + '"""')
    return out


def _fieldsets(fields: dict[str, tuple[str, ...]]) -> str:
    return "; ".join(f"`{t}`: {', '.join(names)}" for t, names in fields.items())


def methods_module(
    operations: list[dict[str, Any]],
    kinds: dict[str, dict[str, Any]],
    statuses: tuple[str, ...],
    relationships: dict[str, str],
) -> str:
    """The text of `methods.py` for these operations and kinds (as generate.Schema holds them)."""
    by_name = {op["name"]: op for op in operations}
    lines = [
        HEAD,
        "#: A job status the spec lists: what a status filter may name. (A job may still",
        "#: carry a newer one.)",
        f"StatusName = {_literal(statuses)}",
        "#: A kind of catalog bulk job: `<resource>-<action>`, as the CLI and the fake name it.",
        f"KindName = {_literal(kinds)}",
        "#: A relationship a job can include.",
        f"IncludeName = {_literal(relationships)}",
        "",
        "#: Each kind -> its single-job GET and its list operation.",
        "KIND_OPERATIONS: dict[str, tuple[str, str]] = {",
        *(
            f"    {name!r}: ({k['get_operation']!r}, {k['list_operation']!r}),"
            for name, k in kinds.items()
            if k["get_operation"] and k["list_operation"]
        ),
        "}",
        "",
        "",
        "class ListOptions(TypedDict, total=False):",
        '    """The options of every `list_*` method (and `iter_*`), by keyword."""',
        "",
        "    status: StatusName | None",
        "    cursor: str | None",
        "    fields: Fields | None",
        "",
        "",
        "class WalkOptions(ListOptions, total=False):",
        '    """The options of every `iter_*` method: those of `list_*`, and `max_pages`."""',
        "",
        "    max_pages: int | None",
        "    start_cursor: str | None",
        "",
        "",
        "class JobMethods(Generic[JobR, PageR, JobsR]):",
        '    """One method per operation of the curated spec (see the module docstring)."""',
        "",
        "    # The hooks the facade implements: each starts its operation's flow on the client.",
        "    _get: Callable[[str, str, Iterable[str] | None, Fields | None], JobR]",
        "    _list: Callable[[str, str | None, str | None, Fields | None], PageR]",
        "    _iter: Callable[",
        "        [str, str | None, str | None, Fields | None, int | None, str | None], JobsR",
        "    ]",
    ]
    for name, kind in kinds.items():
        noun, _, verb = name.partition("-")
        what = f"catalog {noun} bulk-{verb} job"
        rels = list(kind["relationships"])
        get = by_name.get(kind["get_operation"] or "")
        if get is not None:
            include = get["include"]
            params = ["job_id: str", "*"]
            if include:
                params.append(f"include: Iterable[{_literal(include)}] | None = None")
            params.append("fields: Fields | None = None")
            paragraphs = [f"One {what}, by its id (`GET {get['path']}`): a `BulkJob`."]
            if include:
                paragraphs.append(
                    f"With `include={list(include)!r}`, its {' and '.join(include)} too: "
                    f"`job.{include[0]}` lists them in the server's order, a `ResourceRef` for "
                    "any the server named but did not include."
                )
            elif rels:
                paragraphs.append(
                    f"This endpoint takes no `include`: `job.{rels[0]}` holds the ids the "
                    "server names, as `ResourceRef`s."
                )
            paragraphs.append(
                f"`fields` asks for sparse fieldsets, {_fieldsets(get['fields'])} (the job's "
                "status and counts are always asked for). Raises InvalidRequestError, before "
                "any request, for anything the spec does not allow; NotFoundError for an "
                "unknown id."
            )
            lines += [
                "",
                f"    def {get['name']}(",
                "        self,",
                *(f"        {p}," for p in params),
                "    ) -> JobR:",
                *_docstring(paragraphs),
                f"        return self._get({get['name']!r}, job_id, "
                f"{'include' if include else 'None'}, fields)",
            ]
        listed = by_name.get(kind["list_operation"] or "")
        if listed is None:
            continue
        options = [
            "*",
            "status: StatusName | None = None",
            "cursor: str | None = None",
            "fields: Fields | None = None",
        ]
        lines += [
            "",
            f"    def {listed['name']}(",
            "        self,",
            *(f"        {p}," for p in options),
            "    ) -> PageR:",
            *_docstring(
                [
                    f"One page (up to 100) of the account's {name} jobs, oldest first "
                    f"(`GET {listed['path']}`): a `Page` of `BulkJob`s.",
                    f"`status`: only jobs in this status ({', '.join(statuses)}). `cursor`: "
                    "the page to start at, a page's `next_cursor` or an error's `.cursor`; "
                    f"without it, the first page. `fields`: {_fieldsets(listed['fields'])} "
                    "(status and counts are always asked for). Each job's "
                    + (f"`{rels[0]}` hold" if rels else "relationships hold")
                    + " the ids the server names, as `ResourceRef`s.",
                    "Raises InvalidRequestError, before any request, for anything the spec "
                    "does not allow; an error raised for the page carries its `.cursor`.",
                ]
            ),
            f"        return self._list({listed['name']!r}, status, cursor, fields)",
            "",
            f"    def {listed['name'].replace('list_', 'iter_', 1)}(",
            "        self,",
            *(f"        {p}," for p in options),
            "        max_pages: int | None = None,",
            "        start_cursor: str | None = None,",
            "    ) -> JobsR:",
            *_docstring(
                [
                    f"Every {name} job of every page, one page in memory at a time, from "
                    f"`cursor` or the first page; the options as for `{listed['name']}`.",
                    "With `max_pages`, at most that many pages: if the server has more, "
                    "PageLimitExceededError, whose `.cursor` goes on. A page whose next link "
                    "is unusable ends the walk with PaginationError, never silently. "
                    "`start_cursor` is the deprecated name of `cursor`.",
                ]
            ),
            f"        return self._iter({listed['name']!r}, status, cursor, fields, "
            "max_pages, start_cursor)",
        ]
    return "\n".join(lines) + "\n"
