"""What the fake serves, read from a curated spec: the job kinds and their endpoints, the fields
of every resource, and the revision's path style, media type and job id location.

The spec is the copy `make gen` writes into the generated package (`openapi.json`), or any
curated spec a test passes, of any revision. The fake imports none of the client's code, so
that it can test any client, and a mistake in the client's reading of the spec is not
repeated here. It does read the facts `make gen` already derived, in
`klaviyo_catalog_api.catalog_spec` (data, not client code), where they hold for every
revision: each job type's kind name, its relationship and the type of the resources it names
(`KINDS`), the name of the job attribute old revisions kept the id in (`JOB_ID_ATTRIBUTE`);
and each operation's limits as numbers (`x-rate-limit-windows`, added to the spec's copy).

What stays read from the spec here, and why: the generated tables describe one revision, and
the fake serves the one it is given. So the revision, media type and path style, each
operation's sparse fieldsets and query parameters, the job attributes served and where the id
goes, which links a document carries, and the schema of every attribute (the values the fake
makes follow it; the tables hold the views' Python types, not the schemas) come from the
served spec. Two things are no spec fact at all: the first revision of these endpoints
(`FIRST_REVISION`), and the collection a related resource's link points into (`_plural`).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from klaviyo_catalog_api.catalog_spec import JOB_ID_ATTRIBUTE, KINDS

FIRST_REVISION = "2022-10-17"  # the catalog bulk-job endpoints first appeared here
GENERATED_PACKAGE = "klaviyo_catalog_api"
SPEC_FILE = "openapi.json"

_REVISION = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[A-Za-z0-9_-]+)?$")
# The generated kinds by job type: a kind's name, relationship and related type are the same
# at every revision.
_KINDS_BY_TYPE = {kind.job_type: kind for kind in KINDS.values()}

SpecSource = Mapping[str, Any] | str | Path | None


@dataclass(frozen=True)
class JobKind:
    """One kind of bulk job and the catalog resource its relationship points at."""

    name: str  # short name accepted by FakeKlaviyo.add_job, e.g. "item-update"
    type: str  # JSON:API type of the job
    collection: str  # path segment of the job's endpoints
    relationship: str  # relationship name, also the only `include` value
    related_type: str  # JSON:API type of the related resources
    related_collection: str  # path segment of the related resources (for links)


@dataclass(frozen=True, eq=False)  # compared by identity: each is one of the spec's operations
class Endpoint:
    """One of the GET operations: a job kind, served one at a time or as pages."""

    kind: JobKind
    is_list: bool
    fieldsets: Mapping[str, frozenset[str]]  # JSON:API type -> the fields it may ask for
    query: frozenset[str]  # the query parameters it takes
    operation: str = ""  # its operationId, e.g. get_item_update_job
    # (count, seconds) windows: `x-rate-limit-windows`, which `make gen` adds to its copy of
    # the spec (parsed from x-klaviyo-ratelimit, whose grammar only scripts/generate.py reads)
    rate_limits: tuple[tuple[int, float], ...] = ()


def valid_revision(revision: str) -> bool:
    """Whether `revision` is one Klaviyo accepts: YYYY-MM-DD (with an optional .suffix),
    2022-10-17 or later."""
    match = _REVISION.match(revision)
    return match is not None and match.group(1) >= FIRST_REVISION


def generated_spec_path() -> Path:
    """The curated spec inside the installed generated package, found without importing it."""
    found = importlib.util.find_spec(GENERATED_PACKAGE)
    locations = list(found.submodule_search_locations or []) if found else []
    for location in locations:
        path = Path(location) / SPEC_FILE
        if path.exists():
            return path
    raise FileNotFoundError(
        f"no {SPEC_FILE} in the {GENERATED_PACKAGE} package: run `make gen`, or pass spec="
    )


@functools.cache
def _default_spec() -> Mapping[str, Any]:
    """The generated package's curated spec, read once per process."""
    loaded: Mapping[str, Any] = json.loads(generated_spec_path().read_text(encoding="utf-8"))
    return loaded


def load_spec(spec: SpecSource) -> Mapping[str, Any]:
    """A curated spec: as given, from a JSON file, or the generated package's copy."""
    if spec is None:
        return _default_spec()
    if isinstance(spec, str | Path):
        loaded: Mapping[str, Any] = json.loads(Path(spec).read_text(encoding="utf-8"))
        return loaded
    return spec


def _plural(json_type: str) -> str:
    """The collection name of a JSON:API type (catalog-category: catalog-categories)."""
    return json_type[:-1] + "ies" if json_type.endswith("y") else json_type + "s"


