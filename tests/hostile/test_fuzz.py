"""Fuzzing the response parsing: spec-valid documents, then mutated ones, sans-I/O and over HTTP.

The property: a facade call returns a correct `BulkJob` / `Page` (equal, field by field, to what
the document says when it was valid) or raises `InvalidResponseError`; nothing else escapes,
also not later, when the caller reads `progress`, `raw`, or any attribute of an included item.

Strategies are the project's own (no hypothesis-jsonschema): they follow the curated spec's
schemas for the default revision's shape (`attributes.job_id`) and the newer one (`data.id`),
and `test_valid_documents_conform_to_the_curated_spec` checks that they really do.

CI runs the "ci" profile; `HYPOTHESIS_PROFILE=fuzz` (`make fuzz`) runs 50 times as many
(the profiles are in tests/support/hardening_support.py).
"""

from __future__ import annotations

import concurrent.futures
import copy
import datetime as dt
import json
import random
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import httpx
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from klaviyo_catalog import (
    APIErrorDetail,
    AsyncCatalogJobs,
    BulkJob,
    CatalogJobs,
    Category,
    InvalidResponseError,
    Item,
    JobStatus,
    MemoryRateLimiter,
    Page,
    PaginationError,
    Resource,
    ResourceRef,
    Variant,
)
from klaviyo_catalog._core import Core
from klaviyo_catalog._flow import Flow, Send
from klaviyo_catalog._jsonapi import job_document
from klaviyo_catalog.testing import FakeKlaviyo, Fault, VirtualClock
from klaviyo_catalog_api.catalog_spec import KINDS, OPERATIONS
from klaviyo_catalog_api.views import Attr, kind_name, parse_datetime
from openapi_schema_validator import OAS30Validator

from tests.support.hardening_support import FAST_RATES, PROFILE, Loop
from tests.support.paths import ROOT
from tests.support.virtual_clock import virtual_core

