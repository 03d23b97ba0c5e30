"""Schema facts are read from the curated spec (through the generated tables), not kept by hand.

The test documents' relationships, where a job's id is read from, and the fake's job kinds
follow the generated package; a spec without the facts gives a package without them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from klaviyo_catalog import BulkJob, ResourceRef
from klaviyo_catalog._jsonapi import job_document
from klaviyo_catalog._readers import Invalid
from klaviyo_catalog.testing._model import Shape, default_shape
from klaviyo_catalog_api import catalog_spec
from klaviyo_catalog_api.catalog_spec import JOB_ID_ATTRIBUTE, KINDS, REVISION

from scripts.curate import curate
from scripts.generate import Schema, model_classes
from tests.support import documents as docs
from tests.support.paths import FIXTURES

GENERATED = Path(catalog_spec.__file__).parent
SPEC: dict[str, Any] = json.loads((GENERATED / "openapi.json").read_text(encoding="utf-8"))
OLD_EXTRACT = FIXTURES / "klaviyo-openapi" / "stable_2023-01-24.json"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_test_documents_link_every_kind_of_the_spec_to_its_resources(kind: str) -> None:
    job_type = KINDS[kind].job_type
    (relationship, related_type), *_ = KINDS[kind].relationships.items()
    resource = docs.job("J1", job_type, shape=docs.NEW, linkage=["A", "B"])
    job = job_document(docs.single(resource), job_type, ())
    assert isinstance(job, BulkJob) and job.kind == kind
    assert getattr(job, relationship) == [
        ResourceRef(related_type, "A"),
        ResourceRef(related_type, "B"),
    ]


def schema_of(spec: dict[str, Any]) -> Schema:
    return Schema(spec, model_classes(GENERATED))


def test_the_job_id_attribute_is_generated_from_the_spec() -> None:
    assert JOB_ID_ATTRIBUTE == "job_id"  # the curated JobAttributes keeps it
    assert "\nJOB_ID_ATTRIBUTE = 'job_id'\n" in schema_of(SPEC).catalog_spec_module()
    without = copy.deepcopy(SPEC)
    del without["components"]["schemas"]["JobAttributes"]["properties"]["job_id"]
    assert "\nJOB_ID_ATTRIBUTE = None\n" in schema_of(without).catalog_spec_module()


def test_a_job_id_is_read_from_the_attribute_the_spec_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = docs.single(docs.job("OLD1", shape=docs.OLD))  # the id in attributes.job_id only
    job_type = "catalog-item-bulk-update-job"
    assert job_document(old, job_type, ()).id == "OLD1"
    new = docs.single(docs.job("NEW1", shape=docs.NEW))
    monkeypatch.setattr("klaviyo_catalog._jsonapi.JOB_ID_ATTRIBUTE", None)  # a spec without it
    assert job_document(new, job_type, ()).id == "NEW1"
    with pytest.raises(Invalid, match=r"^data has neither `id`$"):
        job_document(old, job_type, ())


def test_the_fakes_kinds_are_the_generated_ones_at_every_revision() -> None:
    old = curate(json.loads(OLD_EXTRACT.read_text(encoding="utf-8")), OLD_EXTRACT.name)
    for shape in (default_shape(), Shape.from_spec(old)):
        assert {k.name: (k.type, {k.relationship: k.related_type}) for k in shape.kinds} == {
            name: (kind.job_type, kind.relationships) for name, kind in KINDS.items()
        }
    assert Shape.from_spec(old).job_id_attribute == JOB_ID_ATTRIBUTE  # 2023-01-24 serves it
    # 2023-12-15 moved the id from attributes.job_id to data.id: at the generated revision, the
    # fake serves whichever it has.
    moved = REVISION >= "2023-12-15"
    assert default_shape().job_id_attribute == (None if moved else JOB_ID_ATTRIBUTE)


def test_the_fake_refuses_a_spec_with_a_job_type_the_generated_package_lacks() -> None:
    spec = copy.deepcopy(SPEC)
    spec["components"]["schemas"]["ItemCreateJob"]["properties"]["type"]["enum"] = [
        "catalog-widget-bulk-create-job"
    ]
    with pytest.raises(ValueError, match=r"'catalog-widget-bulk-create-job' jobs.*make gen"):
        Shape.from_spec(spec)
