"""Reading a request: which endpoint it names and what its query asks for, or why it is wrong."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from ._documents import JSON, Fields, error_document
from ._http import Reply
from ._model import Endpoint, Shape

_FILTER = re.compile(r"""equals\(\s*status\s*,\s*(?P<q>["'])(?P<status>[^"']*)(?P=q)\s*\)""")


class ApiError(Exception):
    """An error response, raised from anywhere in the request pipeline."""

    def __init__(self, status: int, document: JSON, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(status)
        self.status, self.document, self.headers = status, document, headers

    @classmethod
    def of(
        cls, status: int, code: str, title: str, detail: str, parameter: str | None = None
    ) -> ApiError:
        """An error response in Klaviyo's layout; `parameter` is the query parameter it is about."""
        return cls(status, error_document(status, code, title, detail, parameter=parameter))

    @classmethod
    def bad_parameter(cls, parameter: str, detail: str) -> ApiError:
        """Klaviyo's 400 for a query parameter it refuses."""
        return cls.of(400, "invalid", "Invalid input.", detail, parameter)

    def reply(self, content_type: str) -> Reply:
        """The error as an HTTP reply with the revision's content type."""
        return json_reply(self.status, self.document, content_type, self.headers)


def json_reply(
    status: int, document: Any, content_type: str, headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    """A reply carrying `document` as compact JSON under `content_type`."""
    body = json.dumps(document, separators=(",", ":")).encode()
    return Reply(status, body, (("Content-Type", content_type), *headers))


@dataclass(frozen=True)
class Query:
    """What a request's query asks for, once checked against the endpoint."""

    params: dict[str, str]  # as received; a repeated key keeps its last value
    fields: Fields
    include: bool = False
    status: str | None = None  # the list filter's status
    cursor: str | None = None


def route(path: str, shape: Shape) -> tuple[Endpoint, str | None]:
    """The endpoint and job id a path names at this revision (the other slash form is 404)."""
    rest = path.removeprefix("/api/") if path.startswith("/api/") else None
    if rest is not None and rest.endswith("/") == shape.trailing_slash:
        parts = rest.removesuffix("/").split("/")
        job_id = unquote(parts[1]) if len(parts) == 2 and parts[1] else None
        if len(parts) == 1 or job_id is not None:
            for endpoint in shape.endpoints:
                if endpoint.kind.collection == parts[0] and endpoint.is_list == (job_id is None):
                    return endpoint, job_id
    raise ApiError.of(404, "not_found", "Not found.", f"Nothing is served at {path}.")


def parse_query(query: str, endpoint: Endpoint, shape: Shape) -> Query:
    """Check a query against the endpoint as Klaviyo does (every parameter known, every field and
    include allowed, one status filter) and read it; a 400 naming the parameter otherwise."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    kind = endpoint.kind
    fields: dict[str, frozenset[str]] = {}
    include, status, cursor = False, None, None
    for name, value in params.items():
        if name.startswith("fields[") and name.endswith("]"):
            fields[name[7:-1]] = _fieldset(name, value, endpoint, shape)
        elif name == "include" and not endpoint.is_list:
            include = _include(value, kind.relationship)
        elif name == "filter" and endpoint.is_list:
            match = _FILTER.fullmatch(value.strip())
            if match is None:
                detail = "The only filter here is equals(status,'<status>')."
                raise ApiError.bad_parameter("filter", detail)
            status = match["status"]
        elif name == "page[cursor]" and endpoint.is_list:
            cursor = value
        else:
            raise ApiError.bad_parameter(name, f"{name!r} is not a parameter of this endpoint.")
    return Query(params, fields, include, status, cursor)


def _fieldset(name: str, value: str, endpoint: Endpoint, shape: Shape) -> frozenset[str]:
    """The fields of a `fields[TYPE]` parameter, each one the endpoint serves for TYPE; a 400
    otherwise."""
    json_type = name[7:-1]
    allowed = endpoint.fieldsets.get(json_type)
    if allowed is None:
        known = json_type in shape.resources or json_type.endswith("-job")
        why = "is not returned by this endpoint" if known else "is not a resource type"
        raise ApiError.bad_parameter(name, f"{json_type!r} {why}.")
    requested = [v.strip() for v in value.split(",")]
    bad = [v for v in requested if v not in allowed]
    if bad:
        raise ApiError.bad_parameter(name, f"{json_type!r} has no field(s) {bad}.")
    return frozenset(requested)


def _include(value: str, relationship: str) -> bool:
    """Whether the job's relationship is asked for: `include` may name only it; a 400 otherwise."""
    bad = [v for v in value.split(",") if v.strip() != relationship]
    if bad:
        raise ApiError.bad_parameter(
            "include", f"Only {relationship!r} can be included, not {bad}."
        )
    return True
