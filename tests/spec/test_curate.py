"""scripts/curate.py on small published-style specs written here, and on trimmed extracts of
Klaviyo's published specs (tests/fixtures/klaviyo-openapi, made by scripts/extract_klaviyo_specs.py).
"""

from __future__ import annotations

import copy
import functools
import http.server
import importlib.util
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from tests.support.paths import ROOT

EXTRACTS = ROOT / "tests" / "fixtures" / "klaviyo-openapi"
COMMITTED: dict[str, Any] = yaml.safe_load(
    (ROOT / "openapi" / "klaviyo-catalog-jobs.yaml").read_text()
)


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"scripts_{name}", ROOT / "scripts" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


curate = load_script("curate")

# --- a tiny published-style spec, in the old (2023-01-24) and the new (2024-10-15+) style ------

JOBS = [
    # (old operationId, new operationId, path, job type, relationship, related type, is list)
    ("get_update_items_job", "get_bulk_update_catalog_items_job",
     "/api/catalog-item-bulk-update-jobs/{job_id}", "catalog-item-bulk-update-job", "items", "catalog-item", False),
    ("get_update_variants_job", "get_bulk_update_variants_job",
     "/api/catalog-variant-bulk-update-jobs/{job_id}", "catalog-variant-bulk-update-job", "variants", "catalog-variant", False),
    ("get_update_categories_job", "get_bulk_update_categories_job",
     "/api/catalog-category-bulk-update-jobs/{job_id}", "catalog-category-bulk-update-job", "categories", "catalog-category", False),
    ("get_create_items_jobs", "get_bulk_create_catalog_items_jobs",
     "/api/catalog-item-bulk-create-jobs", "catalog-item-bulk-create-job", "items", "catalog-item", True),
    ("get_update_variants_jobs", "get_bulk_update_variants_jobs",
     "/api/catalog-variant-bulk-update-jobs", "catalog-variant-bulk-update-job", "variants", "catalog-variant", True),
]  # fmt: skip

PROSE = "Marketing prose that must not survive curation."


