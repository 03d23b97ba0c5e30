"""Curate Klaviyo's published OpenAPI spec down to its catalog bulk-job GETs.

    python scripts/curate.py SOURCE [-o openapi/klaviyo-catalog-jobs.yaml] [--update-floor]

SOURCE is a path or an http(s) URL of Klaviyo's full spec for one revision. The operations are
selected by a rule, not a list (every GET of `/api/catalog-<noun>-bulk-<verb>-jobs` and of its
`/{job_id}`: 18 at every revision since 2022-10-17), so a job kind Klaviyo adds joins the
curation by itself. The output keeps only what those operations need, under names of our own
that stay the same across revisions, and corrects the places where the published spec
disagrees with the live API.
Every correction is listed, with its reason, under ``info.x-curation`` in the output.

The published spec's prose is never copied: descriptions, summaries and examples are dropped
and replaced by short texts of our own.

Rate limits are conservative across revisions: openapi/rate-limit-floor.yaml holds, per
operation, the limits of the newest revision curated so far. A revision older than that gets,
per window, the lower of its own published limit and the floor's (Klaviyo enforces its current
limits whatever revision a request names); its published limits stay in
`x-klaviyo-ratelimit-published`. `--update-floor` (what `make curate` passes) records a
revision's published limits as the new floor when it is as new as the floor or newer.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `scripts.generate` importable
    sys.path.insert(0, str(ROOT))

# Klaviyo's rate notation ("75/s") has one reader in the project: generate.py's.
from scripts.generate import GenerationError, parse_rate  # noqa: E402

JSON = dict[str, Any]

FLOOR = ROOT / "openapi" / "rate-limit-floor.yaml"
WINDOWS = ("burst", "steady")


class CurationError(Exception):
    """The published spec does not have the shape the curation rules expect."""


# The selection rule (see x-curation): every GET of a catalog bulk-job collection or member,
# `/api/catalog-<noun>-bulk-<verb>-jobs[/{job_id}]`, whatever the revision's path style.
OPERATION_PATH = re.compile(r"^/api/catalog-([a-z]+)-bulk-([a-z]+)-jobs(/\{[a-z_]+\})?/?$")


@dataclass(frozen=True)
class CuratedOperation:
    """One catalog bulk-job GET, under our stable names, derived from its path by the rule."""

    noun: str  # item, variant, category
    verb: str  # create, update, delete
    is_list: bool

    @property
    def operation_id(self) -> str:
        """Ours: `get_item_update_job`, `list_item_create_jobs`; also the facade's method."""
        kind = f"{self.noun}_{self.verb}"
        return f"list_{kind}_jobs" if self.is_list else f"get_{kind}_job"

    @property
    def job_model(self) -> str:
        """The component name of the job resource, e.g. ItemUpdateJob."""
        return f"{self.noun.capitalize()}{self.verb.capitalize()}Job"

    @property
    def document_model(self) -> str:
        return f"{self.job_model}{'Collection' if self.is_list else 'Document'}"

    @property
    def summary(self) -> str:
        what = f"catalog {self.noun} bulk {self.verb} job"
        if self.is_list:
            return f"A page of {what}s (100 per page), filterable by status."
        return f"One {what}, with its related resources where it takes `include`."


def curated_operation(path: str) -> CuratedOperation | None:
    """The curated operation of a published path, or None when the rule does not select it."""
    match = OPERATION_PATH.fullmatch(path)
    if match is None:
        return None
    return CuratedOperation(match[1], match[2], is_list=match[3] is None)


TAG = "catalog_jobs"

