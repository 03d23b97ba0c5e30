"""One source of schema truth: a change to the curated spec reaches the whole client by `make gen`.

A new attribute of the included items, and new attributes of the jobs themselves, reach the
views, `BulkJob`, the CLI's --json and the fake's documents, typed. Each test edits a copy of
the committed curated spec, generates a package from it into a temporary directory
(scripts/generate.py, as `make gen` does), and runs the facade, the CLI and the fake against
that package in a subprocess with it first on PYTHONPATH, so nothing of the committed package
is used. mypy checks the facade (and a caller) against it the same way.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import ROOT

CURATED = ROOT / "openapi" / "klaviyo-catalog-jobs.yaml"
FACADE = ROOT / "facade"
PACKAGE = "klaviyo_catalog_api"
DATE_TIME = {
    "type": "string",
    "nullable": True,
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$",
    "x-format": "date-time",
}


def curated() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(CURATED.read_text(encoding="utf-8"))
    return spec


def item_fieldsets(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        param
        for item in spec["paths"].values()
        for param in item["get"]["parameters"]
        if param["name"] == "fields[catalog-item]"
    ]


def job_fieldsets(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation's sparse fieldset of its own job type."""
    return [
        param
        for item in spec["paths"].values()
        for param in item["get"]["parameters"]
        if param["name"].startswith("fields[") and param["name"].endswith("-job]")
    ]


def generate(spec: dict[str, Any], where: Path) -> Path:
    """Generate a package from `spec` under `where`; return the directory to put on the path."""
    source = where / "spec.yaml"
    source.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    out = where / "pkg"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "generate.py"),
            "--spec",
            str(source),
            "--out",
            str(out / PACKAGE),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def environment(package_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(package_root), str(FACADE), str(ROOT)])
    env["MYPYPATH"] = os.pathsep.join([str(package_root), str(FACADE)])
    env.pop("KLAVIYO_API_KEY", None)
    env.pop("KLAVIYO_BASE_URL", None)
    return env


def run_python(package_root: Path, script: str) -> Any:
    """Run `script` against the generated package; it prints one JSON document."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=environment(package_root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_mypy(package_root: Path, where: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            *targets,
        ],
        env=environment(package_root),
        cwd=where,  # away from pyproject.toml, whose mypy_path names the committed package
        capture_output=True,
        text=True,
        timeout=300,
    )


PROPAGATION = """
    import contextlib, io, json, os
    import datetime as dt
    import httpx
    import typing
    import attrs
    import klaviyo_catalog_api
    from klaviyo_catalog import BulkJob, CatalogJobs, InvalidResponseError, Item
    from klaviyo_catalog.cli import main
    from klaviyo_catalog_api.views import JobFields
    from klaviyo_catalog.testing import FakeKlaviyo

    with FakeKlaviyo(rate_limits=None) as fake:
        job_id = fake.add_job(
            "item-update",
            status="complete",
            items=[{"external_id": "LAUNCHED", "launched_at": "2024-05-01T12:00:00"}, {}],
        )
        fake.set_job(job_id, started_at="2024-05-01T11:00:00", skipped_count=3, priority=None)
        create_id = fake.add_job("item-create", status="complete")  # new attributes generated
        bad_id = fake.add_job("item-update", status="complete")
        fake.set_job(bad_id, started_at="yesterday")
        with CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
            job = kc.get_item_update_job(job_id, include=["items"])
            sparse = kc.get_item_update_job(
                job_id, include=["items"], fields={"catalog-item": ["launched_at"]}
            )
            (listed,) = kc.list_item_create_jobs()
            try:
                kc.get_item_update_job(bad_id)
                refused = ""
            except InvalidResponseError as exc:
                refused = str(exc)
        served = httpx.get(
            fake.url("item-update", job_id), params={"include": "items"}, headers=fake.headers()
        ).json()
        served_list = httpx.get(fake.url("item-create"), headers=fake.headers()).json()
        os.environ.update(KLAVIYO_API_KEY=fake.api_key, KLAVIYO_BASE_URL=fake.base_url)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["jobs", "get", "item-update", job_id, "--include", "--json"])
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            main(["jobs", "get", "item-update", job_id])
    first, second = job.items
    assert isinstance(first, Item) and isinstance(second, Item)
    assert listed.id == create_id
    assert issubclass(BulkJob, JobFields)
    hints = typing.get_type_hints(JobFields)  # BulkJob's `model` names a type-checking alias
    print(json.dumps({
        "package": klaviyo_catalog_api.__file__,
        "view_type": str(Item.__dict__["launched_at"].__orig_class__),
        "value": first.launched_at.isoformat(),
        "value_is_aware_datetime": isinstance(first.launched_at, dt.datetime)
            and first.launched_at.tzinfo is not None,
        "generated_value": second.launched_at.isoformat(),
        "sparse": [dict(r.attributes) for r in sparse.items],
        "served": [r["attributes"].get("launched_at") for r in served["included"]],
        "cli_code": code,
        "cli": [r.get("launched_at") for r in json.loads(out.getvalue())["items"]],
        "job_field_types": [
            hints["started_at"] == dt.datetime | None,
            hints["skipped_count"].__name__,
            hints["priority"] == int | None,
        ],
        "job_fields": [f.name for f in attrs.fields(BulkJob) if f.kw_only and f.repr],
        "job": [job.started_at.isoformat(), job.skipped_count, job.priority],
        "job_value_types": [type(job.started_at).__name__, type(job.skipped_count).__name__],
        "job_is_aware": job.started_at.tzinfo is not None,
        "listed": [listed.started_at.isoformat(), listed.skipped_count],
        "served_job": [
            served["data"]["attributes"].get(n) for n in ("started_at", "skipped_count")
        ],
        "served_list": [
            served_list["data"][0]["attributes"].get(n) for n in ("started_at", "skipped_count")
        ],
        "cli_job": [json.loads(out.getvalue()).get(n) for n in ("started_at", "skipped_count")],
        "cli_text": text.getvalue().splitlines(),
        "refused": refused,
    }))
