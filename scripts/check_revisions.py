"""Curate, generate, import and type-check every published revision (`make check-revisions`).

    python scripts/check_revisions.py [--specs DIR] [--jobs 2] [--facade-tests REV ...]

For each stable_<revision>.json in DIR (default ../shared/klaviyo-openapi/revisions, beside the
repository), in a temporary directory: scripts/curate.py (with the committed rate-limit floor,
read only), openapi-spec-validator on the result, scripts/generate.py, an import of every
generated module and of the facade on top of it (with all 18 operations, the nine job kinds'
GETs and lists, each a method of both clients), and `mypy --strict` on the generated package
and the facade together. For the revisions named by --facade-tests (the oldest, the seeds' and
the newest by default), the facade's tests then run against that generated package: it comes
first on PYTHONPATH, so the facade imports it and the fake serves that revision's shape.

Nothing in the repository is written. Exit status 0 only if every step passed for every
revision; a failing step's output is printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT.parent / "shared" / "klaviyo-openapi" / "revisions"
PACKAGE = "klaviyo_catalog_api"
SEED_REVISION = "2023-01-24"  # the revision of the seed documents the project started from
# The tests that exercise the facade and the fake end to end. The others check the committed
# openapi/ and generated/ themselves (spec, curation, packaging, README), or limiter timing
# that no revision changes.
FACADE_TESTS = (
    "tests/calls/test_facade.py",
    "tests/calls/test_job_family.py",
    "tests/calls/test_operations.py",
    "tests/fake/test_fake_klaviyo.py",
    "tests/hostile/test_security.py",
    "tests/hostile/test_pagination_faults.py",
    "tests/hostile/test_fault_matrix.py",
    "tests/cli/test_cli.py",
)
# Every published revision since 2022-10-17 has the 18 catalog bulk-job GETs: each of the nine
# kinds' single-job GET and list (shared/NOTES.md, 2026-12-07). One the curation lost would
# otherwise pass every step, as a client with fewer methods.
NOUNS, VERBS = ("item", "variant", "category"), ("create", "update", "delete")
EXPECTED_OPERATIONS = tuple(
    name
    for noun in NOUNS
    for verb in VERBS
    for name in (f"get_{noun}_{verb}_job", f"list_{noun}_{verb}_jobs")
)
# Every module the generator writes, and the facade: importing them proves the names line up;
# and every expected operation is in the generated table, and a method of both clients.
IMPORT_CHECK = f"""
import importlib, pkgutil, sys
import {PACKAGE} as package
from {PACKAGE}.catalog_spec import OPERATIONS, REVISION
assert package.__file__.startswith(sys.argv[1]), package.__file__
assert REVISION == sys.argv[2], (REVISION, sys.argv[2])
for module in pkgutil.walk_packages(package.__path__, "{PACKAGE}."):
    importlib.import_module(module.name)
import klaviyo_catalog, klaviyo_catalog.testing
assert klaviyo_catalog.testing.DEFAULT_REVISION == REVISION
expected = sys.argv[3].split(",")
missing = [name for name in expected if name not in OPERATIONS]
assert not missing, f"the generated package lacks {{len(missing)}} operation(s): {{missing}}"
walks = [name.replace("list_", "iter_", 1) for name in expected if name.startswith("list_")]
for client in (klaviyo_catalog.CatalogJobs, klaviyo_catalog.AsyncCatalogJobs):
    absent = [name for name in expected + walks if not callable(getattr(client, name, None))]
    assert not absent, f"{{client.__name__}} lacks {{absent}}"
print(f"{{len(expected)}} operations, {{len(walks)}} walks, on both clients")
"""


@dataclass
class Result:
    """What happened to one revision: each step's name, whether it passed, and its time."""

    revision: str
    steps: list[tuple[str, bool, float]] = field(default_factory=list)
    failure: str = ""

    @property
    def ok(self) -> bool:
        return not self.failure


def run(step: str, result: Result, argv: Sequence[str], **kwargs: object) -> bool:
    """Run one step; on failure record its output and return False."""
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    passed = done.returncode == 0
    result.steps.append((step, passed, time.monotonic() - started))
    if not passed:
        output = f"{done.stdout}{done.stderr}".strip().splitlines()
        result.failure = f"{step} failed (exit {done.returncode}):\n" + "\n".join(output[-40:])
    return bool(passed)


def tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def check(source: Path, work: Path, facade_tests: bool) -> Result:
    """Every step for one published spec, in work/ (a fresh directory)."""
    revision = source.stem.removeprefix("stable_")
    result = Result(revision)
    spec = work / "spec.yaml"
    pkg = work / "pkg"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")]))
    mypy_env = dict(os.environ, MYPYPATH=os.pathsep.join([str(pkg), str(ROOT / "facade")]))
    py = sys.executable
    curate, generate = str(ROOT / "scripts" / "curate.py"), str(ROOT / "scripts" / "generate.py")
    # mypy runs from work/, so that the repository's config (mypy_path: generated/) is not read.
    mypy = [tool("mypy"), "--strict", "--cache-dir", str(work / ".mypy_cache")]
    steps: list[tuple[str, list[str], dict[str, object]]] = [
        ("curate", [py, curate, str(source), "-o", str(spec)], {}),
        ("validate", [tool("openapi-spec-validator"), str(spec)], {}),
        ("generate", [py, generate, "--spec", str(spec), "--out", str(pkg / PACKAGE)], {}),
        (
            "import",
            [py, "-c", IMPORT_CHECK, str(pkg), revision, ",".join(EXPECTED_OPERATIONS)],
            {"env": env, "cwd": work},
        ),
        ("mypy", [*mypy, "-p", PACKAGE, "-p", "klaviyo_catalog"], {"env": mypy_env, "cwd": work}),
    ]
    ok = all(run(name, result, argv, **kwargs) for name, argv, kwargs in steps)
    if ok and facade_tests:
        run(
            "facade tests",
            result,
            [py, "-m", "pytest", "-q", "-n", "2", *FACADE_TESTS],  # two revisions at once
            env=env,
            cwd=ROOT,
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", type=Path, default=SPECS, help="dir of stable_<rev>.json")
    parser.add_argument("--jobs", type=int, default=2, help="revisions checked at once")
    parser.add_argument(
        "--facade-tests",
        nargs="*",
        default=None,
        metavar="REVISION",
        help="revisions whose generated package the facade's tests run against "
        f"(default: the oldest, {SEED_REVISION} and the newest in --specs)",
    )
    parser.add_argument("--only", nargs="*", metavar="REVISION", help="check just these")
    args = parser.parse_args(argv)
    specs: Path = args.specs
    sources = sorted(specs.glob("stable_*.json"))
    if args.only:
        sources = [s for s in sources if s.stem.removeprefix("stable_") in args.only]
    if not sources:
        print(f"check-revisions: no stable_<revision>.json in {specs}", file=sys.stderr)
        return 2
    revisions = [s.stem.removeprefix("stable_") for s in sources]
    facade: set[str] = set(
        args.facade_tests
        if args.facade_tests is not None
        else {revisions[0], revisions[-1]} | ({SEED_REVISION} & set(revisions))
    )
    if facade:
        print(f"check-revisions: the facade's tests run on {', '.join(sorted(facade))}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="check-revisions-") as tmp:
        # The facade-test revisions first: they take longest, so they should not start last.
        order = sorted(sources, key=lambda s: s.stem.removeprefix("stable_") not in facade)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures: list[Future[Result]] = []
            for source in order:
                work = Path(tmp) / source.stem
                work.mkdir()
                wanted = source.stem.removeprefix("stable_") in facade
                futures.append(pool.submit(check, source, work, wanted))
            results = sorted((f.result() for f in futures), key=lambda r: r.revision)
    for result in results:
        steps = ", ".join(
            f"{name} {'ok' if ok else 'FAILED'} {secs:.0f}s" for name, ok, secs in result.steps
        )
        print(f"{result.revision}: {steps}")
    failed = [r for r in results if not r.ok]
    for result in failed:
        print(f"\n--- {result.revision}: {result.failure}", file=sys.stderr)
    elapsed = time.monotonic() - started
    print(
        f"check-revisions: {len(results) - len(failed)}/{len(results)} revisions passed "
        f"in {elapsed:.0f}s ({args.jobs} at once)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