# Each HTTP example costs a round trip: a quarter as many, and the sans-I/O ones cover the rest.
HTTP_PROFILE = settings(PROFILE, max_examples=max(1, PROFILE.max_examples // 4))

SPEC = ROOT / "openapi" / "klaviyo-catalog-jobs.yaml"
UTC = dt.UTC


@attrs.frozen
class Endpoint:
    operation: str
    job_type: str
    relationship: str
    related_type: str
    document: str  # the curated spec's schema of the 200 response
    is_list: bool = False
    includes: bool = False  # the single-job GET takes `include` (delete jobs' do not)


# Every operation of the generated spec, each kind's single-job GET and its list.
SINGLE = [
    Endpoint(
        str(k.get_operation),
        k.job_type,
        rel,
        related,
        f"{k.model}Document",
        includes=bool(OPERATIONS[str(k.get_operation)].include),
    )
    for k in KINDS.values()
    if k.get_operation
    for rel, related in list(k.relationships.items())[:1]
]
LISTS = [
    Endpoint(str(k.list_operation), k.job_type, rel, related, f"{k.model}Collection", True)
    for k in KINDS.values()
    if k.list_operation
    for rel, related in list(k.relationships.items())[:1]
]
VIEWS: dict[str, type[Resource[Any]]] = {
    "catalog-item": Item,
    "catalog-variant": Variant,
    "catalog-category": Category,
}

# --- building blocks ----------------------------------------------------------------------------

# Any Unicode scalar value: everything JSON text can carry in UTF-8 (lone surrogates are below).
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
NONEMPTY = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
# An id a client can ask for (blank, "." and ".." are refused before any request).
JOB_ID = NONEMPTY.filter(lambda text: bool(text.strip()) and text not in (".", ".."))
JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
# Counts are `type: integer` without bounds, but a decoder may stop at 64 bits (orjson, the
# [speedups] extra, does): larger ones are mutations, and test_progress_of_huge_counts below.
COUNT = st.integers(0, 2**53) | st.integers(-(2**63), 2**63 - 1)
URL = st.sampled_from(["https://a.klaviyo.com/api/x/", "https://elsewhere.example/y?z=1"])
OFFSETS = {
    "": UTC,  # no offset: read as UTC
    "Z": UTC,
    "+00:00": UTC,
    "+05:30": dt.timezone(dt.timedelta(hours=5, minutes=30)),
    "-0800": dt.timezone(dt.timedelta(hours=-8)),
    "+14:00": dt.timezone(dt.timedelta(hours=14)),
    "-12:00": dt.timezone(dt.timedelta(hours=-12)),
}


def nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def datetime_text(draw: st.DrawFn) -> tuple[str, dt.datetime]:
    """A date-time as the spec's pattern allows it, and the aware datetime it means."""
    moment = draw(st.datetimes(dt.datetime(1971, 1, 1), dt.datetime(2099, 12, 31)))
    timespec = draw(st.sampled_from(["minutes", "seconds", "milliseconds", "microseconds"]))
    if timespec == "minutes":
        moment = moment.replace(second=0, microsecond=0)
    elif timespec == "seconds":
        moment = moment.replace(microsecond=0)
    elif timespec == "milliseconds":
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    zone = draw(st.sampled_from(sorted(OFFSETS)))
    return moment.isoformat(timespec=timespec) + zone, moment.replace(tzinfo=OFFSETS[zone])


DATE = nullable(datetime_text().map(lambda pair: pair[0]))
STRING = nullable(TEXT)
# Finite and representable: a number no float can hold is a mutation, below.
NUMBER = nullable(st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False))
_COMMON_ATTRIBUTES = {
    "external_id": STRING,
    "title": STRING,
    "description": STRING,
    "price": NUMBER,
    "url": STRING,
    "image_full_url": STRING,
    "image_thumbnail_url": STRING,
    "images": nullable(st.lists(TEXT, max_size=3)),
    "custom_metadata": nullable(st.dictionaries(TEXT, JSON_VALUE, max_size=3)),
    "published": nullable(st.booleans()),
    "created": DATE,
    "updated": DATE,
}
RELATED_ATTRIBUTES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "catalog-item": _COMMON_ATTRIBUTES,
    "catalog-variant": _COMMON_ATTRIBUTES
    | {
        "sku": STRING,
        "inventory_policy": nullable(st.integers(0, 2) | st.integers()),
        "inventory_quantity": NUMBER,
    },
    "catalog-category": {"external_id": STRING, "name": STRING, "updated": DATE},
}
UNKNOWN_MEMBERS = st.dictionaries(NONEMPTY.map(lambda s: "x-" + s), JSON_VALUE, max_size=2)


def optional(draw: st.DrawFn, target: dict[str, Any], key: str, value: Any) -> bool:
    """Set target[key] = value, or leave it absent; True if set."""
    if draw(st.booleans()):
        target[key] = value
        return True
    return False


# --- valid documents, and what they must turn into ------------------------------------------------


@attrs.frozen
class Expected:
    """A BulkJob's fields as the document states them; `related` is None unless requested."""

    fields: Mapping[str, Any]
    related: list[tuple[str, str, Mapping[str, Any] | None]] | None  # (type, id, included)


@attrs.frozen
class Case:
    endpoint: Endpoint
    document: dict[str, Any]
    include: tuple[str, ...]
    jobs: list[Expected]
    next_cursor: str | None = None


@st.composite
def job_error(draw: st.DrawFn) -> tuple[dict[str, Any], APIErrorDetail]:
    error: dict[str, Any] = {"detail": draw(TEXT)}
    for key in ("id", "code", "title"):
        optional(draw, error, key, draw(TEXT))
    pointer = parameter = None
    if draw(st.booleans()):
        source: dict[str, Any] = {}
        if optional(draw, source, "pointer", draw(TEXT)):
            pointer = source["pointer"]
        if optional(draw, source, "parameter", draw(TEXT)):
            parameter = source["parameter"]
        error["source"] = source
    meta = draw(st.dictionaries(TEXT, JSON_VALUE, max_size=2)) if draw(st.booleans()) else None
    if meta is not None:
        error["meta"] = meta
    expected = APIErrorDetail(
        detail=error["detail"],
        id=error.get("id"),
        code=error.get("code"),
        title=error.get("title"),
        source_pointer=pointer,
        source_parameter=parameter,
        meta=meta,
    )
    return error, expected


