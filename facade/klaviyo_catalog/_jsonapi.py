"""Turning a response body into a `BulkJob`, a `Page` or `APIErrorDetail`s. No I/O here.

The decoded JSON is read directly, every value the facade surfaces with its type checked (the
generated models check neither integers nor strings), and any mismatch becomes
`InvalidResponseError`. The generated models are built only when asked for (`BulkJob.model`,
`Item.model`): eager parsing would double the CPU cost of a call with a hundred items.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx
from klaviyo_catalog_api.catalog_spec import JOB_ID_ATTRIBUTE, RELATIONSHIPS
from klaviyo_catalog_api.views import JOB_ATTRIBUTES, string_list

from . import _bounds as bounds
from ._models import BulkJob, Page, ResourceRef, ResponseInfo
from ._readers import (
    Invalid,
    Reader,
    count,
    obj,
    opt_datetime,
    opt_int,
    opt_status,
    opt_str,
    req_str,
    seq,
    typed,
)
from ._resources import ERRORS, VIEWS, Resource
from .errors import APIErrorDetail, InvalidResponseError

EXCERPT_CHARS = 200

# orjson when installed (the [speedups] extra): it decodes in about half the time. (Imported by
# name: an optional module the type checkers may not find.)
try:
    loads: Callable[[bytes], Any] = importlib.import_module("orjson").loads
except ImportError:
    loads = json.loads

RELATED = frozenset(RELATIONSHIPS)  # BulkJob's relationship attributes, generated from the spec


def excerpt(body: bytes) -> str:
    """The body's first 200 bytes as one line of text ("…" if there is more): an error's
    `excerpt`, enough to recognise an HTML error page or a truncated document."""
    text = body[:EXCERPT_CHARS].decode("utf-8", errors="replace")
    return " ".join(text.split()) + ("…" if len(body) > EXCERPT_CHARS else "")


def decode(response: httpx.Response, what: str) -> Any:
    """The JSON body of a response, or InvalidResponseError naming the status and content: a
    body that is not JSON, or one past the bounds of `_bounds` (depth, objects, values, digits),
    which is refused before it is decoded."""
    body = response.content
    try:
        bounds.check(body)
        return bounds.loads(loads, body)
    except bounds.Refused as exc:
        raise invalid(response, what, str(exc), says="response document is refused") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError too
        kind = response.headers.get("content-type", "no content type")
        raise invalid(response, what, kind, says="with a body that is not JSON") from exc


def invalid(
    response: httpx.Response,
    what: str,
    problem: str,
    *,
    says: str = "response does not match the schema",
) -> InvalidResponseError:
    """The InvalidResponseError for a body that is JSON but not the documented shape, `problem`
    saying where (or for a body that is not what `says`), with the status and an excerpt."""
    return InvalidResponseError(
        f"{what}: HTTP {response.status_code} {says}: {problem}",
        status_code=response.status_code,
        excerpt=excerpt(response.content),
        response=response,
    )


def _at_most(top: Mapping[str, Any], key: str, limit: int) -> None:
    """Invalid when `top[key]` lists more resources than a Klaviyo job or page could, checked
    before any is read: a page's over `MAX_PAGE_JOBS` jobs, a job's over `MAX_INCLUDED`
    included resources. (A list's `included`, which old revisions may send, is never read.)"""
    found = top.get(key)
    if type(found) is list and len(found) > limit:
        raise Invalid(f"{key} holds {len(found):,} resources; at most {limit:,} are read")


# --- documents ---------------------------------------------------------------------------------


def job_errors(attributes: Mapping[str, Any], key: str, where: str) -> list[APIErrorDetail]:
    """A job's errors (`attributes[key]`) as APIErrorDetails, checked as the rest of the job is:
    `detail` is required, the other members are strings or absent, `meta` an object; a null or
    absent list is no errors."""
    out = []
    for i, raw in enumerate(seq(attributes.get(key) or [], f"{where}.{key}")):
        here = f"{where}.{key}[{i}]"
        item = obj(raw, here)
        req_str(item, "detail", here)  # what went wrong: the one member a job's error needs
        source = obj(item.get("source") or {}, f"{here}.source")
        meta = item.get("meta")
        meta = obj(meta, f"{here}.meta") if meta is not None else None
        out.append(_error_object(item, source, meta, here, opt_str))
    return out


def _error_object(
    item: Mapping[str, Any],
    source: Mapping[str, Any],
    meta: Mapping[str, Any] | None,
    here: str,
    text: Callable[[Mapping[str, Any], str, str], str | None],
) -> APIErrorDetail:
    """The APIErrorDetail of the JSON:API error object `item` (at `here`), whose `source` and
    `meta` the caller has read; `text` reads its string members, strictly for a job's errors
    (`opt_str`), leniently for an error response's (`_text`)."""
    return APIErrorDetail(
        detail=text(item, "detail", here),
        id=text(item, "id", here),
        code=text(item, "code", here),
        title=text(item, "title", here),
        source_pointer=text(source, "pointer", f"{here}.source"),
        source_parameter=text(source, "parameter", f"{here}.source"),
        meta=meta,
        raw=item,
    )


def identify(raw: Any, where: str, i: int) -> None:
    """Invalid naming `where[i]` unless `raw` is a resource object or linkage: an object with
    a string `type` and `id`. (The loops check that inline, and call this to say what is
    wrong.)"""
    here = f"{where}[{i}]"
    checked = obj(raw, here)
    req_str(checked, "type", here)
    req_str(checked, "id", here)


def related(
    resource: Mapping[str, Any],
    index: Mapping[tuple[str, str], Resource[Any]],
    where: str,
) -> dict[str, list[Any]]:
    """Each relationship of `resource` whose linkage the document gives (`data`): its resources
    in linkage order, the included view where `index` has it, else a ResourceRef."""
    rels = resource.get("relationships")
    if not rels:
        return {}
    rels = obj(rels, f"{where}.relationships")
    out: dict[str, list[Any]] = {}
    for relationship in RELATED.intersection(rels):
        here = f"{where}.relationships.{relationship}"
        linkage = obj(rels[relationship] or {}, here).get("data")
        if linkage is None:
            continue  # links only: the response names no resources
        found: list[Any] = []
        append, get = found.append, index.get
        for i, raw in enumerate(seq(linkage, f"{here}.data")):
            # identify()'s checks inline, as in included_index: a call per linkage entry was a
            # fifth of this loop on a 100-item job. identify() names a bad entry.
            if type(raw) is dict:
                kind, rid = raw.get("type"), raw.get("id")
                if type(kind) is str and type(rid) is str:
                    view = get((kind, rid))
                    append(view if view is not None else ResourceRef(kind, rid))
                    continue
            identify(raw, f"{here}.data", i)
        out[relationship] = found
    return out


# How a job attribute of each kind is read (the kinds of the generated JOB_ATTRIBUTES, which
# follow the spec's types): the value, type-checked and converted, or None when absent.
READERS: dict[str, Reader] = {
    "status": opt_status,  # JobStatus, or the string of a status newer than this client
    "errors": job_errors,  # APIErrorDetail, which may lack id/code/title and carry meta
    "datetime": opt_datetime,  # timezone-aware: a naive value is read as UTC
    "count": count,  # null or absent reads as 0
    "integer": opt_int,
    "string": opt_str,
    "number": typed((int, float), float, "a number a float can hold"),  # 1 read as 1.0
    "boolean": typed(bool),
    "object": typed(dict, dict),  # a copy
    "strings": typed(list, string_list, "a list of strings"),
    "list": typed(list),
    "any": lambda d, key, where: d.get(key),
}
# (name, reader, required) per attribute of the generated JobFields, in the spec's order. An
# unknown kind fails here, at import, not on the first job read.
JOB_READERS = tuple(
    (name, READERS[attribute.kind], attribute.required)
    for name, attribute in JOB_ATTRIBUTES.items()
)


def job_fields(resource: Mapping[str, Any], where: str, job_type: str) -> dict[str, Any]:
    """The `BulkJob` fields of a job resource, type-checked: one per generated job attribute."""
    kind = req_str(resource, "type", where)
    if kind != job_type:  # the strict `type` check the generated models would make
        raise Invalid(f"{where}.type is {kind!r}, expected {job_type!r}")
    attributes = obj(resource.get("attributes"), f"{where}.attributes")
    here = f"{where}.attributes"
    # `data.id`, else the job attribute the spec says held the id before it (generated).
    job_id = opt_str(resource, "id", where)
    if not job_id and JOB_ID_ATTRIBUTE is not None:
        job_id = opt_str(attributes, JOB_ID_ATTRIBUTE, here)
    if not job_id:
        elsewhere = f" nor `attributes.{JOB_ID_ATTRIBUTE}`" if JOB_ID_ATTRIBUTE else ""
        raise Invalid(f"{where} has neither `id`{elsewhere}")
    fields: dict[str, Any] = {"id": job_id, "kind": kind, "raw": resource}
    for name, read, required in JOB_READERS:
        value = read(attributes, name, here)
        if value is None and required:
            raise Invalid(f"{here}.{name} is missing")
        fields[name] = value
    return fields


def included_index(document: Mapping[str, Any]) -> dict[tuple[str, str], Resource[Any]]:
    """(type, id) -> a view of each included resource; the first of duplicates wins. Each
    view raises this package's errors (`ERRORS`)."""
    index: dict[tuple[str, str], Resource[Any]] = {}
    views, errors = VIEWS, ERRORS
    for i, raw in enumerate(seq(document.get("included") or [], "included")):
        # identify()'s checks inline (this loop runs once per included resource); a member
        # that fails them goes the slow way, which raises naming it.
        if type(raw) is dict:
            kind, rid, attributes = raw.get("type"), raw.get("id"), raw.get("attributes")
            if (
                type(kind) is str
                and type(rid) is str
                and (attributes is None or type(attributes) is dict)
            ):
                view = views.get(kind)
                if view is not None:
                    key = (kind, rid)
                    if key not in index:
                        index[key] = view(raw, key, attributes, errors)
                continue
        identify(raw, "included", i)
        obj(raw.get("attributes"), f"included[{i}].attributes")
    return index


def job_document(
    document: Any, job_type: str, include: tuple[str, ...], info: ResponseInfo | None = None
) -> BulkJob:
    """A single-job document. `include` lists the relationships that were requested."""
    top = obj(document, "the document")
    _at_most(top, "included", bounds.MAX_INCLUDED)
    resource = obj(top.get("data"), "data")
    fields = job_fields(resource, "data", job_type)
    fields["response_info"] = info
    fields["include"] = include
    # Only the relationships BulkJob has a slot for; a newer one stays reachable through `raw`.
    requested = [rel for rel in include if rel in RELATED]
    fields.update({rel: [] for rel in requested})  # asked for, and none named: none
    fields.update(related(resource, included_index(top) if requested else {}, "data"))
    return BulkJob(**fields)


def job_collection(
    document: Any, job_type: str, info: ResponseInfo | None = None, *, cursor: str | None = None
) -> Page[BulkJob]:
    """A page of jobs, each with the ids of its resources; `cursor` is the one it was requested
    with."""
    top = obj(document, "the document")
    _at_most(top, "data", bounds.MAX_PAGE_JOBS)
    resources = seq(top.get("data"), "data")
    jobs = []
    for i, raw in enumerate(resources):
        where = f"data[{i}]"
        resource = obj(raw, where)
        fields = job_fields(resource, where, job_type)
        fields.update(related(resource, {}, where))
        jobs.append(BulkJob(**fields, response_info=info))
    next_cursor, unusable = next_page(top.get("links"))
    return Page(
        data=jobs,
        next_cursor=next_cursor,
        cursor=cursor,
        response_info=info,
        unusable_next=unusable,
    )


def next_page(links: Any) -> tuple[str | None, tuple[str, str] | None]:
    """(the next page's cursor, None), or (None, (why it cannot be asked for, the link)).

    The cursor is the percent-decoded `page[cursor]` of `links.next` ("+" read as a space, as
    in any query string): UTF-8 as text, and any byte that is not UTF-8 as a surrogate escape
    ("%FF" as "\\udcff", Python's `errors="surrogateescape"`), so that every cursor round-trips
    byte for byte: sent back, it is percent-encoded to exactly the bytes the server sent.

    Only the `page[cursor]` of `links.next` is used, never its host or path: a link to another
    host (a proxy's base_url, say) still yields its cursor, sent to base_url. A link that names
    no usable cursor does not cost the page its data (Klaviyo's spec allows any URI there): it
    is reported, and `Page.next_cursor` and `PageWalk` make continuing fail loudly.
    """
    if links is None:
        return None, None
    if not isinstance(links, dict):
        return None, (f"links should be an object, got {type(links).__name__}", f"{links!r:.200}")
    link = links.get("next")
    if link is None or link == "":
        return None, None  # the last page
    if not isinstance(link, str):
        return None, (
            f"links.next should be a string, got {type(link).__name__}",
            f"{link!r:.200}",
        )
    try:
        query = httpx.URL(link).query.decode("ascii")  # percent-encoded by httpx if it was not
    except (httpx.InvalidURL, ValueError, TypeError):
        return None, (f"links.next is not a URL: {link!r:.80}", link)
    cursors = [
        value
        # Undecodable bytes as surrogate escapes, so that they go back as they came (quote()
        # with the same errors=, in RequestParts.target), where httpx's params make them U+FFFD.
        for name, value in parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
        if name == "page[cursor]"
    ]
    if not cursors or not cursors[0]:
        return None, (f"links.next has no page[cursor]: {link!r:.80}", link)
    if len(set(cursors)) > 1:
        return None, (f"links.next has {len(set(cursors))} different page[cursor]s", link)
    return cursors[0], None


def error_details(response: httpx.Response) -> list[APIErrorDetail]:
    """Klaviyo's `errors[]` from an error response, leniently: an error must never be masked."""
    body = response.content
    try:
        bounds.check(body)  # past a bound: the status still tells the error
        errors = bounds.loads(loads, body).get("errors")
    except (ValueError, AttributeError, RecursionError):
        return []
    out = []
    for item in errors if isinstance(errors, list) else []:
        if not isinstance(item, dict):
            continue
        source, meta = item.get("source"), item.get("meta")
        source = source if isinstance(source, dict) else {}
        meta = meta if isinstance(meta, dict) else None
        out.append(_error_object(item, source, meta, "errors", _text))
    return out


def _text(d: Mapping[str, Any], key: str, where: str) -> str | None:
    """`d[key]` if it is a string, else None (`where` is not needed: nothing is refused).
    `error_details` reads an error response leniently, so that a malformed one is still
    reported."""
    value = d.get(key)
    return value if isinstance(value, str) else None
