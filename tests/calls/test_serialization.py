"""to_dict()/to_json() of every result, the CLI's --json shape, and job.failures."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from klaviyo_catalog import (
    APIErrorDetail,
    BulkJob,
    Category,
    InvalidResponseError,
    Item,
    JobFailure,
    JobStatus,
    MemoryRateLimiter,
    ResourceRef,
    Variant,
)
from klaviyo_catalog._jsonapi import job_collection, job_document
from klaviyo_catalog._resources import ERRORS
from klaviyo_catalog.testing import FakeKlaviyo

from tests.support import documents as docs
from tests.support.hardening_support import Mode, call

UPDATE = "catalog-item-bulk-update-job"


def parsed(
    linkage: list[str] | None = None,
    included: list[dict[str, Any]] | None = None,
    include: tuple[str, ...] = ("items",),
    **attributes: Any,
) -> BulkJob:
    document = docs.single(docs.job("J1", linkage=linkage, **attributes), included)
    return job_document(json.loads(json.dumps(document)), UPDATE, include)


# --- to_dict / to_json -------------------------------------------------------------------------


def test_a_job_to_dict_is_plain_json_with_iso_dates_and_string_statuses() -> None:
    job = parsed(
        linkage=["A", "GONE"],
        included=[docs.item("A", title="Tee \u2014 black", price=24)],
        completed_at="2024-05-02T08:00:00",  # naive, as Klaviyo sometimes sends: read as UTC
        errors=[{"detail": "bad price", "meta": {"external_id": "A"}}],
    )
    document = job.to_dict()
    assert document == {
        "id": "J1",
        "kind": "item-update",
        "type": UPDATE,
        "status": "processing",
        "created_at": "2024-05-01T10:00:00+00:00",
        "completed_at": "2024-05-02T08:00:00+00:00",
        "expires_at": "2024-05-08T10:00:00+00:00",
        "total_count": 10,
        "completed_count": 4,
        "failed_count": 1,
        "progress": 0.5,
        "errors": [
            {
                "detail": "bad price",
                "id": None,
                "code": None,
                "title": None,
                "source_pointer": None,
                "source_parameter": None,
                "meta": {"external_id": "A"},
            }
        ],
        "items": [
            {
                "type": "catalog-item",
                "id": "A",
                "external_id": "A",
                "title": "Tee \u2014 black",
                "price": 24.0,
            },
            {"type": "catalog-item", "id": "GONE"},
        ],
    }
    assert type(document["status"]) is str and job.status is JobStatus.PROCESSING
    assert json.loads(job.to_json()) == document
    assert "\u2014" in job.to_json()  # kept readable, not \\u-escaped
    assert job.to_json(indent=2).startswith('{\n  "id": "J1"')


def test_relationships_appear_only_when_requested() -> None:
    assert "items" not in parsed(include=()).to_dict()
    assert parsed(linkage=[], included=[]).to_dict()["items"] == []


def test_a_status_newer_than_the_client_serializes_as_sent() -> None:
    assert parsed(status="paused_for_review").to_dict()["status"] == "paused_for_review"


def test_views_serialize_flat_with_typed_attributes_and_unknown_ones_as_sent() -> None:
    item = Item(
        {},
        ("catalog-item", "I1"),
        {"title": "Cap", "price": 7, "created": "2024-01-01T00:00:00", "brand_new": {"x": [1]}},
    )
    assert item.to_dict() == {
        "type": "catalog-item",
        "id": "I1",
        "title": "Cap",
        "price": 7.0,
        "created": "2024-01-01T00:00:00+00:00",
        "brand_new": {"x": [1]},
    }
    variant = Variant({}, ("catalog-variant", "V1"), {"sku": "S-1", "inventory_quantity": 3})
    assert json.loads(variant.to_json()) == {
        "type": "catalog-variant",
        "id": "V1",
        "sku": "S-1",
        "inventory_quantity": 3.0,
    }
    category = Category({}, ("catalog-category", "C1"), {"name": "Hats", "updated": None})
    assert category.to_dict() == {
        "type": "catalog-category",
        "id": "C1",
        "name": "Hats",
        "updated": None,
    }
    assert ResourceRef("catalog-item", "X").to_json() == '{"type": "catalog-item", "id": "X"}'


def test_a_view_with_a_mistyped_attribute_refuses_to_serialize_it() -> None:
    # With the errors the facade builds every view with (a view built alone raises ValueError).
    item = Item({}, ("catalog-item", "I1"), {"price": "cheap"}, ERRORS)
    with pytest.raises(InvalidResponseError, match="price"):
        item.to_dict()


def test_a_job_error_serializes_every_field() -> None:
    error = APIErrorDetail(
        "d", id="e1", code="c", title="t", source_pointer="/data", meta={"k": [1]}
    )
    assert json.loads(error.to_json()) == {
        "detail": "d",
        "id": "e1",
        "code": "c",
        "title": "t",
        "source_pointer": "/data",
        "source_parameter": None,
        "meta": {"k": [1]},
    }


def test_a_page_serializes_its_jobs_and_cursor() -> None:
    document = docs.collection(
        [
            docs.job("J1", "catalog-item-bulk-create-job"),
            docs.job("J2", "catalog-item-bulk-create-job"),
        ],
        "https://a.klaviyo.com/api/x?page%5Bcursor%5D=NEXT",
    )
    page = job_collection(document, "catalog-item-bulk-create-job")
    as_dict = page.to_dict()
    assert as_dict["next_cursor"] == "NEXT"
    assert [job["id"] for job in as_dict["data"]] == ["J1", "J2"]
    assert as_dict["data"][0] == page.data[0].to_dict()
    assert json.loads(page.to_json()) == as_dict


def test_attrs_asdict_is_no_longer_needed_a_hand_built_job_serializes() -> None:
    job = BulkJob(
        id="J",
        kind=UPDATE,
        status=JobStatus.COMPLETE,
        created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        completed_at=None,
        expires_at=None,
        total_count=0,
        completed_count=0,
        failed_count=0,
        errors=[],
    )
    assert json.loads(json.dumps(job.to_dict()))["status"] == "complete"


# --- through both clients, against the fake ----------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo() as running:
        yield running
    assert running.internal_errors == []


def fetch(mode: Mode, fake: FakeKlaviyo, job_id: str, **kwargs: Any) -> BulkJob:
    client_options = {
        "api_key": fake.api_key,
        "base_url": fake.base_url,
        "rate_limiter": MemoryRateLimiter(),
    }
    job: BulkJob = call(mode, client_options, "get_variant_update_job", job_id, **kwargs)
    return job


def test_failures_pair_each_error_with_its_variant(mode: Mode, fake: FakeKlaviyo) -> None:
    job_id = fake.add_job("variant-update", status="complete", items=4, failed=2)
    job = fetch(mode, fake, job_id, include=["variants"])
    assert job.variants is not None and len(job.failures) == 2
    for failure, variant in zip(job.failures, job.variants[:2], strict=True):
        assert isinstance(failure, JobFailure)
        assert failure.resource is variant
        assert failure.error.meta == {"id": variant.id}  # an update job's, as live ones
    assert json.loads(job.failures[0].to_json())["resource"]["id"] == job.variants[0].id
    # Without include=, each is paired with the reference the job names for its variant.
    plain = fetch(mode, fake, job_id)
    assert [f.resource for f in plain.failures] == [
        ResourceRef("catalog-variant", v.id) for v in job.variants[:2]
    ]
    assert [f.error for f in plain.failures] == list(plain.errors)


def test_failures_pair_when_the_external_id_attribute_was_not_requested(
    mode: Mode, fake: FakeKlaviyo
) -> None:
    job_id = fake.add_job("variant-update", status="complete", items=3, failed=1)
    job = fetch(mode, fake, job_id, include=["variants"], fields={"catalog-variant": ["sku"]})
    assert job.variants is not None
    assert job.failures[0].resource is job.variants[0]


def test_failures_pair_by_external_id_over_the_pointer_and_keep_the_unpaired() -> None:
    included = [docs.item("A"), docs.item("B")]
    errors = [
        {"detail": "by id", "meta": {"external_id": "B"}, "source": {"pointer": "/data"}},
        {"detail": "by pointer", "source": {"pointer": "/data/attributes/items/data/0/price"}},
        {"detail": "past the end", "source": {"pointer": "/data/attributes/items/data/9"}},
        {"detail": "unknown id", "meta": {"external_id": "NOPE"}},
        {"detail": "not included", "meta": {"external_id": "GONE"}},
        {"detail": "nothing at all"},
    ]
    custom_gone = "$custom:::$default:::GONE"
    job = parsed(linkage=["A", "B", custom_gone], included=included, errors=errors)
    assert job.items is not None
    pairs = [(f.error.detail, f.resource) for f in job.failures]
    assert pairs == [
        ("by id", job.items[1]),
        ("by pointer", job.items[0]),
        ("past the end", None),
        ("unknown id", None),
        ("not included", ResourceRef("catalog-item", custom_gone)),
        ("nothing at all", None),
    ]