@st.composite
def job_resource(
    draw: st.DrawFn, endpoint: Endpoint, ids: list[str], linked: bool = False
) -> tuple[dict[str, Any], dict[str, Any], list[str] | None]:
    """A job resource, its expected BulkJob fields, and the ids it links to (None: no linkage)."""
    job_id = draw(JOB_ID)
    status = draw(st.sampled_from([s.value for s in JobStatus]) | TEXT)
    created_text, created = draw(datetime_text())
    attributes: dict[str, Any] = {"status": status, "created_at": created_text}
    fields: dict[str, Any] = {
        "id": job_id,
        "kind": kind_name(endpoint.job_type),
        "status": JobStatus.parse(status),
        "created_at": created,
    }
    new_shape = draw(st.booleans())  # data.id from 2023-12-15; attributes.job_id before
    if not new_shape:
        attributes["job_id"] = job_id
    for name in ("completed_at", "expires_at"):
        fields[name] = None
        if draw(st.booleans()):
            text, moment = draw(nullable(datetime_text())) or (None, None)
            attributes[name], fields[name] = text, moment
    total = draw(nullable(COUNT))  # not nullable in the spec, but optional: None is absent
    fields["total_count"] = total or 0
    if total is not None:
        attributes["total_count"] = total
    for name in ("completed_count", "failed_count"):
        value = draw(nullable(COUNT))
        fields[name] = value or 0
        if value is not None or draw(st.booleans()):
            attributes[name] = value
    fields["errors"] = []
    if draw(st.booleans()):
        pairs = draw(nullable(st.lists(job_error(), max_size=3)))
        attributes["errors"] = None if pairs is None else [p[0] for p in pairs]
        fields["errors"] = [] if pairs is None else [p[1] for p in pairs]
    attributes |= draw(UNKNOWN_MEMBERS)
    resource: dict[str, Any] = {"type": endpoint.job_type, "attributes": attributes}
    if new_shape:
        resource["id"] = job_id
    linkage = None
    if linked or draw(st.booleans()):
        linkage = draw(st.lists(st.sampled_from(ids), max_size=5))
        relationship: dict[str, Any] = {
            "data": [{"type": endpoint.related_type, "id": i} for i in linkage]
        }
        if draw(st.booleans()):
            relationship["links"] = {"self": draw(nullable(URL)), "related": draw(nullable(URL))}
        resource["relationships"] = {endpoint.relationship: relationship}
    if draw(st.booleans()):
        resource["links"] = {"self": draw(nullable(URL))}
    return resource, fields, linkage


@st.composite
def related_resource(draw: st.DrawFn, related_type: str, ids: list[str]) -> dict[str, Any]:
    resource: dict[str, Any] = {"type": related_type, "id": draw(st.sampled_from(ids))}
    if draw(st.booleans()):
        resource["attributes"] = draw(
            st.fixed_dictionaries({}, optional=RELATED_ATTRIBUTES[related_type])
        )
    if draw(st.booleans()):
        resource["links"] = {"self": draw(nullable(URL))}
    return resource