# Each correction made below, with its reason. Written into the output as info.x-curation.
CURATION_NOTES: tuple[tuple[str, str], ...] = (
    (
        "The operations are selected by a rule: every GET of a path "
        "`/api/catalog-<noun>-bulk-<verb>-jobs` (a list) or `.../{job_id}` (one job), named "
        "`list_<noun>_<verb>_jobs` and `get_<noun>_<verb>_job`.",
        "These are the reads of Klaviyo's catalog bulk jobs, all of one shape (18 at every "
        "revision since 2022-10-17: item, variant and category, each created, updated or "
        "deleted in bulk). A rule, unlike a list, takes in a job kind Klaviyo adds without an "
        "edit here; the POSTs that start jobs are out of scope (this client tracks jobs).",
    ),
    (
        "Job `status` is a plain string; the known values are listed in `x-known-values`.",
        "Klaviyo adds statuses over time, and the generator turns an enum into a strict type "
        "that rejects the whole response on an unknown value.",
    ),
    (
        "Every enum other than the single-value resource `type` enums becomes a plain value "
        "with `x-known-values` (for example `inventory_policy`).",
        "Same reason as `status`. The `type` enums stay strict: the generated union parsing "
        "relies on them to tell resources apart.",
    ),
    (
        "A job relationship published without its `data` linkage (delete jobs from 2023-12-15 "
        "to 2025-01-15) gets a to-many linkage of the job's own resource type "
        "(`catalog-<noun>`).",
        "Every other revision publishes that linkage, and live list pages carry each job's "
        "resource ids in it: without it the generated models would drop them.",
    ),
    (
        "Job error items (`JobError`) require only `detail`; `id`, `code`, `title` and "
        "`source` are optional, and a free-form `meta` object is allowed.",
        "Live jobs report errors such as {detail, meta: {external_id}, source: {pointer}}, "
        "which the published schema rejects.",
    ),
    (
        "Every link (`self`, `first`, `last`, `prev`, `next`, `related`) is optional and "
        "nullable, and `links` objects are optional. Only the links the revision publishes are "
        "listed (relationship links from 2023-12-15; no `first`/`last` from 2026-04-15).",
        "Live list responses carry `links.next: null` on the last page.",
    ),
    (
        "Optional attributes of jobs and catalog resources are nullable.",
        "Nullability differs between the published spec and live responses, and between "
        "revisions; a null must not lose the whole response.",
    ),
    (
        "The job id is read from `data.id` or `attributes.job_id`; both are optional.",
        "Revision 2023-12-15 moved the id from `attributes.job_id` to `data.id`. Keeping both "
        "lets a client generated at one revision read responses of the other (a client-wide "
        "`revision` may differ from the generated one); the facade requires one of the two.",
    ),
    (
        "Date-times are strings matching an ISO 8601 `pattern` whose UTC offset is optional, "
        "with `x-format: date-time`, instead of `format: date-time`.",
        "Klaviyo's own examples (e.g. 2022-11-08T00:00:00) have no offset, which `format: "
        "date-time` (RFC 3339) rejects. Clients read a naive value as UTC.",
    ),
    (
        "No job attribute is required.",
        "A sparse fieldset (`fields[<job type>]=...`) omits every attribute not asked for, "
        "status and created_at included.",
    ),
    (
        "`fields[...]` and `include` are single string parameters holding a comma-separated "
        "list; the allowed values are kept in `x-csv-enum`.",
        "The API expects `fields[catalog-item]=title,price`. openapi-python-client ignores "
        "`explode: false` and would send repeated keys. A spec-level fix keeps the generator "
        "stock (no custom templates to maintain across generator upgrades); the facade joins "
        "and validates the lists.",
    ),
    (
        "The `revision` header is required and has no default.",
        "A spec default becomes a Python default argument in the generated functions, which "
        "would silently override the revision a client was configured with.",
    ),
    (
        "operationIds and component names are this project's own and stable across revisions; "
        "the published operationId and aliases are kept in `x-klaviyo-operation-id` and "
        "`x-klaviyo-operation-aliases`.",
        "Klaviyo renamed both (e.g. get_update_items_job became "
        "get_bulk_update_catalog_items_job; schemas became *CompoundDocument), and the facade "
        "must import the same generated names whichever revision was generated.",
    ),
    (
        "Error responses (4XX, 5XX) share one `ErrorDocument` whose error objects require "
        "no field.",
        "An error body is diagnostic: the client must surface whatever part of it is present.",
    ),
    (
        "Top-level members other than `data`, `included` and `links` (such as `meta`) are not "
        "modelled.",
        "They are advisory; the generated models keep them in `additional_properties`.",
    ),
    (
        "Rate limits never exceed those of the newest revision curated so far "
        "(openapi/rate-limit-floor.yaml): a revision older than the floor's gets, per window, "
        "the lower of its published and the floor's limit in `x-klaviyo-ratelimit`, and keeps "
        "its published one in `x-klaviyo-ratelimit-published`.",
        "Klaviyo enforces its current limits server-side whatever revision a request names, "
        "and it lowers limits over time (2026-07-15 cut the item and variant jobs' to 75/s and "
        "750/m): an older revision's higher published limits would run into 429s.",
    ),
    (
        "Descriptions, summaries and examples are the project's own.",
        "The published prose is Klaviyo's; only facts are taken from it.",
    ),
)