"""

CALLER = """
    from klaviyo_catalog import BulkJob, Item

    def launched(job: BulkJob) -> list[str]:
        out = []
        for item in job.items or ():
            if isinstance(item, Item) and item.launched_at is not None:
                out.append(item.launched_at.isoformat())  # a datetime, so this type-checks
        return out

    def wrong(item: Item) -> int:
        return item.launched_at  # not an int: mypy must say so

    def started(job: BulkJob) -> str | None:
        skipped: int = job.skipped_count  # an int, never None
        return job.started_at.isoformat() if job.started_at and skipped >= 0 else None

    def wrong_job(job: BulkJob) -> str:
        return job.skipped_count  # not a str: mypy must say so
"""


def test_a_new_attribute_reaches_the_view_the_cli_and_the_fake(tmp_path: Path) -> None:
    spec = curated()
    schemas = spec["components"]["schemas"]
    schemas["CatalogItemAttributes"]["properties"]["launched_at"] = copy.deepcopy(DATE_TIME)
    for fieldset in item_fieldsets(spec):
        fieldset["x-csv-enum"] = sorted([*fieldset["x-csv-enum"], "launched_at"])
    # And three job attributes: a date-time and a count, as Klaviyo's jobs have, and an
    # integer that is not a count.
    job_attributes = schemas["JobAttributes"]["properties"]
    job_attributes["started_at"] = copy.deepcopy(DATE_TIME)
    job_attributes["skipped_count"] = {"type": "integer", "nullable": True}
    job_attributes["priority"] = {"type": "integer", "nullable": True}
    new = ["started_at", "skipped_count", "priority"]
    for fieldset in job_fieldsets(spec):
        fieldset["x-csv-enum"] = sorted([*fieldset["x-csv-enum"], *new])
    package_root = generate(spec, tmp_path)

    seen = run_python(package_root, PROPAGATION)

    assert seen["package"].startswith(str(package_root))  # the temporary package, not ours
    # On the view, typed: a timezone-aware datetime (the served value had no offset).
    assert seen["view_type"] == "klaviyo_catalog_api.views.Attr[datetime.datetime]"
    assert seen["value"] == "2024-05-01T12:00:00+00:00" and seen["value_is_aware_datetime"]
    # In the fake's documents: the given value, and one generated for the other item.
    assert seen["served"][0] == "2024-05-01T12:00:00" and seen["served"][1]
    assert seen["generated_value"].startswith(seen["served"][1][:10])
    # A sparse fieldset may name it (the facade's and the fake's vocabularies both know it).
    assert seen["sparse"] == [
        {"launched_at": "2024-05-01T12:00:00"},
        {"launched_at": seen["served"][1]},
    ]
    # In the CLI's --json, read through the view: timezone-aware.
    assert seen["cli_code"] == 0 and seen["cli"][0] == "2024-05-01T12:00:00+00:00"

    # The job attributes: typed fields of BulkJob, read (the naive date-time as UTC) from a
    # single job and from a page, in the fake's documents (set, or generated from the spec for
    # a new job) and in `jobs get --json`.
    assert seen["job_field_types"] == [True, "int", True]
    assert seen["job_fields"][-3:] == new  # after the spec's own
    # A null integer that is not a count reads as None (a null count reads as 0).
    assert seen["job"] == ["2024-05-01T11:00:00+00:00", 3, None]
    assert seen["job_value_types"] == ["datetime", "int"] and seen["job_is_aware"]
    assert seen["served_job"] == ["2024-05-01T11:00:00", 3]
    started_at, skipped_count = seen["served_list"]
    assert isinstance(started_at, str) and isinstance(skipped_count, int)
    assert seen["listed"][0].startswith(started_at[:19]) and seen["listed"][1] == skipped_count
    assert seen["cli_job"] == ["2024-05-01T11:00:00+00:00", 3]
    # And in `jobs get`'s text, each on a line of its own after the spec's own.
    lines = [" ".join(line.split()) for line in seen["cli_text"]]
    errors_at = next(i for i, line in enumerate(lines) if line.startswith("Errors "))
    assert lines[errors_at - 4].startswith("Expires ")
    assert lines[errors_at - 3 : errors_at] == [
        "Started 2024-05-01 11:00:00 UTC",
        "Skipped count 3",
        "Priority -",
    ]
    # A value not of its type is an invalid response naming the member, never a silent None.
    assert "data.attributes.started_at is not an ISO 8601 date-time" in seen["refused"]

    caller = tmp_path / "caller.py"
    caller.write_text(textwrap.dedent(CALLER), encoding="utf-8")
    checked = run_mypy(package_root, tmp_path, str(caller))
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, checked.stdout
    assert "caller.py:12" in errors[0], checked.stdout
    assert '"datetime | None"' in errors[0] and '"int"' in errors[0]
    assert "caller.py:19" in errors[1] and '"int"' in errors[1] and '"str"' in errors[1]


REDUCED = """
    import json
    from klaviyo_catalog import CatalogJobs, ConfigurationError, InvalidRequestError, Item
    from klaviyo_catalog.testing import FakeKlaviyo

    with FakeKlaviyo(rate_limits=None) as fake:
        job_id = fake.add_job("item-update", status="complete", items=2)
        with CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
            job = kc.get_item_update_job(job_id, include=["items"])
            try:
                kc.get_item_update_job(job_id, fields={"catalog-item": ["price"]})
                refused_price = ""
            except InvalidRequestError as exc:
                refused_price = str(exc)
    item = job.items[0]
    assert isinstance(item, Item)
    try:
        item.model
        refused_model = ""
    except ConfigurationError as exc:
        refused_model = str(exc)
    print(json.dumps({
        "status": str(job.status),
        "items": [r.id for r in job.items],
        "has_price": hasattr(Item, "price"),
        "refused_price": refused_price,
        "refused_model": refused_model,
    }))
