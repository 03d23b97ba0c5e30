"""Turning a response body into a `BulkJob`, a `Page` or `APIErrorDetail`s. No I/O here.

The generated models parse the document (they check required keys and the strict `type`
enums); the values the facade surfaces are read from the same dicts with their types checked,
because the generated code does not check them. Any mismatch becomes `InvalidResponseError`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import httpx

from ._models import BulkJob, JobError, JobStatus, Page, ResourceRef
from .errors import APIErrorDetail, InvalidResponseError

EXCERPT_CHARS = 200
# What a generated `from_dict` raises on a malformed document.
MODEL_ERRORS = (KeyError, ValueError, TypeError, AttributeError, RecursionError)

T = TypeVar("T")
RELATED = frozenset({"items", "variants", "categories"})  # BulkJob's relationship attributes


class Invalid(Exception):
    """A schema mismatch inside a document; the caller adds the status and excerpt."""


def excerpt(body: bytes) -> str:
    text = body[:EXCERPT_CHARS].decode("utf-8", errors="replace")
    return " ".join(text.split()) + ("…" if len(body) > EXCERPT_CHARS else "")


def decode(response: httpx.Response, what: str) -> Any:
    """The JSON body of a response, or InvalidResponseError naming the status and content."""
    body = response.content
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        kind = response.headers.get("content-type", "no content type")
        raise InvalidResponseError(
            f"{what}: HTTP {response.status_code} with a body that is not JSON ({kind})",
            status_code=response.status_code,
            excerpt=excerpt(body),
        ) from None


def invalid(response: httpx.Response, what: str, problem: str) -> InvalidResponseError:
    return InvalidResponseError(
        f"{what}: HTTP {response.status_code} response does not match the schema: {problem}",
        status_code=response.status_code,
        excerpt=excerpt(response.content),
    )


# --- typed readers over plain dicts --------------------------------------------------------------


def obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{where} should be an object, got {type(value).__name__}")
    return value


def seq(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(f"{where} should be a list, got {type(value).__name__}")
    return value


def opt_str(d: Mapping[str, Any], key: str, where: str) -> str | None:
    value = d.get(key)
    if value is None or isinstance(value, str):
        return value
    raise Invalid(f"{where}.{key} should be a string, got {type(value).__name__}")


def req_str(d: Mapping[str, Any], key: str, where: str) -> str:
    value = opt_str(d, key, where)
    if value is None:
        raise Invalid(f"{where}.{key} is missing")
    return value


def count(d: Mapping[str, Any], key: str, where: str) -> int:
    value = d.get(key)
    if value is None:
        return 0  # nullable with a default of 0 from revision 2024-02-15
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{where}.{key} should be an integer, got {value!r:.40}")
    return value


def opt_datetime(d: Mapping[str, Any], key: str, where: str) -> dt.datetime | None:
    text = opt_str(d, key, where)
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{where}.{key} is not an ISO 8601 date-time: {text!r:.40}") from None
    # Klaviyo sometimes omits the offset; its times are UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def req_datetime(d: Mapping[str, Any], key: str, where: str) -> dt.datetime:
    value = opt_datetime(d, key, where)
    if value is None:
        raise Invalid(f"{where}.{key} is missing")
    return value


# --- documents ---------------------------------------------------------------------------------


class _Included(Protocol):
    @property
    def id(self) -> str: ...


def job_errors(attributes: Mapping[str, Any], where: str) -> list[JobError]:
    out = []
    for i, raw in enumerate(seq(attributes.get("errors") or [], f"{where}.errors")):
        here = f"{where}.errors[{i}]"
        item = obj(raw, here)
        source = obj(item.get("source") or {}, f"{here}.source")
        meta = item.get("meta")
        out.append(
            JobError(
                detail=req_str(item, "detail", here),
                id=opt_str(item, "id", here),
                code=opt_str(item, "code", here),
                title=opt_str(item, "title", here),
                source_pointer=opt_str(source, "pointer", f"{here}.source"),
                meta=obj(meta, f"{here}.meta") if meta is not None else None,
            )
        )
    return out


def resolve(
    resource: Mapping[str, Any],
    relationship: str,
    index: Mapping[tuple[str, str], _Included],
    where: str,
) -> list[Any]:
    """The related resources of one relationship, in linkage order; missing ones as refs."""
    rels = obj(resource.get("relationships") or {}, f"{where}.relationships")
    rel = obj(rels.get(relationship) or {}, f"{where}.relationships.{relationship}")
    out: list[Any] = []
    for i, raw in enumerate(seq(rel.get("data") or [], f"{where}.{relationship}.data")):
        here = f"{where}.relationships.{relationship}.data[{i}]"
        link = obj(raw, here)
        key = (req_str(link, "type", here), req_str(link, "id", here))
        out.append(index.get(key) or ResourceRef(*key))
    return out


def job_fields(resource: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The `BulkJob` fields of a job resource, type-checked."""
    attributes = obj(resource.get("attributes"), f"{where}.attributes")
    here = f"{where}.attributes"
    # data.id from revision 2023-12-15; attributes.job_id before it.
    job_id = opt_str(resource, "id", where) or opt_str(attributes, "job_id", here)
    if not job_id:
        raise Invalid(f"{where} has neither `id` nor `attributes.job_id`")
    return {
        "id": job_id,
        "kind": req_str(resource, "type", where),
        "status": JobStatus.parse(req_str(attributes, "status", here)),
        "created_at": req_datetime(attributes, "created_at", here),
        "completed_at": opt_datetime(attributes, "completed_at", here),
        "expires_at": opt_datetime(attributes, "expires_at", here),
        "total_count": count(attributes, "total_count", here),
        "completed_count": count(attributes, "completed_count", here),
        "failed_count": count(attributes, "failed_count", here),
        "errors": job_errors(attributes, here),
    }