def _error_source() -> JSON:
    """A JSON:API error's `source`: the JSON pointer or the query parameter it concerns."""
    return {
        "type": "object",
        "properties": {"pointer": {"type": "string"}, "parameter": {"type": "string"}},
    }


def _error_members(source: str, *, status: bool) -> JSON:
    """The members of a JSON:API error object, `source` naming its source's schema. A job's
    errors and an error response's are the same object, but only the latter has the HTTP
    `status`. Fresh dicts each call: a shared one would be dumped as a YAML alias."""
    members: JSON = {"id": {"type": "string"}}
    if status:
        members["status"] = {"type": "integer"}
    members.update({name: {"type": "string"} for name in ("code", "title", "detail")})
    members["source"] = {"$ref": f"#/components/schemas/{source}"}
    members["meta"] = {"type": "object", "additionalProperties": True}
    return members


# Schemas that are ours outright: the published ones are wrong or unstable in these places.
LINK = {"type": "string", "nullable": True}
COLLECTION_LINKS = ("self", "first", "last", "prev", "next")
FIXED_COMPONENTS: dict[str, JSON] = {
    "ResourceLinks": {"type": "object", "properties": {"self": LINK}},
    "RelationshipLinks": {"type": "object", "properties": {"self": LINK, "related": LINK}},
    "JobErrorSource": _error_source(),
    "JobError": {
        "type": "object",
        "description": "One failure inside a bulk job. Only `detail` is always present.",
        "required": ["detail"],
        "properties": _error_members("JobErrorSource", status=False),
    },
    "ApiErrorSource": _error_source(),
    "ApiError": {"type": "object", "properties": _error_members("ApiErrorSource", status=True)},
    "ErrorDocument": {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ApiError"}}
        },
    },
}

# Keys of a published schema worth keeping; prose (description, example, title) is dropped.
SCHEMA_KEYS = ("type", "format", "nullable", "items", "properties", "additionalProperties")


# ISO 8601 date-time whose UTC offset is optional (see x-curation).
DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"


def ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def pascal(json_api_type: str) -> str:
    """'catalog-item' -> 'CatalogItem'."""
    return "".join(part.capitalize() for part in json_api_type.split("-"))


# --- reading the published spec ---------------------------------------------------------------


def load_source(source: str) -> JSON:
    if source.startswith(("http://", "https://")):
        import httpx  # only needed for URLs

        try:
            response = httpx.get(source, timeout=60.0, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise CurationError(f"cannot fetch {source}: {exc}") from None
        text = response.text
    else:
        text = Path(source).read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)  # Klaviyo publishes JSON: 20x faster than the YAML parser
    except json.JSONDecodeError:
        loaded = yaml.safe_load(text)  # YAML is a superset of JSON
    if not isinstance(loaded, dict) or "paths" not in loaded:
        raise CurationError(f"{source} is not an OpenAPI document (no 'paths')")
    return loaded