"""


def test_the_facade_works_without_included_schemas_or_price(tmp_path: Path) -> None:
    # Like some early snapshots: no schema for the included resources (2022-10-17), and no
    # `price` in the item fieldset (2023-01-24).
    spec = curated()
    schemas = spec["components"]["schemas"]
    for name in [
        n for n in schemas if n.startswith(("CatalogItem", "CatalogVariant", "CatalogCategory"))
    ]:
        if not name.endswith(("Linkage", "Relationship")):
            del schemas[name]
    for name, schema in schemas.items():
        # Single-job documents, and list documents too before 2023-06-15, carry `included`.
        if name.endswith(("Document", "Collection")):
            schema["properties"].pop("included", None)
    for fieldset in item_fieldsets(spec):
        fieldset["x-csv-enum"].remove("price")
    package_root = generate(spec, tmp_path)
    assert not (package_root / PACKAGE / "models" / "catalog_item.py").exists()

    seen = run_python(package_root, REDUCED)

    assert seen["status"] == "complete" and len(seen["items"]) == 2
    assert not seen["has_price"]
    assert "has no field 'price'" in seen["refused_price"]
    assert "no schema for 'catalog-item'" in seen["refused_model"]
    # That the facade type-checks against such a package is `make check-revisions`' (CI) proof,
    # on the published revisions that have this shape (2022-10-17, 2023-01-24).
