"""Write the trimmed extracts of Klaviyo's published specs that the tests use.

    python scripts/extract_klaviyo_specs.py [--source ../shared/klaviyo-openapi/revisions]
                                            [--out tests/fixtures/klaviyo-openapi] [REVISION ...]

An extract keeps, of one published spec, only the catalog bulk-job GETs (found the way
scripts/curate.py finds them) and every component they reference, with descriptions, summaries
and examples dropped: facts, not Klaviyo's prose. The tests need them because a clone has no
../shared beside it. Klaviyo's MIT licence notice is copied beside them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file: make `scripts.curate` importable

from scripts import curate  # noqa: E402

SOURCE = ROOT.parent / "shared" / "klaviyo-openapi" / "revisions"
OUT = ROOT / "tests" / "fixtures" / "klaviyo-openapi"
LICENCE = "LICENSE-klaviyo-openapi"
# The revisions the tests read: the oldest, the seeds', the id move, the path and media type
# change, and the newest.
DEFAULT_REVISIONS = ("2022-10-17", "2023-01-24", "2023-12-15", "2024-10-15", "2026-07-15")
PROSE = frozenset({"description", "summary", "example", "examples"})
# Maps whose keys are names, not keywords: a property may well be called "description".
NAME_MAPS = frozenset({"properties", "schemas", "responses", "content", "securitySchemes"})


def without_prose(node: Any, names: bool = False) -> Any:
    """A copy of node without prose keywords (keys of name maps are kept whatever they are)."""
    if isinstance(node, list):
        return [without_prose(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: without_prose(value) for key, value in node.items()}
    return {
        key: without_prose(value, names=key in NAME_MAPS)
        for key, value in node.items()
        if key not in PROSE
    }


def references(node: Any) -> Iterable[str]:
    """Every local $ref pointer under node."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """The catalog bulk-job GETs of one published spec and the components they reference."""
    found = curate.find_operations(spec)
    paths = {path: {"get": op} for _, path, op in sorted(found.values(), key=lambda f: f[1])}
    resolver = curate.Resolver(spec)
    kept: dict[str, dict[str, Any]] = {}
    pending = list(references(paths))
    while pending:
        pointer = pending.pop()
        parts = pointer.split("/")
        if len(parts) != 4 or parts[:2] != ["#", "components"]:
            raise curate.CurationError(f"unexpected $ref {pointer!r}")
        section, name = parts[2], parts[3]
        if name in kept.setdefault(section, {}):
            continue
        target = resolver.lookup(pointer)
        kept[section][name] = target
        pending.extend(references(target))
    schemes = spec.get("components", {}).get("securitySchemes")
    if schemes:
        kept["securitySchemes"] = schemes
    info = spec["info"]
    out: dict[str, Any] = {
        "openapi": spec["openapi"],
        "info": {"title": info.get("title", ""), "version": info["version"]},
        "servers": [{"url": s["url"]} for s in spec.get("servers", [])],
        "paths": paths,
        "components": {section: dict(sorted(kept[section].items())) for section in sorted(kept)},
    }
    if "security" in spec:
        out["security"] = spec["security"]
    trimmed: dict[str, Any] = without_prose(out)
    # OpenAPI requires a description on each response object: an empty one, not Klaviyo's.
    responses = [r for item in trimmed["paths"].values() for r in item["get"]["responses"].values()]
    responses.extend(trimmed["components"].get("responses", {}).values())
    for response in responses:
        if "$ref" not in response:
            response["description"] = ""
    trimmed["info"]["x-extract"] = (
        "Trimmed from Klaviyo's published spec by scripts/extract_klaviyo_specs.py: the "
        "catalog bulk-job GETs and what they reference, without prose. MIT licence: "
        f"{LICENCE}."
    )
    return trimmed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revisions", nargs="*", default=list(DEFAULT_REVISIONS))
    parser.add_argument("--source", type=Path, default=SOURCE, help="stable_<revision>.json dir")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the extracts")
    args = parser.parse_args(argv)
    source: Path = args.source
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    licence = source / LICENCE
    if not licence.exists():
        licence = source.parent / LICENCE
    shutil.copyfile(licence, out / LICENCE)
    for revision in args.revisions:
        name = f"stable_{revision}.json"
        spec = json.loads((source / name).read_text(encoding="utf-8"))
        text = json.dumps(extract(spec), indent=1, sort_keys=False, ensure_ascii=False)
        (out / name).write_text(text + "\n", encoding="utf-8")
        print(f"extract: wrote {out / name} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