@st.composite
def single_case(draw: st.DrawFn) -> Case:
    endpoint = draw(st.sampled_from(SINGLE))
    ids = draw(st.lists(NONEMPTY, min_size=1, max_size=4, unique=True))
    requested = endpoint.includes and draw(st.booleans())
    # Mostly linked and included when requested, so that views are compared often.
    linked = requested and draw(st.integers(0, 3)) > 0
    resource, fields, linkage = draw(job_resource(endpoint, ids, linked))
    document: dict[str, Any] = {"data": resource}
    included: list[dict[str, Any]] = []
    if linked or draw(st.booleans()):
        included = draw(st.lists(related_resource(endpoint.related_type, ids), max_size=5))
        document["included"] = included
    if draw(st.booleans()):
        document["links"] = {"self": draw(nullable(URL))}
    document |= draw(UNKNOWN_MEMBERS)
    # Requested: the linked resources, included where they are; not requested: the ids the job
    # names, as refs (None when it names none).
    related: list[tuple[str, str, Mapping[str, Any] | None]] | None = None
    if linkage is not None:
        related = [(endpoint.related_type, i, None) for i in linkage]
    if requested:
        first: dict[str, dict[str, Any]] = {}
        for item in included:
            first.setdefault(item["id"], item)  # the first of duplicates wins
        related = [
            (endpoint.related_type, i, (first[i].get("attributes") or {}) if i in first else None)
            for i in linkage or []
        ]
    include = (endpoint.relationship,) if requested else ()
    return Case(endpoint, document, include, [Expected(fields, related)])


@st.composite
def next_link(draw: st.DrawFn) -> tuple[str | None, str | None]:
    """A `links.next` value and the cursor the client must take from it."""
    if draw(st.booleans()):
        return None, None
    cursor = draw(NONEMPTY)
    params = {"page[cursor]": cursor}
    if draw(st.booleans()):
        params = {"filter": 'equals(status,"queued")'} | params
    return str(httpx.URL(draw(URL), params=params)), cursor


@st.composite
def page_case(draw: st.DrawFn) -> Case:
    endpoint = draw(st.sampled_from(LISTS))
    triples = draw(st.lists(job_resource(endpoint, ["I1", "I2"]), max_size=4))
    links: dict[str, Any] = {}
    for name in ("self", "first", "last", "prev"):
        optional(draw, links, name, draw(nullable(URL)))
    link, cursor = draw(next_link())
    if link is not None or draw(st.booleans()):
        links["next"] = link
    document: dict[str, Any] = {"data": [t[0] for t in triples]}
    if len(links) > 0 or draw(st.booleans()):
        document["links"] = links
    refs: list[list[tuple[str, str, Mapping[str, Any] | None]] | None] = [
        None if t[2] is None else [(endpoint.related_type, i, None) for i in t[2]] for t in triples
    ]
    jobs = [Expected(t[1], related) for t, related in zip(triples, refs, strict=True)]
    return Case(endpoint, document, (), jobs, cursor)


CASES = single_case() | page_case()

# --- mutations ----------------------------------------------------------------------------------


@attrs.frozen
class Deep:
    """A value nested `depth` levels deep, written straight into the JSON text. A negative
    depth is relative to the recursion limit at the time (hypothesis raises it while testing),
    so that the value is as deep as the decoder can just about take."""

    depth: int
    container: str  # "list" or "dict"

    @property
    def marker(self) -> str:
        return f"@@deep:{self.container}:{self.depth}@@"

    def text(self) -> str:
        depth = self.depth if self.depth > 0 else sys.getrecursionlimit() + self.depth
        if self.container == "list":
            return "[" * depth + "]" * depth
        return '{"a":' * depth + "null" + "}" * depth


DEPTHS = (50, 500, -400, -100, -50, -30, -20, -10, -5, 5000)
DEEP = [Deep(depth, container) for depth in DEPTHS for container in ("list", "dict")]
NASTY: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    10**400,
    -(10**400),
    1.5,
    -0.0,
    1e308,
    float("inf"),
    float("nan"),
    "",
    " ",
    "x",
    "\u0000",
    "\ud800",  # a lone surrogate: valid as a JSON escape, not as UTF-8
    "\u202e\ufeff\U0010ffff",
    "e\u0301\u0301\u0301",
    "😀" * 3,
    "a" * 100_000,
    "2024-13-45T25:61:61",
    "2024-02-30T00:00:00",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+00:01",
    "\u0662\u0660\u0662\u0664-\u0660\u0661-\u0660\u0661T00:00",  # Arabic-Indic digits
    "http://[::1",
    "https://x/?page%5Bcursor%5D=",
    [],
    {},
    [None],
    {"": None},
    {"type": "catalog-item", "id": 7},
    *DEEP,
]


