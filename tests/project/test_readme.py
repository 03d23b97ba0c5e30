"""The README's and the guides' Python examples: every one type-checks under mypy --strict, and
the README's run as written (their test functions pass against FakeKlaviyo); the first one
also as the README tells a new user to run it, against `klaviyo-catalog fake-server`."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from klaviyo_catalog.testing import FakeKlaviyo
from mypy import api as mypy_api

from tests.support.paths import ROOT

PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", flags=re.DOTALL)
README = (ROOT / "README.md").read_text()
README_BLOCKS = PYTHON_BLOCK.findall(README)
GUIDES = sorted((ROOT / "docs").rglob("*.md"))


def test_the_readme_has_examples() -> None:
    assert len(README_BLOCKS) >= 2


def test_every_readme_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeKlaviyo() as fake:
        # Running jobs for the first example to wait for, each finishing within half a second.
        fake.add_jobs("item-create", 3, status="processing", failed=1)
        fake.finish_randomly(0.5, seed=1)
        # What an app's deployment provides: the key, and here the fake as the API's root.
        monkeypatch.setenv("KLAVIYO_API_KEY", fake.api_key)
        monkeypatch.setenv("KLAVIYO_BASE_URL", fake.base_url)
        for block in README_BLOCKS:
            namespace: dict[str, Any] = {"__name__": "readme"}
            exec(compile(block, "README.md", "exec"), namespace)
            # A copy: a warning the block raises adds __warningregistry__ to the namespace.
            for name, function in list(namespace.items()):
                if name.startswith("test_") and callable(function):
                    with FakeKlaviyo() as own:  # what the fake_klaviyo fixture provides
                        function(own)


def test_every_python_example_type_checks(tmp_path: Path) -> None:
    sources = {"README.md": README_BLOCKS}
    sources.update({str(g.relative_to(ROOT)): PYTHON_BLOCK.findall(g.read_text()) for g in GUIDES})
    files = []
    for source, blocks in sources.items():
        for number, block in enumerate(blocks, 1):
            stem = re.sub(r"\W", "_", source)
            path = tmp_path / f"{stem}_{number}.py"
            path.write_text(block)
            files.append(str(path))
    assert len(files) > len(README_BLOCKS)  # the guides have examples too
    out, err, status = mypy_api.run(
        # The project's mypy settings and cache (which `make typecheck` has warmed).
        ["--strict", "--config-file", str(ROOT / "pyproject.toml"), *files]
    )
    assert status == 0, out + err


# The README says "about 7 s" (6.5 s measured on a 2-core machine: three 2 s rounds of polling);
# the bound leaves a loaded CI machine room while still failing an example that hangs, as the
# first one did for 900 s against a fake whose jobs never advanced.
FIRST_EXAMPLE_BOUND = 20.0


def readme_fake_server_command() -> list[str]:
    """The fake-server command the README gives right after its first example."""
    after_example = README[README.index(README_BLOCKS[0]) + len(README_BLOCKS[0]) :]
    shell = re.search(r"```sh\n(.*?)```", after_example, flags=re.DOTALL)
    assert shell is not None, "no shell block after the first example"
    line = next(li for li in shell.group(1).splitlines() if " fake-server" in li)
    words = shlex.split(line, comments=True)
    assert Path(words[0]).name == "klaviyo-catalog" and words[1] == "fake-server", words
    return words[1:]


def exports_printed_by(server: subprocess.Popen[str]) -> dict[str, str]:
    """The `export NAME=value` lines the fake server announces (what the README says to paste),
    read until its announcement ends."""
    lines: list[str] = []
    announced = threading.Event()

    def read() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C to stop."):
                announced.set()
        announced.set()  # it exited: the assertion below shows what it printed

    threading.Thread(target=read, daemon=True).start()
    assert announced.wait(30), "the fake server announced nothing in 30 s"
    exports = [line.split(None, 1)[1] for line in lines if line.strip().startswith("export ")]
    assert exports, "".join(lines)
    return dict(export.strip().split("=", 1) for export in exports)


def test_the_first_example_finishes_in_seconds_against_the_fake_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLAVIYO_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "klaviyo_catalog", *readme_fake_server_command()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        env.update(exports_printed_by(server))
        (tmp_path / "first.py").write_text(README_BLOCKS[0])
        try:
            done = subprocess.run(
                [sys.executable, "first.py"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=FIRST_EXAMPLE_BOUND,
                check=False,
            )
        except subprocess.TimeoutExpired as hung:
            pytest.fail(f"still running after {FIRST_EXAMPLE_BOUND:g} s; printed {hung.stdout!r}")
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    waiting = re.fullmatch(r"waiting for (\d+) running item-create jobs", first)
    assert waiting is not None, first
    count = int(waiting[1])
    finished = [line.split() for line in rest if not line.startswith("  failed: ")]
    assert count > 100  # the fake's backlog: a few pages of running jobs
    assert len(finished) == count and all(words[1] == "complete" for words in finished)
