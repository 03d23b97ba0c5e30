"""scripts/revision_table.py and scripts/check_revisions.py on the trimmed extracts.

CI runs both over all 21 published revisions (`make check-revisions`, with ../shared beside the
clone); these tests need only tests/fixtures/klaviyo-openapi.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from tests.spec.test_curate import EXTRACTS, load_script

table = load_script("revision_table")
check = load_script("check_revisions")


def rows(as_of: dt.date) -> dict[str, list[str]]:
    text = table.table(sorted(EXTRACTS.glob("stable_*.json")), as_of)
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[2:]]
    return {row[0]: row[1:] for row in cells}


def test_the_table_states_each_revisions_shape_limits_and_status() -> None:
    found = rows(dt.date(2026, 11, 30))
    assert list(found) == ["2022-10-17", "2023-01-24", "2023-12-15", "2024-10-15", "2026-07-15"]
    old, id_moved, no_slash, newest = (
        found["2023-01-24"],
        found["2023-12-15"],
        found["2024-10-15"],
        found["2026-07-15"],
    )
    assert old[:3] == ["trailing slash", "`application/json`", "`attributes.job_id`"]
    assert id_moved[:3] == ["trailing slash", "`application/json`", "`data.id`"]
    assert no_slash[:3] == ["no trailing slash", "`application/vnd.api+json`", "`data.id`"]
    # Published 350/s + 3500/m for all 18; the floor of 2026-07-15 applies to the older ones.
    assert old[3] == "350/s + 3500/m"
    lower = (
        "75/s + 750/m (item-create, item-update, variant-create, variant-update); "
        "350/s + 3500/m (the rest)"
    )
    assert old[4] == lower and newest[3] == lower and newest[4] == "the same"
    assert old[5] == "retired since 2025-01-24"
    assert newest[5] == "stable; deprecated from 2027-07-15"
    assert rows(dt.date(2027, 8, 1))["2026-07-15"][5] == "deprecated; retires 2028-07-15"


def test_check_revisions_names_the_revision_and_step_that_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(EXTRACTS / "stable_2023-01-24.json", tmp_path / "stable_2023-01-24.json")
    (tmp_path / "stable_2099-01-01.json").write_text(
        '{"openapi": "3.0.2", "info": {"version": "2099-01-01"}, "paths": {}}'
    )
    code = check.main(["--specs", str(tmp_path), "--only", "2099-01-01", "--facade-tests"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "2099-01-01: curate FAILED" in out and "0/1 revisions passed" in out
    assert "curate failed" in err and "the spec has no catalog bulk-job GET" in err
    assert check.main(["--specs", str(tmp_path / "nothing-here")]) == 2