def published(new: bool) -> dict[str, Any]:
    """A minimal spec shaped like Klaviyo's: inline schemas (old) or $ref + allOf (new)."""
    schemas: dict[str, Any] = {
        "Attrs": {
            "type": "object",
            "description": PROSE,
            "required": ["status", "created_at", "total_count"],
            "properties": {
                "status": {"type": "string", "enum": ["cancelled", "complete", "processing", "queued"]},
                "created_at": {"type": "string", "format": "date-time", "example": PROSE},
                "total_count": {"type": "integer"},
                "completed_count": {"type": "integer", "nullable": new},
                "failed_count": {"type": "integer"},
                "completed_at": {"type": "string", "format": "date-time"},
                "expires_at": {"type": "string", "format": "date-time"},
                "errors": {"type": "array", "items": {"type": "object"}},
            },
        },
        "ItemAttrs": {"type": "object", "properties": {"title": {"type": "string"}, "price": {"type": "number"}}},
    }  # fmt: skip
    if not new:
        schemas["Attrs"]["properties"]["job_id"] = {"type": "string"}
        schemas["Attrs"]["required"].insert(0, "job_id")
    paths: dict[str, Any] = {}
    media = "application/vnd.api+json" if new else "application/json"
    for old_id, new_id, path, job_type, rel, related, is_list in JOBS:
        job: dict[str, Any] = {
            "type": "object",
            "required": ["type", "attributes"],
            "properties": {
                "type": {"type": "string", "enum": [job_type]},
                "attributes": {"$ref": "#/components/schemas/Attrs"} if new else copy.deepcopy(schemas["Attrs"]),
                "relationships": {"type": "object", "properties": {rel: {"type": "object", "properties": {
                    "data": {"type": "array", "items": {"type": "object", "properties": {
                        "type": {"type": "string", "enum": [related]}, "id": {"type": "string"}}}}}}}},
                "links": {"type": "object", "properties": {"self": {"type": "string"}}},
            },
        }  # fmt: skip
        if new:  # Klaviyo's newer specs build resources from shared parts with allOf
            schemas[f"{new_id}Base"] = _job_base(job_type, rel, related)
            job = {"allOf": [{"$ref": f"#/components/schemas/{new_id}Base"}, {"type": "object"}]}
        included = {"type": "object", "properties": {
            "type": {"type": "string", "enum": [related]}, "id": {"type": "string"},
            "attributes": {"$ref": "#/components/schemas/ItemAttrs"}}}  # fmt: skip
        document: dict[str, Any] = {
            "type": "object",
            "properties": {
                "data": {"type": "array", "items": job} if is_list else job,
                "links": {"type": "object", "properties": {"next": {"type": "string"}}},
            },
        }
        if not is_list:
            document["properties"]["included"] = {"type": "array", "items": included}
        params: list[dict[str, Any]] = [
            {"name": f"fields[{job_type}]", "in": "query", "explode": False, "description": PROSE,
             "schema": {"type": "array", "items": {"type": "string", "enum": ["status", "created_at"]}}},
            {"name": "revision", "in": "header", "required": True,
             "schema": {"type": "string", "default": "2099-01-01"}},
        ]  # fmt: skip
        if is_list:
            params[1:1] = [
                {"name": "filter", "in": "query", "schema": {"type": "string"}},
                {"name": "page[cursor]", "in": "query", "schema": {"type": "string"}},
            ]
        else:
            params[:0] = [
                {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
            params[2:2] = [
                {"name": "include", "in": "query", "explode": False,
                 "schema": {"type": "array", "items": {"type": "string", "enum": [rel]}}},
            ]  # fmt: skip
        op = {
            "operationId": new_id if new else old_id,
            "description": PROSE,
            "parameters": params,
            "x-klaviyo-ratelimit": {"burst": "75/s", "steady": "750/m"} if new else {"burst": "350/s", "steady": "3500/m"},
            "responses": {"200": {"content": {media: {"schema": document}}}},
        }  # fmt: skip
        if new:
            op["x-klaviyo-operation-aliases"] = [old_id]
        paths[path if new else f"{path}/"] = {"get": op}
    paths["/api/unrelated"] = {"get": {"operationId": "get_unrelated", "responses": {}}}
    return {
        "openapi": "3.0.2",
        "info": {"title": "x", "version": "2099-01-01" if new else "2023-01-24"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _job_base(job_type: str, rel: str, related: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "id", "attributes"],
        "properties": {
            "type": {"type": "string", "enum": [job_type]},
            "id": {"type": "string"},
            "attributes": {"$ref": "#/components/schemas/Attrs"},
            "relationships": {"type": "object", "properties": {rel: {"type": "object", "properties": {
                "data": {"type": "array", "items": {"type": "object", "properties": {
                    "type": {"type": "string", "enum": [related]}, "id": {"type": "string"}}}}}}}},
        },
    }  # fmt: skip


def names(spec: dict[str, Any]) -> tuple[list[str], list[str]]:
    ops = sorted(item["get"]["operationId"] for item in spec["paths"].values())
    return ops, sorted(spec["components"]["schemas"])


@pytest.mark.parametrize("new", [False, True], ids=["old-style", "new-style"])
def test_curated_output_is_valid_and_keeps_stable_names(new: bool) -> None:
    out = curate.curate(published(new))
    validate(out)
    # The rule selects the five job paths of the fixture (not /api/unrelated), named as the
    # committed spec names them.
    assert names(out)[0] == [
        "get_category_update_job",
        "get_item_update_job",
        "get_variant_update_job",
        "list_item_create_jobs",
        "list_variant_update_jobs",
    ]
    assert set(names(out)[0]) <= set(names(COMMITTED)[0])
    # Component names are ours: the same set whichever style the source used.
    assert set(names(out)[1]) <= set(names(COMMITTED)[1])
    assert "ItemUpdateJobDocument" in names(out)[1] and "JobError" in names(out)[1]


def test_old_style_facts_are_kept() -> None:
    out = curate.curate(published(new=False))
    op = out["paths"]["/api/catalog-item-bulk-update-jobs/{job_id}/"]["get"]
    assert op["x-klaviyo-operation-id"] == "get_update_items_job"
    assert "application/json" in op["responses"]["200"]["content"]
    attributes = out["components"]["schemas"]["JobAttributes"]
    # Either id location is optional, so one generated client reads both shapes.
    assert "job_id" in attributes["properties"]
    assert "required" not in attributes  # a sparse fieldset may leave any attribute out
    assert "id" in out["components"]["schemas"]["ItemUpdateJob"]["properties"]


def test_new_style_facts_are_kept() -> None:
    out = curate.curate(published(new=True))
    assert out["info"]["version"] == "2099-01-01"
    op = out["paths"]["/api/catalog-item-bulk-update-jobs/{job_id}"]["get"]
    assert op["operationId"] == "get_item_update_job"
    assert op["x-klaviyo-operation-aliases"] == ["get_update_items_job"]
    assert op["x-klaviyo-ratelimit"] == {"burst": "75/s", "steady": "750/m"}
    assert "application/vnd.api+json" in op["responses"]["4XX"]["content"]
    job = out["components"]["schemas"]["ItemUpdateJob"]
    assert job["required"] == ["type", "attributes"] and "id" in job["properties"]


def test_curation_rules_are_applied() -> None:
    out = curate.curate(published(new=False))
    text = json.dumps(out)
    assert PROSE not in text
    attributes = out["components"]["schemas"]["JobAttributes"]["properties"]
    assert "enum" not in attributes["status"] and attributes["status"]["x-known-values"]
    assert attributes["completed_count"]["nullable"] is True
    assert "nullable" not in attributes["status"]  # optional (sparse fields), but never null
    assert (
        attributes["created_at"]["x-format"] == "date-time"
        and "format" not in attributes["created_at"]
    )
    assert attributes["errors"]["items"] == {"$ref": "#/components/schemas/JobError"}
    op = out["paths"]["/api/catalog-item-bulk-update-jobs/{job_id}/"]["get"]
    by_name = {p["name"]: p for p in op["parameters"]}
    assert by_name["include"]["schema"] == {"type": "string"}
    assert by_name["include"]["x-csv-enum"] == ["items"]
    assert "default" not in by_name["revision"]["schema"]
    assert "/api/unrelated" not in out["paths"]


def test_operations_are_selected_by_the_rule_whatever_their_published_names() -> None:
    spec = published(new=False)
    # A job kind Klaviyo adds joins by its path alone, under our name; a path outside the rule
    # (/api/unrelated, a POST-only path) stays out.
    spec["paths"]["/api/catalog-item-bulk-archive-jobs/"] = copy.deepcopy(
        spec["paths"]["/api/catalog-item-bulk-create-jobs/"]
    )
    spec["paths"]["/api/catalog-item-bulk-archive-jobs/"]["get"]["operationId"] = "whatever"
    out = curate.curate(spec)
    assert "list_item_archive_jobs" in names(out)[0]
    assert "get_unrelated" not in names(out)[0]
    assert any(
        n["rule"].startswith("The operations are selected by a rule")
        for n in out["info"]["x-curation"]
    )


def test_a_spec_without_any_bulk_job_get_is_an_error() -> None:
    spec = published(new=False)
    spec["paths"] = {"/api/unrelated": spec["paths"]["/api/unrelated"]}
    with pytest.raises(curate.CurationError, match="no catalog bulk-job GET"):
        curate.curate(spec)


def test_a_type_enum_with_several_values_is_an_error() -> None:
    spec = published(new=False)
    op = spec["paths"]["/api/catalog-item-bulk-update-jobs/{job_id}/"]["get"]
    data = op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]
    data["properties"]["type"]["enum"].append("something-else")
    with pytest.raises(curate.CurationError, match="single-value"):
        curate.curate(spec)


def test_command_line_writes_the_file_and_reports_errors(tmp_path: Path) -> None:
    source = tmp_path / "published.json"
    source.write_text(json.dumps(published(new=True)))
    out = tmp_path / "curated.yaml"
    assert curate.main([str(source), "-o", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["info"]["version"] == "2099-01-01"
    (tmp_path / "broken.json").write_text('{"openapi": "3.0.2"}')
    assert curate.main([str(tmp_path / "broken.json")]) == 1


# --- trimmed extracts of Klaviyo's published specs ---------------------------------------------


def extract(revision: str) -> Path:
    return EXTRACTS / f"stable_{revision}.json"


def curated_file(revision: str, tmp_path: Path, *options: str) -> dict[str, Any]:
    """Curate through the command line into a temporary file, as `make curate` does."""
    out = tmp_path / f"curated-{revision}.yaml"
    assert curate.main([str(extract(revision)), "-o", str(out), *options]) == 0
    loaded: dict[str, Any] = yaml.safe_load(out.read_text(encoding="utf-8"))
    return loaded


def test_curating_the_seed_revision_gives_its_shape(tmp_path: Path) -> None:
    """2023-01-24, the seeds' revision: old paths, media type, job id place, and limits."""
    spec = curated_file("2023-01-24", tmp_path, "--no-floor")
    validate(spec)
    assert spec["info"]["version"] == "2023-01-24"
    assert spec["info"]["x-curated-from"] == "stable_2023-01-24.json"
    assert names(spec) == names(COMMITTED)  # the same generated names as the shipped revision
    ops = {item["get"]["operationId"]: (path, item["get"]) for path, item in spec["paths"].items()}
    path, op = ops["get_item_update_job"]
    assert path == "/api/catalog-item-bulk-update-jobs/{job_id}/"
    assert all(p.endswith("/") for p in spec["paths"])
    assert op["x-klaviyo-operation-id"] == "get_update_items_job"
    assert list(op["responses"]["200"]["content"]) == ["application/json"]
    job_fields = next(p for p in op["parameters"] if p["name"].endswith("-bulk-update-job]"))
    assert "job_id" in job_fields["x-csv-enum"] and "id" not in job_fields["x-csv-enum"]
    for _, op in ops.values():
        assert op["x-klaviyo-ratelimit"] == {"burst": "350/s", "steady": "3500/m"}


def test_curating_the_newest_extract_gives_its_shape(tmp_path: Path) -> None:
    spec = curated_file("2026-07-15", tmp_path, "--no-floor")
    ops = {item["get"]["operationId"]: (path, item["get"]) for path, item in spec["paths"].items()}
    path, op = ops["get_item_update_job"]
    assert path == "/api/catalog-item-bulk-update-jobs/{job_id}"
    assert list(op["responses"]["200"]["content"]) == ["application/vnd.api+json"]
    job_fields = next(p for p in op["parameters"] if p["name"].endswith("-bulk-update-job]"))
    assert "job_id" not in job_fields["x-csv-enum"] and "id" in job_fields["x-csv-enum"]
    # Klaviyo lowered the item and variant operations' limits; categories kept theirs.
    assert op["x-klaviyo-ratelimit"] == {"burst": "75/s", "steady": "750/m"}
    category = ops["get_category_update_job"][1]
    assert category["x-klaviyo-ratelimit"] == {"burst": "350/s", "steady": "3500/m"}


def test_curating_the_generated_revision_reproduces_the_committed_spec(tmp_path: Path) -> None:
    revision = str(COMMITTED["info"]["version"])
    if not extract(revision).exists():
        pytest.skip(f"no extract of {revision}: python scripts/extract_klaviyo_specs.py {revision}")
    assert curated_file(revision, tmp_path) == COMMITTED


EXTRACT_REVISIONS = sorted(
    p.name[len("stable_") : -len(".json")] for p in EXTRACTS.glob("stable_*")
)


@pytest.mark.parametrize("revision", EXTRACT_REVISIONS)
def test_every_extract_curates_and_the_oldest_and_newest_generate(
    revision: str, tmp_path: Path
) -> None:
    out = curate.curate(curate.load_source(str(extract(revision))))
    validate(out)
    assert names(out) == names(COMMITTED)  # the facade imports the same names at every revision
    if revision not in (EXTRACT_REVISIONS[0], EXTRACT_REVISIONS[-1]):
        # Generation (a second of CPU each) at the oldest and the newest here; `make
        # check-revisions` (CI) generates, imports and type-checks every published revision.
        return
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(curate.dump(out))
    package = tmp_path / "pkg" / "klaviyo_catalog_api"
    # A separate process: importing a second klaviyo_catalog_api here would shadow the real one.
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "generate.py"),
            "--spec",
            str(spec_path),
            "--out",
            str(package),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (package / "catalog_spec.py").read_text().count("OperationSpec(") == 19
    assert f"REVISION = {revision!r}".replace("'", '"') in (package / "catalog_spec.py").read_text()


# --- the rate-limit floor: limits are conservative across revisions ----------------------------


def limits_of(spec: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Per operation: (applied limits, published limits if they differ)."""
    return {
        item["get"]["operationId"]: (
            item["get"]["x-klaviyo-ratelimit"],
            item["get"].get("x-klaviyo-ratelimit-published"),
        )
        for item in spec["paths"].values()
    }


def test_the_floor_lowers_an_older_revisions_limits_window_by_window(tmp_path: Path) -> None:
    floor = tmp_path / "floor.yaml"
    curated_file("2026-07-15", tmp_path, "--floor", str(floor), "--update-floor")
    assert yaml.safe_load(floor.read_text())["revision"] == "2026-07-15"
    old = curated_file("2023-01-24", tmp_path, "--floor", str(floor))
    fewer = {"burst": "75/s", "steady": "750/m"}
    more = {"burst": "350/s", "steady": "3500/m"}
    # Item and variant create/update were cut to 75/s + 750/m; the others were not lowered,
    # so there is nothing to record.
    lowered = {
        f"{way}_{noun}_{verb}_{'jobs' if way == 'list' else 'job'}": (fewer, more)
        for way in ("get", "list")
        for noun in ("item", "variant")
        for verb in ("create", "update")
    }
    assert {k: v for k, v in limits_of(old).items() if v[1] is not None} == lowered
    assert all(v == (more, None) for k, v in limits_of(old).items() if k not in lowered)
    assert len(limits_of(old)) == 18
    item = next(i["get"] for i in old["paths"].values() if "item-bulk-update" in str(i))
    assert item["x-klaviyo-ratelimit-floor"] == "2026-07-15"
    assert any("rate-limit-floor" in note["rule"] for note in old["info"]["x-curation"])


def test_the_floor_moves_only_forward_and_only_when_asked(tmp_path: Path) -> None:
    floor = tmp_path / "floor.yaml"
    curated_file("2023-01-24", tmp_path, "--floor", str(floor))
    assert not floor.exists()  # not asked
    curated_file("2023-01-24", tmp_path, "--floor", str(floor), "--update-floor")
    assert yaml.safe_load(floor.read_text())["revision"] == "2023-01-24"  # the first one seen
    curated_file("2026-07-15", tmp_path, "--floor", str(floor), "--update-floor")
    table = yaml.safe_load(floor.read_text())
    assert table["revision"] == "2026-07-15"
    assert table["operations"]["get_item_update_job"] == {"burst": "75/s", "steady": "750/m"}
    before = floor.read_text()
    older = curated_file("2024-10-15", tmp_path, "--floor", str(floor), "--update-floor")
    assert floor.read_text() == before  # an older revision never raises the floor again
    assert limits_of(older)["get_item_update_job"][0] == {"burst": "75/s", "steady": "750/m"}
    # A newer revision's own limits apply, even higher ones: they are Klaviyo's current ones.
    newer = published(new=True)  # 2099-01-01, 75/s and 750/m
    for item in newer["paths"].values():
        if "x-klaviyo-ratelimit" in item["get"]:
            item["get"]["x-klaviyo-ratelimit"] = {"burst": "700/s", "steady": "7000/m"}
    out = curate.curate(newer, floor=curate.load_floor(floor))
    own = ({"burst": "700/s", "steady": "7000/m"}, None)
    assert all(limits == own for limits in limits_of(out).values())


@pytest.mark.parametrize(
    ("published_limits", "floor", "applied"),
    [
        ({"burst": "10/s", "steady": "3500/m"}, {"burst": "75/s", "steady": "750/m"},
         {"burst": "10/s", "steady": "750/m"}),
        ({"burst": "350/s"}, {"burst": "75/s", "steady": "750/m"},
         {"burst": "75/s", "steady": "750/m"}),
        ({"burst": "350/s", "steady": "3500/m"}, {}, {"burst": "350/s", "steady": "3500/m"}),
    ],
)  # fmt: skip
def test_lower_limits_takes_the_minimum_per_window(
    published_limits: dict[str, str], floor: dict[str, str], applied: dict[str, str]
) -> None:
    assert curate.lower_limits(published_limits, floor, "op") == applied


def test_limits_in_different_units_are_an_error() -> None:
    with pytest.raises(curate.CurationError, match="different units"):
        curate.lower_limits({"steady": "60/m"}, {"steady": "1000/h"}, "op")


# --- the rate notation of x-klaviyo-ratelimit: read by generate.py only -------------------------


@pytest.mark.parametrize(
    ("text", "rate"), [("350/s", (350, 1.0)), ("3500/m", (3500, 60.0)), ("1000/d", (1000, 86400.0))]
)
def test_generate_reads_klaviyos_rate_notation(text: str, rate: tuple[int, float]) -> None:
    assert load_script("generate").parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "350", "350/x", "/s", "3.5/s", "x/s"])
def test_generate_refuses_a_rate_it_cannot_read(text: str) -> None:
    generate = load_script("generate")
    with pytest.raises(generate.GenerationError, match="unreadable rate limit"):
        generate.parse_rate(text)


# --- curation from a URL (`make curate SPEC=https://...`), against a loopback server ----------


@pytest.fixture
def spec_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving tests/fixtures/klaviyo-openapi; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(EXTRACTS))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join(timeout=5)


def test_curating_from_a_url_equals_curating_the_file(spec_server: str, tmp_path: Path) -> None:
    url = f"{spec_server}/stable_2026-07-15.json"
    out = tmp_path / "from-url.yaml"
    floor = tmp_path / "floor.yaml"
    # What `make curate SPEC=<url>` runs, with the outputs moved out of the repository.
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "curate.py"), url, "-o", str(out),
         "--floor", str(floor), "--update-floor"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from_url = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert from_url["info"]["x-curated-from"] == "stable_2026-07-15.json"
    assert from_url == curated_file("2026-07-15", tmp_path, "--no-floor")
    assert yaml.safe_load(floor.read_text())["revision"] == "2026-07-15"


def test_an_unreachable_or_missing_url_is_one_clear_error(
    spec_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never.yaml"
    assert curate.main([f"{spec_server}/stable_1999-01-01.json", "-o", str(out)]) == 1
    assert "404" in capsys.readouterr().err and not out.exists()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert curate.main([f"http://127.0.0.1:{port}/spec.json", "-o", str(out)]) == 1
    assert "cannot fetch" in capsys.readouterr().err and not out.exists()