def parse_model(factory: Callable[[Mapping[str, Any]], T], document: Any) -> T:
    try:
        return factory(obj(document, "the document"))
    except MODEL_ERRORS as exc:
        raise Invalid(f"{type(exc).__name__}: {exc!s:.120}") from None


def job_document(
    document: Any,
    model: Callable[[Mapping[str, Any]], Any],
    include: tuple[str, ...],
) -> BulkJob:
    """A single-job document. `include` lists the relationships that were requested."""
    resource = obj(obj(document, "the document").get("data"), "data")
    fields = job_fields(resource, "data")  # first: its messages name the bad member
    parsed = parse_model(model, document)
    index: dict[tuple[str, str], _Included] = {}
    for included in parsed.included or ():
        index.setdefault((included.type_.value, included.id), included)  # first one wins
    # Only the relationships BulkJob has a slot for; a newer one stays reachable through `raw`.
    related: dict[str, Any] = {
        rel: resolve(resource, rel, index, "data") for rel in include if rel in RELATED
    }
    return BulkJob(**fields, raw=parsed.data, **related)


def job_collection(document: Any, model: Callable[[Mapping[str, Any]], Any]) -> Page[BulkJob]:
    top = obj(document, "the document")
    resources = seq(top.get("data"), "data")
    fields = [job_fields(obj(r, f"data[{i}]"), f"data[{i}]") for i, r in enumerate(resources)]
    links = obj(top.get("links") or {}, "links")
    next_cursor = cursor_of(opt_str(links, "next", "links"))
    parsed = parse_model(model, document)
    jobs = [BulkJob(**f, raw=raw) for f, raw in zip(fields, parsed.data, strict=True)]
    return Page(data=jobs, next_cursor=next_cursor, raw=parsed)


def cursor_of(next_link: str | None) -> str | None:
    """The `page[cursor]` of a `links.next` URL. Only the cursor is used, never the URL."""
    if not next_link:
        return None
    try:
        cursor = httpx.URL(next_link).params.get("page[cursor]")
    except (httpx.InvalidURL, ValueError):
        raise Invalid(f"links.next is not a URL: {next_link!r:.80}") from None
    if not isinstance(cursor, str) or not cursor:
        raise Invalid(f"links.next has no page[cursor]: {next_link!r:.80}")
    return cursor


def error_details(response: httpx.Response) -> list[APIErrorDetail]:
    """Klaviyo's `errors[]` from an error response, leniently: an error must never be masked."""
    try:
        errors = json.loads(response.content).get("errors")
    except (ValueError, AttributeError, RecursionError):
        return []
    out = []
    for item in errors if isinstance(errors, list) else []:
        if not isinstance(item, dict):
            continue
        source = item.get("source")
        source = source if isinstance(source, dict) else {}
        meta = item.get("meta")
        out.append(
            APIErrorDetail(
                detail=_text(item, "detail"),
                id=_text(item, "id"),
                code=_text(item, "code"),
                title=_text(item, "title"),
                source_pointer=_text(source, "pointer"),
                source_parameter=_text(source, "parameter"),
                meta=meta if isinstance(meta, dict) else None,
            )
        )
    return out


def _text(d: Mapping[str, Any], key: str) -> str | None:
    value = d.get(key)
    return value if isinstance(value, str) else None