def paths(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*here, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*here, index))


def mutate(document: Any, path: tuple[Any, ...], operation: str, value: Any) -> Any:
    """The document with one change at `path` (the root is replaced, never deleted)."""
    value = copy.deepcopy(value)  # NASTY's lists and dicts must never be changed in place
    if not path:
        return value if operation in ("replace", "delete") else [document]
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if operation == "delete":
        del parent[last]
    elif operation == "replace":
        parent[last] = value
    elif operation == "wrap":
        parent[last] = [parent[last]]
    elif operation == "duplicate" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(parent[last]))
    elif isinstance(parent[last], dict):  # "insert": an unexpected member
        parent[last]["x-unexpected"] = value
    return document


def serialise(document: Any, ensure_ascii: bool) -> bytes:
    deep: dict[str, Deep] = {}

    def placeholder(value: object) -> str:
        assert isinstance(value, Deep)
        deep[value.marker] = value
        return value.marker

    text = json.dumps(document, ensure_ascii=ensure_ascii, default=placeholder)
    for marker, value in deep.items():
        text = text.replace(json.dumps(marker), value.text())
    return text.encode("utf-8", errors="surrogatepass")  # lone surrogates: invalid UTF-8


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Case, bytes]:
    case = draw(CASES)
    document: Any = copy.deepcopy(case.document)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(document))))
        operation = draw(st.sampled_from(["delete", "replace", "replace", "wrap", "duplicate"]))
        document = mutate(document, path, operation, draw(st.sampled_from(NASTY)))
    body = serialise(document, ensure_ascii=draw(st.booleans()))
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "insert", "flip"]))
    if damage != "none" and body:
        # Drawn independently of the length, which a Deep value ties to the recursion limit.
        at = draw(st.integers(0, 2**32)) % len(body)
        byte = bytes([draw(st.integers(0, 255))])
        body = {
            "truncate": body[:at],
            "insert": body[:at] + byte + body[at:],
            "flip": body[:at] + byte + body[at + 1 :],
        }[damage]
    return case, body


# --- driving the real flow without a network ------------------------------------------------------


@pytest.fixture(scope="module")
def core() -> Core:
    return virtual_core(
        VirtualClock(),
        api_key="pk_fuzz",
        base_url="http://127.0.0.1:9",
        limiter=MemoryRateLimiter(),
        rate_limits=FAST_RATES,
    )


def requested_id(case: Case) -> str:
    """The id a single-job case asks for: its document's (the client refuses any other)."""
    job_id: str = case.jobs[0].fields["id"]
    return job_id


def respond(core: Core, case: Case, body: bytes) -> Any:
    """Run the call's real flow, answering its one request with `body` (sans-I/O)."""
    endpoint = case.endpoint
    flow: Flow[Any]
    if endpoint.is_list:
        flow = core.list_page(endpoint.operation, status=None, cursor=None, fields=None)
    else:
        flow = core.get_job(endpoint.operation, requested_id(case), case.include, None)
    action = next(flow)
    assert isinstance(action, Send)
    response = httpx.Response(
        200, content=body, headers={"Content-Type": "application/json"}, request=action.request
    )
    try:
        flow.send(response)
    except StopIteration as done:
        return done.value
    raise AssertionError("a flow made a second request after a 200")


# --- the checks ---------------------------------------------------------------------------------


def attribute_names(view: type[Resource[Any]]) -> list[str]:
    return [name for name in dir(view) if isinstance(getattr(view, name, None), Attr)]


def expected_attribute(name: str, raw: Any) -> Any:
    if raw is None:
        return None
    if name in ("price", "inventory_quantity"):
        return float(raw)
    if name in ("created", "updated"):
        return parse_datetime(raw)
    return raw


# What each attribute's declared type promises, independently of how the views read it.
ATTRIBUTE_TYPES: dict[str, type[Any]] = {
    "price": float,
    "inventory_quantity": float,
    "inventory_policy": int,
    "published": bool,
    "images": list,
    "custom_metadata": dict,
    "created": dt.datetime,
    "updated": dt.datetime,
}


