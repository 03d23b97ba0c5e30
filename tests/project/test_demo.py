"""`make demo`, a new user's first command: what it installs, and the tour it runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_installs_the_package_alone_in_a_venv_of_its_own() -> None:
    # -n: the commands it would run on a fresh clone (-B: as if nothing were installed yet).
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    recipe = done.stdout
    installs = re.findall(r"-m pip (?:--python \S+ )?install ([^;&|\n]*)", recipe)
    # Two ways (with the host's pip, or the venv's own), each the package alone, no extras.
    assert installs == ["-q --disable-pip-version-check -e ."] * 2, recipe
    assert "-m venv --without-pip .venv-demo" in recipe and "ensurepip" in recipe
    assert ".venv/" not in recipe and "[dev]" not in recipe  # not the development toolchain
    assert recipe.splitlines()[-1] == "PY=.venv-demo/bin/python bash scripts/demo.sh"
    clean = subprocess.run(
        ["make", "--no-print-directory", "-n", "clean"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ".venv-demo" in clean.stdout.split()
    assert ".venv-demo/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_demo_tour_runs_against_a_local_fake() -> None:
    # The tour itself, with this interpreter (which has the package) in place of .venv-demo's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLAVIYO_")}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        env={**env, "PY": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "\n250\n" in out  # step 3: 250 jobs from 3 pages, counted by wc -l
    assert "is complete after" in out  # step 5: the running job was waited for
    assert [line for line in out.splitlines() if line.startswith("(exit status")] == [
        "(exit status 1)",  # no such job
        "(exit status 3)",  # the wait timed out
        "(exit status 2)",  # no key
    ]
    assert "fake-server --finish-within 5" in out  # what to try next
    assert "Traceback" not in out + done.stderr


def test_the_demo_says_how_to_install_when_its_python_is_missing(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        env={**os.environ, "PY": str(tmp_path / "no-python")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "run `make demo`" in done.stderr