class Resolver:
    """Inlines $refs and merges allOf, so later steps see one plain schema."""

    def __init__(self, spec: JSON) -> None:
        self.spec = spec

    def lookup(self, pointer: str) -> Any:
        if not pointer.startswith("#/"):
            raise CurationError(f"only local $refs are supported, not {pointer!r}")
        node: Any = self.spec
        for part in pointer[2:].split("/"):
            try:
                node = node[part.replace("~1", "/").replace("~0", "~")]
            except (KeyError, TypeError):
                raise CurationError(f"dangling $ref {pointer!r}") from None
        return node

    def resolve(self, node: Any, depth: int = 0) -> Any:
        if depth > 64:
            raise CurationError("schema nesting too deep (a $ref cycle?)")
        if isinstance(node, list):
            return [self.resolve(item, depth + 1) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return self.resolve(self.lookup(node["$ref"]), depth + 1)
        out: JSON = {k: self.resolve(v, depth + 1) for k, v in node.items() if k != "allOf"}
        for part in node.get("allOf", []):
            merged = self.resolve(part, depth + 1)
            out.setdefault("properties", {}).update(merged.get("properties", {}))
            out["required"] = sorted(set(out.get("required", [])) | set(merged.get("required", [])))
            for key, value in merged.items():
                if key not in ("properties", "required"):
                    out.setdefault(key, value)
        return out


def find_operations(spec: JSON) -> dict[str, tuple[CuratedOperation, str, JSON]]:
    """Each of our operation ids -> (the operation, its path, the published GET), in our order."""
    found: dict[str, tuple[CuratedOperation, str, JSON]] = {}
    for path, item in spec["paths"].items():
        op = item.get("get") if isinstance(item, dict) else None
        curated = curated_operation(path)
        if curated is None or not isinstance(op, dict):
            continue
        if curated.operation_id in found:
            raise CurationError(f"{curated.operation_id} matches two paths")
        found[curated.operation_id] = (curated, path, op)
    if not found:
        raise CurationError("the spec has no catalog bulk-job GET (/api/catalog-*-bulk-*-jobs)")
    return dict(sorted(found.items()))


# --- curation -----------------------------------------------------------------------------------


class Components:
    """Named schemas of the output. A name defined twice must get the same schema."""

    def __init__(self) -> None:
        self.schemas: dict[str, JSON] = {}

    def define(self, name: str, schema: JSON) -> JSON:
        existing = self.schemas.get(name)
        if existing is not None and existing != schema:
            raise CurationError(
                f"{name} would get two different schemas; the curation rules need review"
            )
        self.schemas[name] = schema
        return ref(name)


def plain(schema: JSON) -> JSON:
    """A published value schema without prose, with enums relaxed to x-known-values."""
    out: JSON = {k: copy.deepcopy(schema[k]) for k in SCHEMA_KEYS if k in schema}
    if out.get("format") == "date-time":
        del out["format"]
        out["pattern"] = DATETIME_PATTERN
        out["x-format"] = "date-time"
    if "enum" in schema:
        out["x-known-values"] = list(schema["enum"])
    if "items" in schema:
        out["items"] = plain(schema["items"])
    if "properties" in schema:
        out["properties"] = {k: plain(v) for k, v in schema["properties"].items()}
        if schema.get("required"):
            out["required"] = list(schema["required"])
    return out


def strict_type(schema: JSON, where: str) -> JSON:
    values = schema.get("enum")
    if not values or len(values) != 1:
        raise CurationError(f"{where}: expected a single-value `type` enum, got {values!r}")
    return {"type": "string", "enum": list(values)}


def attributes(schema: JSON, overrides: Mapping[str, JSON] = {}, *, sparse: bool = False) -> JSON:
    """Curate an attributes object: optional members become nullable.

    With `sparse`, nothing is required (a sparse fieldset may leave any member out); members
    the published spec required stay non-nullable.
    """
    published_required = list(schema.get("required", []))
    required = [] if sparse else published_required
    props: JSON = {}
    for name, prop in schema.get("properties", {}).items():
        curated = copy.deepcopy(overrides[name]) if name in overrides else plain(prop)
        if name not in published_required:
            curated["nullable"] = True
        props[name] = curated
    out: JSON = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def related_resource(schema: JSON, components: Components) -> str:
    """Curate an included catalog resource (item, variant, category); return its name."""
    props = schema.get("properties", {})
    json_type = strict_type(props.get("type", {}), "included resource")["enum"][0]
    name = pascal(json_type)
    body: JSON = {
        "type": "object",
        "required": ["type", "id"],
        "properties": {
            "type": {"type": "string", "enum": [json_type]},
            "id": {"type": "string"},
            "attributes": components.define(
                f"{name}Attributes", attributes(props.get("attributes", {}))
            ),
            "links": ref("ResourceLinks"),
        },
    }
    components.define(name, body)
    return name


def relationships(schema: JSON, job_model: str, noun: str, components: Components) -> JSON:
    out: JSON = {}
    for rel_name, rel in schema.get("properties", {}).items():
        # Published without its linkage (delete jobs, 2023-12-15 to 2025-01-15): the ids of the
        # job's own kind of resource, as every other revision publishes (see x-curation).
        linkage = rel.get("properties", {}).get("data") or {
            "type": "array",
            "items": {"properties": {"type": {"enum": [f"catalog-{noun}"]}}},
        }
        item = linkage.get("items", linkage)  # to-many or to-one
        json_type = strict_type(item.get("properties", {}).get("type", {}), rel_name)["enum"][0]
        target = pascal(json_type)
        linkage_ref = components.define(
            f"{target}Linkage",
            {
                "type": "object",
                "required": ["type", "id"],
                "properties": {
                    "type": {"type": "string", "enum": [json_type]},
                    "id": {"type": "string"},
                },
            },
        )
        data = {"type": "array", "items": linkage_ref} if "items" in linkage else linkage_ref
        rel_props: JSON = {"data": data}
        if "links" in rel.get("properties", {}):  # published from 2023-12-15
            rel_props["links"] = ref("RelationshipLinks")
        out[rel_name] = components.define(
            f"{target}Relationship", {"type": "object", "properties": rel_props}
        )
    return components.define(f"{job_model}Relationships", {"type": "object", "properties": out})


def job_resource(schema: JSON, job_model: str, noun: str, components: Components) -> JSON:
    props = schema.get("properties", {})
    json_type = strict_type(props.get("type", {}), job_model)["enum"][0]
    attrs = props.get("attributes", {})
    status = plain(attrs.get("properties", {}).get("status", {"type": "string"}))
    errors = {"type": "array", "items": ref("JobError")}
    # The id moved from attributes.job_id to data.id in 2023-12-15. Both stay optional, so that
    # a client generated at one revision still reads the other shape; the facade needs one.
    body_props: JSON = {"type": {"type": "string", "enum": [json_type]}, "id": {"type": "string"}}
    job_attributes = attributes(attrs, {"status": status, "errors": errors}, sparse=True)
    job_attributes["properties"].setdefault("job_id", {"type": "string"})
    body_props["attributes"] = components.define("JobAttributes", job_attributes)
    if "relationships" in props:
        body_props["relationships"] = relationships(
            props["relationships"], job_model, noun, components
        )
    body_props["links"] = ref("ResourceLinks")
    return components.define(
        job_model,
        {
            "type": "object",
            "description": f"A `{json_type}` resource.",
            "required": ["type", "attributes"],
            "properties": body_props,
        },
    )


def document(schema: JSON, op: CuratedOperation, components: Components) -> JSON:
    props = schema.get("properties", {})
    data = props.get("data", {})
    if op.is_list:
        if data.get("type") != "array":
            raise CurationError(f"{op.operation_id}: `data` is not a list")
        data_schema: JSON = {
            "type": "array",
            "items": job_resource(data["items"], op.job_model, op.noun, components),
        }
        links = ref("CollectionLinks")
        # The links this revision publishes (first and last went in 2026-04-15), all optional.
        published = props.get("links", {}).get("properties", {})
        names = [k for k in COLLECTION_LINKS if k in published] or list(COLLECTION_LINKS)
        components.define(
            "CollectionLinks",
            {"type": "object", "properties": {k: LINK for k in names}},
        )
    else:
        data_schema = job_resource(data, op.job_model, op.noun, components)
        links = ref("ResourceLinks")
    body: JSON = {"type": "object", "required": ["data"], "properties": {"data": data_schema}}
    if "included" in props:
        included = related_resource(props["included"].get("items", {}), components)
        body["properties"]["included"] = {"type": "array", "items": ref(included)}
    if "links" in props or op.is_list:
        body["properties"]["links"] = links
    return components.define(op.document_model, body)


def csv_parameter(param: JSON) -> JSON:
    """A published array parameter, as one comma-separated string (see x-curation)."""
    schema = param.get("schema", {})
    values = schema.get("items", {}).get("enum", [])
    name = param["name"]
    what = "fields to return" if name.startswith("fields[") else "relationships to include"
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"Comma-separated {what}.",
        "schema": {"type": "string"},
        "x-csv-enum": list(values),
    }


