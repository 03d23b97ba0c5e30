"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert BLOCKS


def test_every_python_example_runs() -> None:
    for block in BLOCKS:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
