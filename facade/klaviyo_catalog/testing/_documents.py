"""JSON:API documents as Klaviyo lays them out at a given revision."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote

from ._jobs import Job, Related
from ._model import Shape

JSON = dict[str, Any]
Fields = Mapping[str, Collection[str]]  # sparse fieldsets: JSON:API type -> attribute names


def _restrict(attributes: Mapping[str, Any], allowed: Collection[str] | None) -> JSON:
    """`attributes` cut to a sparse fieldset (None: all of them), in their served order."""
    if allowed is None:
        return dict(attributes)
    return {k: v for k, v in attributes.items() if k in allowed}


def resource_url(base_url: str, shape: Shape, collection: str, resource_id: str, *rest: str) -> str:
    """The absolute URL of a resource, or of one of its sub-paths (`relationships/...`), in the
    revision's slash style."""
    return base_url + shape.path(collection, quote(resource_id, safe=""), *rest)


def job_resource(job: Job, shape: Shape, base_url: str, fields: Fields) -> JSON:
    """One job's resource object as the revision lays it out: job_id attribute or id, the
    requested fields, the relationship's linkage and links."""
    kind = job.kind
    # What the spec's revision serves, in its order.
    attributes = {k: job.attributes[k] for k in shape.job_attributes if k in job.attributes}
    if shape.job_id_attribute:
        attributes = {shape.job_id_attribute: job.id, **attributes}
    resource: JSON = {"type": kind.type}
    if not shape.job_id_attribute:
        resource["id"] = job.id
    resource["attributes"] = _restrict(attributes, fields.get(kind.type))
    relationship: JSON = {
        "data": [{"type": kind.related_type, "id": r.id} for r in job.related_resources()]
    }
    if shape.relationship_links:
        rel = kind.relationship
        relationship["links"] = {
            "self": resource_url(base_url, shape, kind.collection, job.id, "relationships", rel),
            "related": resource_url(base_url, shape, kind.collection, job.id, rel),
        }
    resource["relationships"] = {kind.relationship: relationship}
    resource["links"] = {"self": resource_url(base_url, shape, kind.collection, job.id)}
    return resource


def related_resource(
    related: Related, json_type: str, collection: str, shape: Shape, base_url: str, fields: Fields
) -> JSON:
    """One included catalog item, variant or category, with the requested fields and its self
    link."""
    return {
        "type": json_type,
        "id": related.id,
        "attributes": _restrict(related.attributes, fields.get(json_type)),
        "links": {"self": resource_url(base_url, shape, collection, related.id)},
    }


def job_document(job: Job, shape: Shape, base_url: str, fields: Fields, include: bool) -> JSON:
    """The document of a single-job GET: the job and, with `include`, its related resources (each
    once, in linkage order)."""
    document: JSON = {"data": job_resource(job, shape, base_url, fields)}
    if include:
        kind = job.kind
        unique: dict[str, Related] = {}
        for related in job.related_resources():
            unique.setdefault(related.id, related)  # a resource linked twice is included once
        document["included"] = [
            related_resource(r, kind.related_type, kind.related_collection, shape, base_url, fields)
            for r in unique.values()
        ]
    if shape.document_self_link:
        document["links"] = {"self": document["data"]["links"]["self"]}
    return document


def list_document(
    jobs: list[Job], shape: Shape, base_url: str, fields: Fields, links: Mapping[str, str | None]
) -> JSON:
    """A page of a job list: its jobs and the pagination links the revision serves."""
    wanted = (
        ("self", "first", "last", "prev", "next")
        if shape.first_last_links
        else ("self", "prev", "next")
    )
    return {
        "data": [job_resource(job, shape, base_url, fields) for job in jobs],
        "links": {name: links.get(name) for name in wanted},
    }


def error_document(
    status: int, code: str, title: str, detail: str, *, parameter: str | None = None
) -> JSON:
    """Klaviyo's error layout: one error with a fresh id; source names the parameter if any."""
    source = {"parameter": parameter} if parameter is not None else {"pointer": "/data"}
    return {
        "errors": [
            {
                "id": str(uuid.uuid4()),
                "status": status,
                "code": code,
                "title": title,
                "detail": detail,
                "source": source,
            }
        ]
    }


def throttled_document(retry_after: int | None) -> JSON:
    """Klaviyo's 429 body, whose detail says when capacity returns."""
    when = f"in {retry_after} second(s)" if retry_after is not None else "later"
    detail = f"Too many requests for this account; capacity returns {when}."
    return error_document(429, "throttled", "Rate limit exceeded.", detail)
