"""The README's and the guides' Python examples: every one type-checks under mypy --strict, and
the README's run as written (their test functions pass against FakeKlaviyo)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from klaviyo_catalog.testing import FakeKlaviyo
from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parent.parent
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", flags=re.DOTALL)
README_BLOCKS = PYTHON_BLOCK.findall((ROOT / "README.md").read_text())
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
