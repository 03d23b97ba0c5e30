"""scripts/check_revisions.py holds every revision to the 18 catalog bulk-job GETs.

A revision whose curation lost an operation would otherwise pass every step, as a client with
fewer methods. (`make check-revisions` runs the check on all 21 published revisions.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.spec.test_curate import EXTRACTS, load_script

check = load_script("check_revisions")


def test_the_expected_operations_are_the_nine_kinds_gets_and_lists() -> None:
    expected = check.EXPECTED_OPERATIONS
    assert len(expected) == len(set(expected)) == 18
    assert "get_item_create_job" in expected and "list_category_delete_jobs" in expected


def test_a_revision_missing_an_operation_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = json.loads((EXTRACTS / "stable_2026-07-15.json").read_text())
    del spec["paths"]["/api/catalog-category-bulk-delete-jobs/{job_id}"]
    (tmp_path / "stable_2026-07-15.json").write_text(json.dumps(spec))
    code = check.main(["--specs", str(tmp_path), "--facade-tests"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "2026-07-15: curate ok" in out and "import FAILED" in out
    assert "lacks 1 operation(s): ['get_category_delete_job']" in err
