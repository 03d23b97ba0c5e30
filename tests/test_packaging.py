"""The wheel ships both packages, their py.typed markers, the CLI and the pytest plugin."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
