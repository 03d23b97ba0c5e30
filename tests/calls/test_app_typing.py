"""mypy --strict flags a misspelt status, include or kind in an app's code, and no correct call.

An app file calls every method family of both clients correctly (each kind's get_, list_ and
iter_, wait_for_job with kind= and include=, wait_for_jobs), and makes misspelt calls, each
marked `# misspelt`; mypy must report errors on exactly the marked lines. The calls are
written from the generated tables, so every kind of the spec is covered.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from klaviyo_catalog_api.catalog_spec import KINDS, OPERATIONS

from tests.support.paths import ROOT


def correct_calls(indent: str, wait: str) -> list[str]:
    """Each kind's calls, correct; `wait` is "" (sync) or "await " (async)."""
    lines = []
    for name, kind in KINDS.items():
        include = OPERATIONS[kind.get_operation].include if kind.get_operation else ()
        if kind.get_operation:
            extra = f", include={list(include)!r}" if include else ""
            lines.append(f'job = {wait}kc.{kind.get_operation}("J1"{extra})')
            lines.append(f'job = {wait}kc.wait_for_job("J1", kind="{name}"{extra})')
        if kind.list_operation:
            lines.append(f'page = {wait}kc.{kind.list_operation}(status="processing")')
            walk = "iter_" + kind.list_operation.removeprefix("list_")
            loop = "async for" if wait else "for"
            lines.append(f'{loop} job in kc.{walk}(status="queued", max_pages=2):')
            lines.append("    print(job.status, job.kind)")
    return [indent + line for line in lines]


APP = """\
from klaviyo_catalog import AsyncCatalogJobs, BulkJob, CatalogJobs, Page


def sync_app(kc: CatalogJobs) -> None:
    job: BulkJob
    page: Page[BulkJob]
{sync_calls}
    job = kc.wait_for_job(job, include=["items"], fields={{"catalog-item": ["title"]}})
    for job in kc.wait_for_jobs([job], poll_interval=5):
        print(job.id)
    kc.get_item_update_job("J1", include=["item"])  # misspelt
    kc.get_variant_update_job("J1", include=["items"])  # misspelt
    kc.list_item_create_jobs(status="procesing")  # misspelt
    kc.iter_item_update_jobs(status="done")  # misspelt
    kc.wait_for_job("J1", kind="item-updat")  # misspelt
    kc.wait_for_job("J1", kind="item_update")  # misspelt
    kc.wait_for_job("J1", kind="item-update", include=["variant"])  # misspelt
    kc.get_item_delete_job("J1", include=["items"])  # misspelt


async def async_app(kc: AsyncCatalogJobs) -> None:
    job: BulkJob
    page: Page[BulkJob]
{async_calls}
    job = await kc.wait_for_job(job, include=["items"])
    async for job in kc.wait_for_jobs([job]):
        print(job.id)
    await kc.get_category_update_job("J1", include=["category"])  # misspelt
    await kc.list_variant_update_jobs(status="Processing")  # misspelt
    await kc.wait_for_job("J1", kind="variant-updates")  # misspelt
"""


def test_mypy_flags_exactly_the_misspelt_calls(tmp_path: Path) -> None:
    source = APP.format(
        sync_calls="\n".join(correct_calls("    ", "")),
        async_calls="\n".join(correct_calls("    ", "await ")),
    )
    app = tmp_path / "app.py"
    app.write_text(source, encoding="utf-8")
    marked = {i for i, line in enumerate(source.splitlines(), 1) if line.endswith("# misspelt")}
    assert len(marked) == 11
    env = dict(
        os.environ, MYPYPATH=os.pathsep.join([str(ROOT / "facade"), str(ROOT / "generated")])
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(app),
        ],
        cwd=tmp_path,  # away from pyproject.toml: mypy checks the app as an app would
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = re.findall(r"^app\.py:(\d+): error: ", result.stdout, re.MULTILINE)
    assert {int(line) for line in errors} == marked, result.stdout
