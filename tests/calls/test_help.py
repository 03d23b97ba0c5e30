"""help() and pydoc show every public attribute's type and every call's concrete signature.

Checked on what `pydoc.render_doc` writes (what `help()` prints) for both clients, the views
and the result types: no type parameter (`~JobR`, `StatusT`), no bare attribute, no
"Initialize self" where the clients' arguments belong.
"""

from __future__ import annotations

import inspect
import pydoc
import re
from typing import Any

import attrs
import pytest
from klaviyo_catalog import AsyncCatalogJobs, BulkJob, CatalogJobs, Category, Item, Page, Variant
from klaviyo_catalog_api.catalog_spec import OPERATIONS
from klaviyo_catalog_api.views import Attr

BULK_JOB = "klaviyo_catalog.BulkJob"
PAGE = f"klaviyo_catalog.Page[{BULK_JOB}]"
COROUTINE = "collections.abc.Coroutine[typing.Any, typing.Any, {}]"
RETURNS = {
    CatalogJobs: {
        "get": BULK_JOB,
        "list": PAGE,
        "iter": f"collections.abc.Iterator[{BULK_JOB}]",
    },
    AsyncCatalogJobs: {
        "get": COROUTINE.format(BULK_JOB),
        "list": COROUTINE.format(PAGE),
        "iter": f"collections.abc.AsyncIterator[{BULK_JOB}]",
    },
}


def rendered(cls: type[Any]) -> str:
    return pydoc.plain(pydoc.render_doc(cls))  # what help() prints, without its bold


def signature_line(text: str, name: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(f" |  {name}(")]
    return line


@pytest.mark.parametrize("client", [CatalogJobs, AsyncCatalogJobs], ids=lambda c: c.__name__)
def test_each_call_of_a_client_shows_its_concrete_signature(client: type[Any]) -> None:
    text = rendered(client)
    assert not re.search(r"~\w+", text)  # no type parameter left anywhere
    assert "Initialize self" not in text
    assert "the class docstring describes each argument" in text  # __init__ says where
    operations = [name for name in OPERATIONS]
    assert len(operations) == 18
    for operation in operations:
        family = "get" if operation.startswith("get_") else "list"
        names = [operation] if family == "get" else [operation, "iter_" + operation[5:]]
        for name in names:
            returns = RETURNS[client][name.split("_", 1)[0]]
            assert signature_line(text, name).endswith(f") -> {returns}")
            parameters = inspect.signature(getattr(client, name)).parameters
            keyword = {p for p, v in parameters.items() if v.kind is v.KEYWORD_ONLY}
            if name.startswith("iter_"):
                assert keyword == {"status", "cursor", "fields", "max_pages", "start_cursor"}
                assert (
                    "status: Optional[Literal['cancelled', 'complete', 'processing', 'queued']]"
                    in signature_line(text, name)
                )
            elif name.startswith("list_"):
                assert keyword == {"status", "cursor", "fields"}
            else:
                assert keyword <= {"include", "fields"} and "fields" in keyword
    for wait in ("wait_for_job", "wait_for_jobs"):
        line = signature_line(text, wait)
        assert line.endswith(RETURNS[client]["get" if wait == "wait_for_job" else "iter"])
    # The constructor's http_client names the httpx client this class takes, not the base's H.
    takes = "httpx.Client" if client is CatalogJobs else "httpx.AsyncClient"
    assert inspect.signature(client).parameters["http_client"].annotation == f"{takes} | None"
    assert f"http_client: '{takes} | None'" in text


@pytest.mark.parametrize("view", [Item, Variant, Category], ids=lambda c: c.__name__)
def test_a_views_help_shows_each_attributes_type(view: type[Any]) -> None:
    text = rendered(view)
    assert "Attr object" not in text and "Initialize self" not in text
    typed = [name for name, value in vars(view).items() if isinstance(value, Attr)]
    assert typed  # every attribute the spec gives the resource
    for name in typed:
        assert re.search(rf"\n \|  {name}\n \|      \S.* \| None: the `{name}` attribute", text)
    for name, kind in [
        ("id", "str"),
        ("type", "str"),
        ("raw", "Mapping"),
        ("attributes", "Mapping"),
    ]:
        assert re.search(rf"\n \|  {name}\n \|      {kind}\b", text), name
    assert "list[str] | None: the `images`" in text or view is Category


def attributes_section(cls: type[Any]) -> dict[str, str]:
    text = inspect.getdoc(cls) or ""
    _, _, section = text.partition("Attributes (each with its type):\n\n")
    return dict(line.split(None, 1) for line in section.strip().splitlines())


def test_bulk_jobs_help_shows_each_attributes_concrete_type() -> None:
    section = attributes_section(BulkJob)
    public = {f.name for f in attrs.fields(BulkJob) if not f.name.startswith("_")}
    public |= {"type", "progress", "is_done", "model", "failures"}
    assert set(section) == public
    assert section["status"] == "JobStatus | str"
    assert section["errors"] == "Sequence[APIErrorDetail]"
    assert section["created_at"] == "datetime" and section["completed_at"] == "datetime | None"
    assert section["items"] == "Sequence[Item | ResourceRef] | None"
    assert section["failures"] == "Sequence[JobFailure]" and section["progress"] == "float"
    text = rendered(BulkJob)
    assert "StatusT" not in text and "ErrorT" not in text  # the signature too
    assert "status: 'JobStatus | str'" in text


def test_a_pages_help_shows_each_attributes_type() -> None:
    assert attributes_section(Page) == {
        "data": "Sequence[T]",
        "cursor": "str | None",
        "response_info": "ResponseInfo | None",
        "has_next": "bool",
        "next_cursor": "str | None",
    }