def assert_typed(name: str, value: Any) -> None:
    """`value` is what the view's declared type promises for attribute `name`."""
    if value is None:
        return
    kind = ATTRIBUTE_TYPES.get(name, str)
    assert type(value) is kind, f"{name} is a {type(value).__name__}"
    if kind is list:
        assert all(type(v) is str for v in value), f"{name} holds a non-string"
    elif kind is dt.datetime:
        assert value.tzinfo is not None


def read_view(view: Resource[Any], expected: Mapping[str, Any] | None) -> None:
    """Read every attribute and the model; with `expected` (valid), all must round-trip."""
    assert isinstance(view.type, str) and isinstance(view.id, str)
    for name in attribute_names(type(view)):
        try:
            value = getattr(view, name)
        except InvalidResponseError:
            assert expected is None, f"{name} of a valid resource was refused"
            continue
        assert_typed(name, value)
        if expected is not None:
            assert value == expected_attribute(name, expected.get(name)), name
    try:
        model = view.model
    except InvalidResponseError:
        assert expected is None
    else:
        assert model.id == view.id
    repr(view)


def check_job(job: BulkJob, expected: Expected | None) -> None:
    """Well typed in every field and lazy property; equal to `expected` when given."""
    assert isinstance(job, BulkJob)
    assert isinstance(job.id, str) and job.id and isinstance(job.kind, str)
    assert isinstance(job.status, JobStatus | str)
    assert job.created_at.tzinfo is not None
    for moment in (job.completed_at, job.expires_at):
        assert moment is None or (isinstance(moment, dt.datetime) and moment.tzinfo is not None)
    for number in (job.total_count, job.completed_count, job.failed_count):
        assert type(number) is int
    assert 0.0 <= job.progress <= 1.0 and isinstance(job.is_done, bool)
    for error in job.errors:
        assert isinstance(error, APIErrorDetail) and isinstance(error.detail, str)
        assert all(isinstance(v, str | None) for v in (error.id, error.code, error.title))
        assert error.source_pointer is None or isinstance(error.source_pointer, str)
        assert error.meta is None or isinstance(error.meta, dict)
    try:
        model = job.model
    except InvalidResponseError:
        assert expected is None, "a valid job's generated model was refused"
    else:
        assert model.type_.value == job.type and kind_name(job.type) == job.kind
    repr(job)
    related_lists = {"items": job.items, "variants": job.variants, "categories": job.categories}
    for related in related_lists.values():
        for entry in related or []:
            if isinstance(entry, ResourceRef):
                assert isinstance(entry.type, str) and isinstance(entry.id, str)
            else:
                read_view(entry, None)
    if expected is None:
        return
    for name, value in expected.fields.items():
        assert getattr(job, name) == value, name
    wanted = [name for name, value in related_lists.items() if value is not None]
    if expected.related is None:
        assert wanted == []
        return
    got = related_lists[wanted[0]]
    assert got is not None and len(got) == len(expected.related)
    for entry, (json_type, resource_id, attributes) in zip(got, expected.related, strict=True):
        if attributes is None:
            assert entry == ResourceRef(json_type, resource_id)
        else:
            assert isinstance(entry, VIEWS[json_type]) and entry.id == resource_id
            read_view(entry, attributes)


def check(result: object, case: Case, valid: bool) -> None:
    if case.endpoint.is_list:
        assert isinstance(result, Page)
        if valid:
            assert result.next_cursor == case.next_cursor
            assert len(result.data) == len(case.jobs)
        else:
            # A usable cursor, the last page, or (links.next unusable) a page that keeps its
            # data, says a next page exists, and refuses to name it.
            try:
                next_cursor = result.next_cursor
            except PaginationError as error:
                assert result.has_next and error.cursor == result.cursor
            else:
                assert next_cursor is None or (isinstance(next_cursor, str) and next_cursor)
        for index, job in enumerate(result.data):
            check_job(job, case.jobs[index] if valid else None)
    else:
        assert isinstance(result, BulkJob)
        check_job(result, case.jobs[0] if valid else None)