@dataclass(frozen=True)
class Shape:
    """How the spec's revision lays out the documents, and what it accepts."""

    revision: str
    content_type: str
    trailing_slash: bool
    endpoints: tuple[Endpoint, ...]
    job_attributes: tuple[str, ...]  # served job attributes, in the spec's order (no job id)
    # The attribute the id is served in (`attributes.job_id`, up to 2023-10-15) instead of
    # `data.id`; None when the revision serves `data.id`.
    job_id_attribute: str | None
    # The links the spec's documents have, as the revision published them:
    relationship_links: bool  # a relationship's self/related links (from 2023-12-15)
    document_self_link: bool  # a single-job document's top-level links.self (from 2026-01-15)
    first_last_links: bool  # a page's first and last links (up to 2026-04-15)
    # JSON:API type -> attribute name -> its schema, for every related resource type
    resources: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(repr=False)
    # attribute name -> its schema, for every job attribute (no job_id), in the spec's order
    job_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Shape:
        """The shape a curated spec (the parsed YAML of openapi/, or an extract) describes."""
        schemas = spec["components"]["schemas"]

        def deref(schema: Mapping[str, Any]) -> Mapping[str, Any]:
            while "$ref" in schema:
                schema = schemas[str(schema["$ref"]).rsplit("/", 1)[-1]]
            return schema

        def json_type(schema: Mapping[str, Any]) -> str:
            return str(deref(schema)["properties"]["type"]["enum"][0])

        kinds: dict[str, JobKind] = {}
        endpoints: list[Endpoint] = []
        job_attributes: dict[str, Mapping[str, Any]] = {}
        resources: dict[str, Mapping[str, Mapping[str, Any]]] = {}
        content_types: set[str] = set()
        slashes: set[bool] = set()
        links: dict[str, bool] = {}
        for path, item in spec["paths"].items():
            op = item["get"]
            content = op["responses"]["200"]["content"]
            content_types.update(content)
            document = deref(next(iter(content.values()))["schema"])["properties"]
            is_list = document["data"].get("type") == "array"
            job = deref(document["data"]["items"] if is_list else document["data"])["properties"]
            job_type = str(job["type"]["enum"][0])
            known = _KINDS_BY_TYPE.get(job_type)
            if known is None:
                raise ValueError(
                    f"the spec serves {job_type!r} jobs, which the generated package does not "
                    "know: regenerate it (make gen) from this spec"
                )
            (relationship, related_type), *_ = known.relationships.items()
            related = deref(job["relationships"])["properties"][relationship]
            links["relationship"] = (
                links.get("relationship", False) or "links" in deref(related)["properties"]
            )
            if is_list:
                page_links = deref(document.get("links", {})).get("properties", {})
                links["first_last"] = links.get("first_last", False) or "first" in page_links
            else:
                links["document"] = links.get("document", False) or "links" in document
            segments = path.strip("/").split("/")  # api, collection[, {job_id}]
            slashes.add(path.endswith("/"))
            kind = kinds.setdefault(
                job_type,
                JobKind(
                    name=known.name,
                    type=job_type,
                    collection=segments[1],
                    relationship=relationship,
                    related_type=related_type,
                    related_collection=_plural(related_type),
                ),
            )
            fieldsets: dict[str, frozenset[str]] = {}
            for param in op.get("parameters", []):
                if param["name"].startswith("fields["):
                    fieldsets[param["name"][7:-1]] = frozenset(param.get("x-csv-enum", ()))
            query = frozenset(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
            windows = tuple((int(c), float(s)) for c, s in op.get("x-rate-limit-windows", ()))
            endpoints.append(
                Endpoint(kind, is_list, fieldsets, query, str(op["operationId"]), windows)
            )
            for name, schema in deref(job["attributes"])["properties"].items():
                job_attributes.setdefault(name, deref(schema))
            included = document.get("included", {}).get("items")
            for member in included.get("oneOf", [included]) if included else []:
                resource = deref(member)["properties"]
                attributes = deref(resource.get("attributes", {})).get("properties", {})
                resources[json_type(member)] = {k: deref(v) for k, v in attributes.items()}
        if len(content_types) != 1 or len(slashes) != 1:
            raise ValueError("the spec's operations disagree on their media type or path style")
        for kind in kinds.values():
            resources.setdefault(kind.related_type, {})  # no schema published: no attributes
        job_fields = set().union(*(e.fieldsets.get(e.kind.type, ()) for e in endpoints))
        return cls(
            revision=str(spec["info"]["version"]),
            content_type=content_types.pop(),
            trailing_slash=slashes.pop(),
            endpoints=tuple(endpoints),
            job_attributes=tuple(name for name in job_attributes if name != JOB_ID_ATTRIBUTE),
            job_id_attribute=JOB_ID_ATTRIBUTE if JOB_ID_ATTRIBUTE in job_fields else None,
            relationship_links=links.get("relationship", False),
            document_self_link=links.get("document", False),
            first_last_links=links.get("first_last", False),
            resources=resources,
            job_schemas={k: v for k, v in job_attributes.items() if k != JOB_ID_ATTRIBUTE},
        )

    @property
    def rate_limits(self) -> dict[str, tuple[tuple[int, float], ...]]:
        """Per operation, the limits the spec publishes (where the spec's copy has them)."""
        return {e.operation: e.rate_limits for e in self.endpoints if e.rate_limits}

    @property
    def kinds(self) -> tuple[JobKind, ...]:
        """The job kinds this revision serves, in the spec's order."""
        return tuple(dict.fromkeys(endpoint.kind for endpoint in self.endpoints))

    def find_kind(self, kind: str | JobKind) -> JobKind:
        """A job kind by short name ("item-update"), job type, or itself."""
        if isinstance(kind, JobKind):
            return kind
        for candidate in self.kinds:
            if kind in (candidate.name, candidate.type):
                return candidate
        names = ", ".join(k.name for k in self.kinds)
        raise ValueError(f"unknown job kind {kind!r}; use a job type or one of {names}")

    def path(self, *segments: str) -> str:
        """The API path of these segments, with this revision's trailing slash or not."""
        return "/api/" + "/".join(segments) + ("/" if self.trailing_slash else "")


@functools.cache
def default_shape() -> Shape:
    """The shape of the revision the generated package was made from."""
    return Shape.from_spec(_default_spec())
