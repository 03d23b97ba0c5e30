"""The README's table of Klaviyo's published revisions, made from the specs themselves.

    python scripts/revision_table.py [--specs DIR] [--as-of YYYY-MM-DD] [--write | --check]

For each stable_<revision>.json in DIR (default ../shared/klaviyo-openapi/revisions): its shape
(path style, media type, where the job id is), the rate limits it publishes and the ones the
client applies after curation (see openapi/rate-limit-floor.yaml), and its lifecycle status on
the --as-of day (default today) by Klaviyo's rule. Prints the table; `--write` puts it into
README.md between its markers; `--check` fails if the README's table, made again for the day it
states, differs (CI runs it through `make check-revisions`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file: make `scripts.curate` importable

from klaviyo_catalog import revision_lifecycle  # noqa: E402

from scripts import curate  # noqa: E402

SPECS = ROOT.parent / "shared" / "klaviyo-openapi" / "revisions"
README = ROOT / "README.md"
BEGIN = "<!-- revision-table: made by scripts/revision_table.py --write; do not edit by hand -->"
END = "<!-- /revision-table -->"
AS_OF = re.compile(r"Lifecycle status as of (\d{4}-\d{2}-\d{2})")


def kind_of(operation_id: str) -> str:
    """The job kind an operation reads: get_item_update_job -> item-update."""
    name = operation_id.removeprefix("get_").removeprefix("list_")
    return name.removesuffix("_jobs").removesuffix("_job").replace("_", "-")


def limits_cell(limits: Mapping[str, Mapping[str, str]]) -> str:
    """'75/s + 750/m (item-create, ...); 350/s + 3500/m (the rest)', or one value for all."""
    groups: dict[str, dict[str, None]] = {}
    for name in sorted(limits):
        rate = " + ".join(limits[name][w] for w in curate.WINDOWS if w in limits[name])
        groups.setdefault(rate, {})[kind_of(name)] = None
    if len(groups) == 1:
        return next(iter(groups))
    # The largest group is "the rest"; the others name their kinds.
    ordered = sorted(groups.items(), key=lambda group: len(group[1]))
    cells = [f"{rate} ({', '.join(kinds)})" for rate, kinds in ordered[:-1]]
    return "; ".join([*cells, f"{ordered[-1][0]} (the rest)"])


def job_id_place(published: dict[str, Any]) -> str:
    """Where the item update job's id is, in the published schema of its document."""
    _, _, op = curate.find_operations(published)["get_item_update_job"]
    media = curate.content_type(op)
    document = curate.Resolver(published).resolve(
        op["responses"]["200"]["content"][media]["schema"]
    )
    data = document["properties"]["data"]
    attributes = data.get("properties", {}).get("attributes", {}).get("properties", {})
    places = []
    if "id" in data.get("properties", {}):
        places.append("`data.id`")
    if "job_id" in attributes:
        places.append("`attributes.job_id`")
    return " and ".join(places) or "nowhere"


def row(source: Path, floor: dict[str, Any] | None, as_of: dt.date) -> list[str]:
    published = json.loads(source.read_text(encoding="utf-8"))
    curated = curate.curate(published, source.name, floor)
    revision = str(curated["info"]["version"])
    ops = {
        item["get"]["operationId"]: (path, item["get"]) for path, item in curated["paths"].items()
    }
    path, item_op = ops["get_item_update_job"]
    applied = {name: op["x-klaviyo-ratelimit"] for name, (_, op) in ops.items()}
    own = {
        name: op.get("x-klaviyo-ratelimit-published", op["x-klaviyo-ratelimit"])
        for name, (_, op) in ops.items()
    }
    lifecycle = revision_lifecycle(revision, today=as_of)
    return [
        revision,
        "trailing slash" if path.endswith("/") else "no trailing slash",
        f"`{next(iter(item_op['responses']['200']['content']))}`",
        job_id_place(published),
        limits_cell(own),
        limits_cell(applied) if applied != own else "the same",
        {
            "stable": f"stable; deprecated from {lifecycle.deprecated_on}",
            "deprecated": f"deprecated; retires {lifecycle.retired_on}",
            "retired": f"retired since {lifecycle.retired_on}",
        }[lifecycle.status.value],
    ]


def table(sources: Iterable[Path], as_of: dt.date) -> str:
    floor = curate.load_floor(curate.FLOOR)
    header = [
        "revision",
        "paths",
        "media type",
        "job id",
        "published limits",
        "applied limits",
        f"Lifecycle status as of {as_of}",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row(s, floor, as_of)) + " |" for s in sources)
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + block + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", type=Path, default=SPECS, help="dir of stable_<rev>.json")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="day of the status column")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update README.md")
    mode.add_argument("--check", action="store_true", help="fail if README.md is stale")
    args = parser.parse_args(argv)
    specs: Path = args.specs
    sources = sorted(specs.glob("stable_*.json"))
    if not sources:
        print(f"revision_table: no stable_<revision>.json in {specs}", file=sys.stderr)
        return 2
    readme = README.read_text(encoding="utf-8")
    as_of: dt.date | None = args.as_of
    if as_of is None and args.check:
        stated = AS_OF.search(readme[readme.find(BEGIN) :])
        if stated is None:
            print("revision_table: README.md has no revision table", file=sys.stderr)
            return 1
        as_of = dt.date.fromisoformat(stated.group(1))
    made = table(sources, as_of or dt.datetime.now(dt.UTC).date())
    if args.write:
        README.write_text(replace_block(readme, made), encoding="utf-8")
    elif args.check:
        if replace_block(readme, made) != readme:
            print(
                "revision_table: README.md's table is stale; run scripts/revision_table.py --write",
                file=sys.stderr,
            )
            return 1
        print(f"revision_table: README.md's table of {len(sources)} revisions is current")
    else:
        sys.stdout.write(made)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
