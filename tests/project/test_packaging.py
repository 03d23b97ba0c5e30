"""The wheel ships both packages, their py.typed markers, the CLI and the pytest plugin."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.paths import ROOT


def test_the_wheel_ships_both_typed_packages_and_the_entry_points(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("klaviyo_catalog_jobs-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        entry_text = archive.read(entry_points).decode()
    for package in ("klaviyo_catalog", "klaviyo_catalog_api"):
        assert f"{package}/__init__.py" in names and f"{package}/py.typed" in names
    assert "klaviyo_catalog_api/catalog_spec.py" in names
    assert "klaviyo_catalog/testing/pytest_plugin.py" in names
    assert "klaviyo-catalog = klaviyo_catalog.cli:main" in entry_text
    assert "klaviyo_catalog = klaviyo_catalog.testing.pytest_plugin" in entry_text
    assert not any(n.startswith(("tests/", "scripts/")) for n in names)


def test_the_package_and_its_fake_run_without_pyyaml() -> None:
    # pyyaml is a development dependency only: an app installs the package without it.
    script = """
import sys
sys.modules["yaml"] = None  # any `import yaml` now raises ImportError
from klaviyo_catalog import CatalogJobs
from klaviyo_catalog.cli import main
from klaviyo_catalog.testing import FakeKlaviyo

with FakeKlaviyo() as fake:
    job_id = fake.add_job("item-update", status="complete", items=2)
    with CatalogJobs(fake.api_key, base_url=fake.base_url) as kc:
        job = kc.get_item_update_job(job_id, include=["items"])
    assert job.is_done and len(job.items) == 2 and job.items[0].model.id
    import os
    os.environ["KLAVIYO_API_KEY"] = fake.api_key
    code = main(["--base-url", fake.base_url, "jobs", "get", "item-update", job_id, "--json"])
    assert code == 0, code
print("ran without yaml")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("ran without yaml")
