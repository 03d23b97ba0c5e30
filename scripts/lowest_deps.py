#!/usr/bin/env python3
"""The lowest versions of the runtime dependencies that pyproject.toml allows, as pip constraints.

    python3 scripts/lowest_deps.py > constraints.txt     # "attrs==23.2.0", one a line
    python scripts/lowest_deps.py --check                # the running interpreter has them?

`make test-lowest` installs the project with these constraints and runs the tests, so that a
lower bound is a version the tests passed on, not a guess. Every runtime dependency must have
a `>=` bound: without one there is no lowest version to test.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# name, optional extras, then the specifiers: "httpx[http2]>=0.27,<1".
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^]]*\])?\s*(.*)$")


def lowest(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """Each runtime dependency's name and its `>=` lower bound."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    bounds: dict[str, str] = {}
    for requirement in project.get("dependencies", []):
        match = REQUIREMENT.match(requirement.split(";")[0])
        if match is None:
            raise SystemExit(f"cannot read the requirement {requirement!r}")
        name, specifiers = match.groups()
        floor = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip()[:2] == ">="]
        if len(floor) != 1:
            raise SystemExit(f"{requirement!r} needs exactly one '>=' lower bound")
        bounds[name] = floor[0]
    return bounds


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version, trailing zeros dropped: 0.27 is 0.27.0."""
    parts = [int(p) for p in re.findall(r"\d+", version.split("+")[0])]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="fail unless this interpreter has exactly the lowest versions installed",
    )
    args = parser.parse_args()
    bounds = lowest()
    if not args.check:
        print("\n".join(f"{name}=={version}" for name, version in bounds.items()))
        return 0
    wrong = []
    for name, version in bounds.items():
        installed = metadata.version(name)
        if _release(installed) != _release(version):
            wrong.append(f"{name} {installed} is installed, the lower bound is {version}")
    print("\n".join(wrong) or f"lowest versions installed: {bounds}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