def parameters(op: JSON, is_list: bool) -> list[JSON]:
    out: list[JSON] = []
    for param in op.get("parameters", []):
        name, where = param["name"], param["in"]
        if where == "path":
            out.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "description": "The job's id.",
                    "schema": {"type": "string"},
                }
            )
        elif where == "header" and name.lower() == "revision":
            continue  # added last, curated
        elif name.startswith("fields[") or name == "include":
            out.append(csv_parameter(param))
        elif name == "filter":
            out.append(
                {
                    "name": "filter",
                    "in": "query",
                    "required": False,
                    "description": 'Only `equals(status,"<status>")` is accepted.',
                    "schema": {"type": "string"},
                }
            )
        elif name == "page[cursor]":
            out.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "description": "Opaque cursor taken from the previous page's `links.next`.",
                    "schema": {"type": "string"},
                }
            )
        else:
            raise CurationError(f"unexpected parameter {name!r} ({where})")
    if is_list and not any(p["name"] == "page[cursor]" for p in out):
        raise CurationError("a list operation without page[cursor]")
    out.append(
        {
            "name": "revision",
            "in": "header",
            "required": True,
            "description": "API revision, YYYY-MM-DD[.suffix].",
            "schema": {"type": "string"},
        }
    )
    return out


def content_type(op: JSON) -> str:
    types = list(op.get("responses", {}).get("200", {}).get("content", {}))
    json_types = [t for t in types if t == "application/json" or t.endswith("+json")]
    if not json_types:
        raise CurationError(f"{op.get('operationId')}: no JSON response, only {types!r}")
    return str(json_types[0])


