"""Builders of JSON:API documents shaped like Klaviyo's, for tests that need exact control."""

from __future__ import annotations

import json
from typing import Any

from klaviyo_catalog_api.catalog_spec import KINDS

OLD = "2023-01-24"  # attributes.job_id, trailing slashes, application/json
NEW = "2024-10-15"  # data.id, application/vnd.api+json

# Each job type -> (its relationship, the JSON:API type of the resources it names), from the
# generated tables: every kind of the spec, with the relationship the spec gives it.
RELATED: dict[str, tuple[str, str]] = {
    kind.job_type: relationship
    for kind in KINDS.values()
    for relationship in kind.relationships.items()
}


def job(
    job_id: str = "JOB1",
    kind: str = "catalog-item-bulk-update-job",
    *,
    shape: str = OLD,
    linkage: list[str] | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "status": "processing",
        "created_at": "2024-05-01T10:00:00+00:00",
        "total_count": 10,
        "completed_count": 4,
        "failed_count": 1,
        "completed_at": None,
        "expires_at": "2024-05-08T10:00:00+00:00",
        "errors": [],
    }
    attrs.update(attributes)
    resource: dict[str, Any] = {"type": kind, "attributes": attrs, "links": {"self": "https://x/"}}
    if shape == OLD:
        attrs["job_id"] = job_id
    else:
        resource["id"] = job_id
    if linkage is not None:
        rel, related_type = RELATED[kind]
        resource["relationships"] = {
            rel: {"data": [{"type": related_type, "id": i} for i in linkage]}
        }
    return resource


def item(item_id: str, title: str = "Shirt", price: float = 42.0) -> dict[str, Any]:
    return {
        "type": "catalog-item",
        "id": item_id,
        "attributes": {"external_id": item_id, "title": title, "price": price},
        "links": {"self": f"https://x/{item_id}"},
    }


def single(
    resource: dict[str, Any], included: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {"data": resource}
    if included is not None:
        doc["included"] = included
    return doc


def job_body(job_id: str = "JOB1", **attributes: Any) -> bytes:
    """The JSON bytes of a single-job document for `job_id`, as a server sends them."""
    return json.dumps(single(job(job_id, **attributes))).encode()


def collection(resources: list[dict[str, Any]], next_url: str | None) -> dict[str, Any]:
    return {"data": resources, "links": {"self": "https://x/", "next": next_url}}


def error(status: int, detail: str, **source: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "id": "6c0b1c3e-0000-4000-8000-000000000000",
                "status": status,
                "code": "invalid",
                "title": "Invalid input.",
                "detail": detail,
                "source": source or {"pointer": "/data"},
            }
        ]
    }
