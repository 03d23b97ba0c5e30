"""The committed curated spec: the 18 operations, their parameters, and the curation rules.

Whatever revision is curated (`make curate SPEC=... && make gen`), these hold: its shape (path
style, media type) is checked against Klaviyo's revision history, as the published specs show it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from klaviyo_catalog_api.catalog_spec import REVISION
from openapi_spec_validator import validate

from scripts.generate import parse_rate
from tests.support.paths import ROOT

SPEC: dict[str, Any] = yaml.safe_load((ROOT / "openapi" / "klaviyo-catalog-jobs.yaml").read_text())
# Klaviyo's published specs: trailing slashes and application/json until 2024-10-15, then
# no slash and the JSON:API media type. An independent check of what curate.py wrote.
NEW_STYLE = str(SPEC["info"]["version"])[:10] >= "2024-10-15"
SLASH = "" if NEW_STYLE else "/"
MEDIA_TYPE = "application/vnd.api+json" if NEW_STYLE else "application/json"

EXPECTED = {
    "get_item_update_job": (
        "/api/catalog-item-bulk-update-jobs/{job_id}",
        ["job_id", "fields[catalog-item-bulk-update-job]", "fields[catalog-item]", "include"],
        "ItemUpdateJobDocument",
    ),
    "get_variant_update_job": (
        "/api/catalog-variant-bulk-update-jobs/{job_id}",
        ["job_id", "fields[catalog-variant-bulk-update-job]", "fields[catalog-variant]", "include"],
        "VariantUpdateJobDocument",
    ),
    "get_category_update_job": (
        "/api/catalog-category-bulk-update-jobs/{job_id}",
        [
            "job_id",
            "fields[catalog-category-bulk-update-job]",
            "fields[catalog-category]",
            "include",
        ],
        "CategoryUpdateJobDocument",
    ),
    "list_item_create_jobs": (
        "/api/catalog-item-bulk-create-jobs",
        ["fields[catalog-item-bulk-create-job]", "filter", "page[cursor]"],
        "ItemCreateJobCollection",
    ),
    "list_variant_update_jobs": (
        "/api/catalog-variant-bulk-update-jobs",
        ["fields[catalog-variant-bulk-update-job]", "filter", "page[cursor]"],
        "VariantUpdateJobCollection",
    ),
}


def operations() -> dict[str, tuple[str, dict[str, Any]]]:
    return {item["get"]["operationId"]: (path, item["get"]) for path, item in SPEC["paths"].items()}


def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = SPEC["components"]["schemas"][name]
    return found


def test_spec_is_valid_openapi_30_at_the_generated_revision() -> None:
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.0")
    assert SPEC["info"]["version"] == REVISION  # `make gen` ran on this spec


@pytest.mark.parametrize("op_id", sorted(EXPECTED))
def test_each_operation_has_its_path_parameters_and_response(op_id: str) -> None:
    path, params, document = EXPECTED[op_id]
    found_path, op = operations()[op_id]
    assert found_path == path + SLASH  # Klaviyo dropped the trailing slash in 2024-10-15
    assert [p["name"] for p in op["parameters"]] == [*params, "revision"]
    content = op["responses"]["200"]["content"][MEDIA_TYPE]
    assert content["schema"]["$ref"] == f"#/components/schemas/{document}"
    for status in ("4XX", "5XX"):
        error = op["responses"][status]["content"][MEDIA_TYPE]["schema"]
        assert error["$ref"] == "#/components/schemas/ErrorDocument"
    limits = op["x-klaviyo-ratelimit"]
    assert re.fullmatch(r"[1-9]\d*/s", limits["burst"]), limits
    assert re.fullmatch(r"[1-9]\d*/m", limits["steady"]), limits


def test_revision_header_is_required_and_has_no_default() -> None:
    for _, op in operations().values():
        revision = next(p for p in op["parameters"] if p["name"] == "revision")
        assert revision["in"] == "header" and revision["required"] is True
        assert "default" not in revision["schema"]


def test_comma_list_parameters_are_strings_with_their_vocabulary() -> None:
    _, op = operations()["get_item_update_job"]
    by_name = {p["name"]: p for p in op["parameters"]}
    for name in ("fields[catalog-item]", "include"):
        assert by_name[name]["schema"] == {"type": "string"}
    assert "price" in by_name["fields[catalog-item]"]["x-csv-enum"]
    assert by_name["include"]["x-csv-enum"] == ["items"]


def test_api_key_security_scheme() -> None:
    scheme = SPEC["components"]["securitySchemes"]["Klaviyo-API-Key"]
    assert scheme == scheme | {"type": "apiKey", "in": "header", "name": "Authorization"}
    assert SPEC["security"] == [{"Klaviyo-API-Key": []}]


def enums(node: Any, where: str = "") -> list[tuple[str, list[Any]]]:
    """Every (path, enum) in a schema tree."""
    found: list[tuple[str, list[Any]]] = []
    if isinstance(node, dict):
        if "enum" in node:
            found.append((where, node["enum"]))
        for key, value in node.items():
            found.extend(enums(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for value in node:
            found.extend(enums(value, where))
    return found


def test_status_is_open_but_type_enums_stay_strict() -> None:
    status = schema("JobAttributes")["properties"]["status"]
    assert "enum" not in status and "processing" in status["x-known-values"]
    assert schema("ItemUpdateJob")["properties"]["type"]["enum"] == ["catalog-item-bulk-update-job"]
    assert schema("CatalogItemLinkage")["properties"]["type"]["enum"] == ["catalog-item"]
    found = enums(SPEC["components"]["schemas"])
    assert len(found) == 15  # 9 job kinds + 3 catalog resources + 3 linkages
    for where, values in found:
        assert where.endswith("/properties/type") and len(values) == 1, where


def test_job_errors_need_only_detail_and_may_carry_meta() -> None:
    job_error = schema("JobError")
    assert job_error["required"] == ["detail"]
    assert job_error["properties"]["meta"]["additionalProperties"] is True


def test_links_are_nullable_and_optional() -> None:
    links = schema("CollectionLinks")
    assert "required" not in links
    assert all(p["nullable"] is True for p in links["properties"].values())


def test_every_correction_is_written_down_with_its_reason() -> None:
    notes = SPEC["info"]["x-curation"]
    assert len(notes) >= 8
    assert all(note["rule"] and note["reason"] for note in notes)
    joined = " ".join(n["rule"] for n in notes)
    for topic in ("status", "detail", "nullable", "offset", "comma-separated", "revision"):
        assert topic in joined


def test_published_prose_is_not_copied() -> None:
    text = (ROOT / "openapi" / "klaviyo-catalog-jobs.yaml").read_text()
    assert "developers.klaviyo.com" not in text
    assert "Ocean Blue" not in text


def test_limits_respect_the_committed_floor() -> None:
    """Never above the newest curated revision's limits (see openapi/rate-limit-floor.yaml)."""
    floor = yaml.safe_load((ROOT / "openapi" / "rate-limit-floor.yaml").read_text())
    assert floor["revision"][:10] >= SPEC["info"]["version"][:10]
    for _, op in operations().values():
        lowest = floor["operations"][op["operationId"]]
        for window, rate in op["x-klaviyo-ratelimit"].items():
            (count, seconds), (floor_count, floor_seconds) = (
                parse_rate(rate),
                parse_rate(lowest[window]),
            )
            assert seconds == floor_seconds and count <= floor_count
        if floor["revision"] == SPEC["info"]["version"]:
            assert op["x-klaviyo-ratelimit"] == lowest  # the newest revision sets the floor