# --- the rate-limit floor (see the module docstring and x-curation) --------------------------


def revision_date(revision: str) -> str:
    """'2026-07-15.pre' -> '2026-07-15': revisions compare by their date."""
    return revision[:10]


def _rate(text: str, where: str) -> tuple[int, float]:
    """'75/s' -> (75, 1.0): the count and the window in seconds."""
    try:
        return parse_rate(str(text))
    except GenerationError as exc:
        raise CurationError(f"{where}: {exc}") from exc


def lower_limits(published: Mapping[str, str], floor: Mapping[str, str], where: str) -> JSON:
    """Per window (burst, steady), the lower of two limits in Klaviyo's notation."""
    out: JSON = dict(published)
    for window in WINDOWS:
        if window not in floor:
            continue
        if window not in published:
            out[window] = floor[window]
            continue
        mine, theirs = _rate(published[window], where), _rate(floor[window], where)
        if mine[1] != theirs[1]:
            raise CurationError(f"{where}: {window} limits in different units: {mine}, {theirs}")
        out[window] = published[window] if mine[0] <= theirs[0] else floor[window]
    return out


def load_floor(path: Path) -> JSON | None:
    """The floor table, or None when the file does not exist yet."""
    if not path.exists():
        return None
    floor = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(floor, dict) or not isinstance(floor.get("operations"), dict):
        raise CurationError(f"{path}: expected `revision` and `operations`")
    return floor


def floor_table(curated: JSON) -> JSON:
    """The floor a curated spec sets: its revision and each operation's published limits."""
    operations: JSON = {}
    for item in curated["paths"].values():
        op = item["get"]
        limits = op.get("x-klaviyo-ratelimit-published", op["x-klaviyo-ratelimit"])
        operations[op["operationId"]] = dict(limits)
    return {"revision": curated["info"]["version"], "operations": dict(sorted(operations.items()))}


def dump_floor(floor: JSON) -> str:
    header = (
        "# Per operation, the rate limits Klaviyo publishes at the newest revision curated so\n"
        "# far. scripts/curate.py applies them to older revisions, window by window, where they\n"
        "# are lower. Written by `make curate` (curate.py --update-floor); do not edit by hand.\n"
    )
    return header + str(yaml.safe_dump(floor, sort_keys=False))


def apply_floor(curated: JSON, floor: JSON | None) -> JSON:
    """Lower an older revision's limits to the floor's, in place; returns curated."""
    if floor is None:
        return curated
    if revision_date(str(curated["info"]["version"])) >= revision_date(str(floor["revision"])):
        return curated  # as new as the floor or newer: its own limits are the current ones
    for item in curated["paths"].values():
        op = item["get"]
        lower = floor["operations"].get(op["operationId"])
        if not lower:
            continue
        published = op["x-klaviyo-ratelimit"]
        applied = lower_limits(published, lower, op["operationId"])
        if applied != published:
            op["x-klaviyo-ratelimit-published"] = published
            op["x-klaviyo-ratelimit"] = applied
            op["x-klaviyo-ratelimit-floor"] = str(floor["revision"])
    return curated