# --- the properties, sans-I/O -------------------------------------------------------------------


@PROFILE
@given(CASES)
def test_valid_documents_round_trip(core: Core, case: Case) -> None:
    check(respond(core, case, json.dumps(case.document).encode()), case, valid=True)


@PROFILE
@given(mutated())
def test_mutated_documents_parse_or_raise_invalid_response(
    core: Core, sample: tuple[Case, bytes]
) -> None:
    case, body = sample
    try:
        result = respond(core, case, body)
    except InvalidResponseError as error:
        assert error.status_code == 200 and isinstance(error.excerpt, str)
        return
    check(result, case, valid=False)


@st.composite
def view_attributes(draw: st.DrawFn) -> tuple[type[Resource[Any]], dict[str, Any], set[str]]:
    """An included resource's attributes, each right per the spec or a nasty value; the names
    of the right ones."""
    related_type = draw(st.sampled_from(sorted(RELATED_ATTRIBUTES)))
    attributes: dict[str, Any] = {}
    right: set[str] = set()
    for name, strategy in RELATED_ATTRIBUTES[related_type].items():
        choice = draw(st.sampled_from(["absent", "right", "nasty"]))
        if choice == "right":
            attributes[name] = draw(strategy)
            right.add(name)
        elif choice == "nasty":
            attributes[name] = draw(st.sampled_from(NASTY) | JSON_VALUE)
    return VIEWS[related_type], attributes, right


def nested_call(depth: int, then: Callable[[], None]) -> None:
    """Call `then` from `depth` frames further down the stack, as an app's code may."""
    if depth:
        nested_call(depth - 1, then)
    else:
        then()


@PROFILE
@given(view_attributes(), st.integers(0, 120))
def test_included_views_return_typed_values_or_raise_invalid_response(
    sample: tuple[type[Resource[Any]], dict[str, Any], set[str]], depth: int
) -> None:
    view_type, attributes, right = sample
    # Decoded on a shallow stack (as on a worker thread), read on a deeper one (the app's):
    # a value nested as deep as json accepts must still only be reported, never crash the
    # reader with a RecursionError.
    json_type = next(name for name, view in VIEWS.items() if view is view_type)
    endpoint = next(e for e in SINGLE if e.related_type == json_type)
    document = {
        "data": {
            "type": endpoint.job_type,
            "id": "J",
            "attributes": {"status": "queued", "created_at": "2024-01-01T00:00:00"},
            "relationships": {endpoint.relationship: {"data": [{"type": json_type, "id": "X"}]}},
        },
        "included": [{"type": json_type, "id": "X", "attributes": attributes}],
    }
    body = serialise(document, ensure_ascii=True)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            decoded = pool.submit(json.loads, body).result()
        except (ValueError, RecursionError):
            return  # the client refuses such a body before any view exists (tested above)
        # Built as a call builds it; views read their attributes lazily, on the reader's stack.
        job = pool.submit(job_document, decoded, endpoint.job_type, (endpoint.relationship,))
        related = getattr(job.result(), endpoint.relationship)
    view = related[0]
    assert isinstance(view, view_type)

    def read() -> None:
        for name in attribute_names(view_type):
            try:
                value = getattr(view, name)
            except InvalidResponseError:
                assert name not in right, f"a valid {name} was refused"
                continue
            assert_typed(name, value)
            if name in right:
                assert value == expected_attribute(name, attributes[name])
        try:
            model = view.model
        except InvalidResponseError:
            assert not right.issuperset(attributes), "a valid resource's model was refused"
        else:
            assert model.id == view.id

    nested_call(depth, read)


@pytest.mark.parametrize("completed", [0, 1, 10**400, -(10**400)])
@pytest.mark.parametrize("total", [1, 10**400])
def test_progress_of_huge_counts(completed: int, total: int) -> None:
    # Valid per the spec (`type: integer`), and past the float range: found by the round trip.
    attributes: dict[str, Any] = {"job_id": "J", "status": "processing", "created_at": "2024-01-01"}
    attributes |= {"total_count": total, "completed_count": completed, "failed_count": 1}
    document = {"data": {"type": SINGLE[0].job_type, "attributes": attributes}}
    job = job_document(document, SINGLE[0].job_type, ())
    assert 0.0 <= job.progress <= 1.0
    assert job.progress == (1.0 if completed + 1 >= total else 0.0)


