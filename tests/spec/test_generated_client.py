"""The generated package on its own: what it puts on the wire, and how it parses the seeds."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
import yaml
from klaviyo_catalog_api import Client
from klaviyo_catalog_api.api.catalog_jobs import get_item_update_job, list_item_create_jobs
from klaviyo_catalog_api.catalog_spec import MEDIA_TYPE, OPERATIONS, REVISION
from klaviyo_catalog_api.models import (
    CategoryUpdateJobDocument,
    ItemCreateJobCollection,
    ItemUpdateJobDocument,
    VariantUpdateJobCollection,
    VariantUpdateJobDocument,
)
from klaviyo_catalog_api.types import Unset

from scripts.generate import SPEC, parse_rate
from tests.support.paths import FIXTURES, ROOT
from tests.support.spec_facts import SLASH, path_prefix
from tests.support.wire_recorder import Recorder, Reply

CURATED = ROOT / "openapi" / "klaviyo-catalog-jobs.yaml"
SEED_JOB = json.loads((FIXTURES / "seed_get_item_update_job.json").read_text())


def test_comma_lists_reach_the_wire_comma_joined_once() -> None:
    server = Recorder()
    server.default = Reply.json(SEED_JOB)
    client = Client(base_url=server.base_url, httpx_args={"transport": server.transport})
    get_item_update_job.sync_detailed(
        "job1",
        client=client,
        fieldscatalog_item="title,price",
        include="items",
        revision=REVISION,
    )
    raw_query = urllib.parse.urlsplit(server.requests[0].raw_path).query
    pairs = urllib.parse.parse_qsl(raw_query)
    assert pairs == [("fields[catalog-item]", "title,price"), ("include", "items")]
    assert server.requests[0].headers["revision"] == REVISION


@pytest.mark.parametrize("job_id", ["a/b", "a?b=c", "a#b", "a+b", "a b/..%2F"])
def test_job_id_stays_one_path_segment(job_id: str) -> None:
    server = Recorder()
    server.default = Reply.json(SEED_JOB)
    get_item_update_job.sync_detailed(
        job_id,
        client=Client(base_url=server.base_url, httpx_args={"transport": server.transport}),
        revision="r",
    )
    raw_path = server.requests[0].raw_path
    prefix = path_prefix("get_item_update_job")
    assert raw_path.startswith(prefix) and raw_path.endswith(SLASH)
    segment = raw_path[len(prefix) : len(raw_path) - len(SLASH)]
    assert not set("/?#") & set(segment)
    assert urllib.parse.unquote(segment) == job_id


def test_cursor_and_filter_are_percent_encoded() -> None:
    cursor = "bz0xMDAmbD0+/w=="
    server = Recorder()
    server.default = Reply.json({"data": [], "links": {"self": "x", "next": None}})
    list_item_create_jobs.sync_detailed(
        client=Client(base_url=server.base_url, httpx_args={"transport": server.transport}),
        filter_='equals(status,"processing")',
        pagecursor=cursor,
        revision=REVISION,
    )
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(server.requests[0].raw_path).query))
    assert query == {"filter": 'equals(status,"processing")', "page[cursor]": cursor}


def test_spec_table_matches_the_spec() -> None:
    document = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    assert document["info"]["version"] == REVISION
    assert sorted(OPERATIONS) == sorted(
        item["get"]["operationId"] for item in document["paths"].values()
    )
    for path, item in document["paths"].items():
        op, table = item["get"], OPERATIONS[item["get"]["operationId"]]
        params = {p["name"]: p for p in op["parameters"]}
        assert table.path == path and table.is_list == ("{job_id}" not in path)
        assert table.query == tuple(name for name, p in params.items() if p["in"] == "query")
        assert table.include == tuple(params.get("include", {}).get("x-csv-enum", ()))
        assert {f"fields[{t}]": list(f) for t, f in table.fields.items()} == {
            name: p["x-csv-enum"] for name, p in params.items() if name.startswith("fields[")
        }
        limits = op["x-klaviyo-ratelimit"]
        assert table.rate_limits == (parse_rate(limits["burst"]), parse_rate(limits["steady"]))
        assert MEDIA_TYPE in op["responses"]["200"]["content"]


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"seed_{name}.json").read_text())


def test_single_job_seeds_parse_through_the_generated_models() -> None:
    seed = load("get_item_update_job")
    item = ItemUpdateJobDocument.from_dict(seed)
    assert item.data.attributes.status == "cancelled"
    # The seeds for items and variants nest `included` inside `data` (a faker slip), so the
    # model keeps it as an unknown member of the job instead of the document's `included`.
    assert "included" not in seed and isinstance(item.included, Unset)
    assert item.data.additional_properties["included"] == seed["data"]["included"]
    variant = VariantUpdateJobDocument.from_dict(load("get_variant_update_job"))
    assert variant.data.type_.value == "catalog-variant-bulk-update-job"
    category = CategoryUpdateJobDocument.from_dict(load("get_category_update_job"))
    # This seed's date-times carry no offset; the generated model keeps them naive.
    assert category.data.attributes.expires_at is not None


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("list_item_create_jobs", ItemCreateJobCollection),
        ("list_variant_update_jobs", VariantUpdateJobCollection),
    ],
)
def test_list_seeds_are_themselves_invalid(name: str, model: Any) -> None:
    # These seed examples were produced by a faker that gave up ("Too many levels of nesting"):
    # their relationship linkages are objects where the `type` string should be. A strict
    # `type` enum rightly rejects them.
    document = load(name)
    linkage_type = next(iter(document["data"][0]["relationships"].values()))["data"][0]["type"]
    assert isinstance(linkage_type, dict)
    with pytest.raises(ValueError, match="is not a valid"):
        model.from_dict(document)