def update_floor(curated: JSON, path: Path) -> bool:
    """Record a curated revision as the floor if it is as new as the floor or newer."""
    floor = load_floor(path)
    revision = revision_date(str(curated["info"]["version"]))
    if floor is not None and revision < revision_date(str(floor["revision"])):
        return False
    path.write_text(dump_floor(floor_table(curated)), encoding="utf-8")
    return True


def curate(spec: JSON, source_name: str = "", floor: JSON | None = None) -> JSON:
    """Return the curated spec (a plain dict) for one published revision.

    With a `floor` (see load_floor), an older revision's limits are lowered to it.
    """
    revision = str(spec.get("info", {}).get("version", ""))
    if not revision:
        raise CurationError("the spec has no info.version (the revision)")
    resolver = Resolver(spec)
    components = Components()
    for name, schema in FIXED_COMPONENTS.items():
        components.define(name, copy.deepcopy(schema))
    paths: JSON = {}
    media = ""
    for curated, path, op in find_operations(spec).values():
        media = content_type(op)
        published = resolver.resolve(op["responses"]["200"]["content"][media]["schema"])
        doc_ref = document(published, curated, components)
        error_body = {media: {"schema": ref("ErrorDocument")}}
        aliases = sorted(set(op.get("x-klaviyo-operation-aliases", [])))
        operation: JSON = {
            "operationId": curated.operation_id,
            "summary": curated.summary,
            "tags": [TAG],
            "x-klaviyo-operation-id": op.get("operationId"),
            "x-klaviyo-operation-aliases": aliases,
            "x-klaviyo-ratelimit": dict(op.get("x-klaviyo-ratelimit") or {}),
            "parameters": parameters(op, curated.is_list),
            "responses": {
                "200": {"description": "Success.", "content": {media: {"schema": doc_ref}}},
                "4XX": {"description": "Client error.", "content": error_body},
                "5XX": {"description": "Server error.", "content": copy.deepcopy(error_body)},
            },
        }
        if not operation["x-klaviyo-ratelimit"]:
            raise CurationError(f"{curated.operation_id}: no x-klaviyo-ratelimit")
        paths[path] = {"get": operation}
    return apply_floor(_document(revision, source_name, paths, components), floor)


def _document(revision: str, source_name: str, paths: JSON, components: Components) -> JSON:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Klaviyo catalog bulk jobs (curated)",
            "version": revision,
            "description": (
                "The catalog bulk-job GET operations of Klaviyo's API at one revision, "
                "curated by scripts/curate.py. Do not edit by hand: re-run the curation."
            ),
            "x-curated-from": source_name or "klaviyo published spec",
            "x-curation": [{"rule": rule, "reason": reason} for rule, reason in CURATION_NOTES],
        },
        "servers": [{"url": "https://a.klaviyo.com"}],
        "security": [{"Klaviyo-API-Key": []}],
        "tags": [{"name": TAG}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "Klaviyo-API-Key": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Klaviyo-API-Key <private key>`.",
                }
            },
            "schemas": dict(sorted(components.schemas.items())),
        },
    }


def dump(spec: JSON) -> str:
    return str(yaml.safe_dump(spec, sort_keys=False, width=100, allow_unicode=True))


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="path or URL of Klaviyo's published spec (JSON or YAML)")
    parser.add_argument("-o", "--output", help="where to write the curated YAML (default stdout)")
    parser.add_argument(
        "--floor", type=Path, default=FLOOR, help=f"rate-limit floor table (default {FLOOR.name})"
    )
    parser.add_argument("--no-floor", action="store_true", help="keep the published limits")
    parser.add_argument(
        "--update-floor",
        action="store_true",
        help="record this revision's limits as the floor if it is as new as the floor or newer",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    floor_path: Path = args.floor
    try:
        floor = None if args.no_floor else load_floor(floor_path)
        curated = curate(load_source(args.source), Path(args.source).name, floor)
        text = dump(curated)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        if args.update_floor and update_floor(curated, floor_path):
            print(
                f"curate: {floor_path.name} now holds {curated['info']['version']}'s limits",
                file=sys.stderr,
            )
    except (CurationError, OSError, yaml.YAMLError, json.JSONDecodeError) as exc:
        print(f"curate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