# --- the strategies generate what the spec calls valid -----------------------------------------


def _spec_validator() -> Callable[[str, Any], None]:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))

    def validate(schema_name: str, document: Any) -> None:
        schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
        OAS30Validator(schema).validate(document)

    return validate


VALIDATE = _spec_validator()


@settings(PROFILE, max_examples=max(1, PROFILE.max_examples // 4))
@given(CASES)
def test_valid_documents_conform_to_the_curated_spec(case: Case) -> None:
    VALIDATE(case.endpoint.document, case.document)


# --- the same, through the real clients over loopback HTTP ---------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo(rate_limits=None) as server:
        yield server


def serve(fake: FakeKlaviyo, body: bytes) -> None:
    fake.clear_faults()
    fake.inject(Fault.body(200, body))


def call_sync(client: CatalogJobs, case: Case) -> Any:
    if case.endpoint.is_list:
        return getattr(client, case.endpoint.operation)()
    options = {"include": case.include} if case.endpoint.includes else {}
    return getattr(client, case.endpoint.operation)(requested_id(case), **options)


async def call_async(client: AsyncCatalogJobs, case: Case) -> Any:
    if case.endpoint.is_list:
        return await getattr(client, case.endpoint.operation)()
    options = {"include": case.include} if case.endpoint.includes else {}
    return await getattr(client, case.endpoint.operation)(requested_id(case), **options)


@pytest.fixture(scope="module")
def sync_client(fake: FakeKlaviyo) -> Iterator[CatalogJobs]:
    with CatalogJobs(
        fake.api_key,
        base_url=fake.base_url,
        rate_limiter=MemoryRateLimiter(),
        rate_limits=FAST_RATES,
        max_retries=0,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def async_runner(fake: FakeKlaviyo) -> Iterator[tuple[Loop, AsyncCatalogJobs]]:
    # One loop for the module: the client's connection pool belongs to it.
    with Loop() as loop:
        client = AsyncCatalogJobs(
            fake.api_key,
            base_url=fake.base_url,
            rate_limiter=MemoryRateLimiter(),
            rate_limits=FAST_RATES,
            max_retries=0,
        )
        yield loop, client
        loop.run(client.aclose())


@HTTP_PROFILE
@given(CASES, st.randoms(use_true_random=False))
def test_http_sync(
    fake: FakeKlaviyo, sync_client: CatalogJobs, case: Case, rng: random.Random
) -> None:
    valid = rng.random() < 0.5
    body = json.dumps(case.document).encode() if valid else mutate_bytes(case, rng)
    serve(fake, body)
    try:
        result = call_sync(sync_client, case)
    except InvalidResponseError:
        assert not valid
        return
    check(result, case, valid)


@HTTP_PROFILE
@given(CASES, st.randoms(use_true_random=False))
def test_http_async(
    fake: FakeKlaviyo,
    async_runner: tuple[Loop, AsyncCatalogJobs],
    case: Case,
    rng: random.Random,
) -> None:
    runner, client = async_runner
    valid = rng.random() < 0.5
    body = json.dumps(case.document).encode() if valid else mutate_bytes(case, rng)
    serve(fake, body)
    try:
        result = runner.run(call_async(client, case))
    except InvalidResponseError:
        assert not valid
        return
    check(result, case, valid)


def mutate_bytes(case: Case, rng: random.Random) -> bytes:
    """A cheaper mutation for the HTTP tests: one change at a random place."""
    document: Any = copy.deepcopy(case.document)
    path = rng.choice(list(paths(document)))
    operation = rng.choice(["delete", "replace", "wrap", "duplicate"])
    return serialise(mutate(document, path, operation, rng.choice(NASTY)), ensure_ascii=True)
