"""The README's Python examples run as written; the test functions it shows pass."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from klaviyo_catalog.testing import FakeKlaviyo

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2


def test_every_python_example_runs() -> None:
    for block in BLOCKS:
        namespace: dict[str, Any] = {"__name__": "readme"}
        exec(compile(block, "README.md", "exec"), namespace)
        for name, function in namespace.items():
            if name.startswith("test_") and callable(function):
                with FakeKlaviyo() as fake:  # what the fake_klaviyo fixture provides
                    function(fake)
