#!/usr/bin/env python3
"""`make bench`: the facade against the floor (httpx + json) and the official SDK, side by side.

    .venv-bench/bin/python scripts/bench.py            # full run, writes BENCHMARKS.md
    .venv/bin/python scripts/bench.py --quick          # a smoke run for CI; writes nothing
    scripts/bench.py --only cpu,profile --json out.json

Every server is FakeKlaviyo on 127.0.0.1, in a process of its own, so `time.process_time` in
the client process counts the client only. Every client runs in a fresh interpreter. The
official SDK (`klaviyo-api` 25.0.0) is never a dependency of the project: it lives in
.venv-bench (requirements-bench.txt), and its measurements run with that interpreter.

Sections: 1 `cpu` (CPU per single-job call at 0/10/100 included items), 2 `listing` (10,000
jobs over 100 pages vs 1,000 over 10: wall, CPU, peak RSS), 3 `startup` (import + first call),
4 `async` (50 calls in flight), `tasks` (20, 100 and 500 tasks on one
AsyncCatalogJobs), 5 `ratelimit` (Klaviyo's real limits, one process and four
sharing Redis, and the limiter's own cost), 6 `waiting` (1,000 running jobs finishing at
random within 2 minutes: wait_for_jobs against per-job wait_for_job), and `profile`
(cProfile, pyinstrument and micro-benchmarks of the facade's 100-item call).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `scripts.bench_lib` importable
    sys.path.insert(0, str(ROOT))

from scripts.bench_lib import report, waiting  # noqa: E402
from scripts.bench_lib.common import (  # noqa: E402
    BENCH_VENV_PYTHON,
    BenchError,
    Json,
    machine_info,
    median,
    package_version,
    python_version,
    run_json,
    run_worker,
)
from scripts.bench_lib.fake_server import FakeServer  # noqa: E402
from scripts.bench_lib.windows import analyse  # noqa: E402
from scripts.bench_lib.workers import STARTUP  # noqa: E402

SECTIONS = ("cpu", "listing", "startup", "async", "tasks", "ratelimit", "waiting", "profile")
KLAVIYO_LIMITS = [(350, 1.0), (3500, 60.0)]
JITTER_LIMITS = [(75, 1.0), (750, 60.0)]  # 2026-07-15's item and variant job limits
UPLINK_JITTER = 0.06  # each request waits 0-60 ms in the fake before it is counted
SDK_VERSION = "25.0.0"


@dataclass(frozen=True)
class Config:
    quick: bool = False
    sizes: tuple[int, ...] = (0, 10, 100)
    cpu_calls: int = 1000
    cpu_rounds: int = 5
    cpu_warmup: int = 100
    listing_jobs: tuple[int, int] = (1_000, 10_000)
    listing_rounds: int = 3
    startup_rounds: int = 7
    async_calls: int = 3_000
    async_latency_calls: int = 2_000
    async_latency: float = 0.05
    async_concurrency: int = 50
    async_items: int = 10
    async_rounds: int = 3
    tasks_counts: tuple[int, ...] = (20, 100, 500)
    tasks_calls: int = 2_000
    tasks_rounds: int = 3
    rl_seconds: float = 75.0
    rl_diag_seconds: float = 15.0
    rl_processes: int = 4
    limiter_n_memory: int = 200_000
    limiter_n_redis: int = 5_000
    profile_calls: int = 1_000
    micro_n: int = 2_000
    waiting_jobs: int = 500  # per kind: item-create and variant-update
    waiting_span: float = 120.0
    waiting_interval: float = 5.0


QUICK = Config(
    quick=True,
    cpu_calls=30,
    cpu_rounds=1,
    cpu_warmup=5,
    listing_jobs=(200, 1_000),
    listing_rounds=1,
    startup_rounds=1,
    async_calls=150,
    async_latency_calls=100,
    async_rounds=1,
    tasks_calls=500,
    tasks_rounds=1,
    rl_seconds=1.5,
    rl_diag_seconds=1.5,
    limiter_n_memory=5_000,
    limiter_n_redis=200,
    profile_calls=30,
    micro_n=50,
    waiting_jobs=40,
    waiting_span=6.0,
    waiting_interval=1.0,
)


@dataclass(frozen=True)
class Env:
    python: str  # facade, floor, fake
    sdk_python: str | None  # None: the SDK is skipped
    profile_python: str
    revision: str  # the facade's
    sdk_revision: str | None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- 1. CPU per call -------------------------------------------------------------------------


def bench_cpu(cfg: Config, env: Env) -> Json:
    clients = ["floor", "facade", "facade-json"] + (["sdk"] if env.sdk_python else [])
    runs: dict[str, dict[int, list[Json]]] = {c: {n: [] for n in cfg.sizes} for c in clients}
    bodies: dict[int, dict[str, int]] = {}
    with FakeServer(rate_limits=None, python=env.python) as fake:
        revisions = (env.revision, *([env.sdk_revision] if env.sdk_revision else []))
        jobs = {
            n: fake.add_jobs("item-update", items=n, status="complete", revisions=revisions)
            for n in cfg.sizes
        }
        for n in cfg.sizes:
            bodies[n] = body_sizes(fake.api_key, jobs[n]["urls"])
            for r in range(cfg.cpu_rounds):
                order = clients[r % len(clients) :] + clients[: r % len(clients)]
                for client in order:
                    args = {
                        "client": client,
                        "base_url": fake.base_url,
                        "api_key": fake.api_key,
                        "job_id": jobs[n]["ids"][0],
                        "url": jobs[n]["urls"][env.revision],
                        "revision": env.revision,
                        "calls": cfg.cpu_calls,
                        "warmup": cfg.cpu_warmup,
                    }
                    python = env.sdk_python if client == "sdk" else env.python
                    assert python is not None
                    result = run_worker(python, "cpu", args)
                    runs[client][n].append(result)
                    log(f"cpu {n:>3} items, round {r + 1}, {client}: {result['cpu_us']:.0f} µs")
        server = fake.stats()
    summary: Json = {}
    for client in clients:
        summary[client] = {}
        for n in cfg.sizes:
            cpu = [x["cpu_us"] for x in runs[client][n]]
            floor = median([x["cpu_us"] for x in runs["floor"][n]])
            summary[client][str(n)] = {
                "cpu_us": median(cpu),
                "cpu_rounds": cpu,
                "wall_us": median([x["wall_us"] for x in runs[client][n]]),
                "ratio_to_floor": median(cpu) / floor,
                "items_per_call": runs[client][n][0]["items_per_call"],
                "price_sum": runs[client][n][0]["price_sum"],
            }
            if client == "sdk":
                summary[client][str(n)]["catalogs_property_us"] = median(
                    [x["catalogs_property_us"] for x in runs[client][n]]
                )
    same = all(
        len({round(summary[c][str(n)]["price_sum"], 6) for c in clients}) == 1 for n in cfg.sizes
    )
    return {
        "clients": clients,
        "sizes": list(cfg.sizes),
        "summary": summary,
        "bodies": {str(n): b for n, b in bodies.items()},
        "same_values_read": same,
        "server_errors": server["internal_errors"],
    }


def body_sizes(api_key: str, urls: dict[str, str]) -> dict[str, int]:
    """The size of the 200 body each revision's client gets, as served to it."""
    import httpx

    sizes = {}
    for revision, url in urls.items():
        accept = "application/json" if revision < "2024-10-15" else "application/vnd.api+json"
        headers = {
            "Authorization": f"Klaviyo-API-Key {api_key}",
            "revision": revision,
            "Accept": accept,
        }
        response = httpx.get(url, params={"include": "items"}, headers=headers)
        response.raise_for_status()
        sizes[revision] = len(response.content)
    return sizes


# --- 2. listing ------------------------------------------------------------------------------


def bench_listing(cfg: Config, env: Env) -> Json:
    clients = ("facade", "floor")
    runs: dict[str, dict[int, list[Json]]] = {c: {n: [] for n in cfg.listing_jobs} for c in clients}
    fakes = {n: FakeServer(rate_limits=None, python=env.python) for n in cfg.listing_jobs}
    try:
        lists = {}
        for n, fake in fakes.items():
            added = fake.add_jobs("item-create", n, status="complete", revisions=(env.revision,))
            lists[n] = added["list_urls"][env.revision]
        for r in range(cfg.listing_rounds):
            for n, fake in fakes.items():
                for client in clients:
                    args = {
                        "client": client,
                        "base_url": fake.base_url,
                        "api_key": fake.api_key,
                        "url": lists[n],
                        "revision": env.revision,
                    }
                    result = run_worker(env.python, "listing", args)
                    if result["jobs"] != n:
                        raise BenchError(f"listing {client}: read {result['jobs']} of {n} jobs")
                    runs[client][n].append(result)
                    log(
                        f"listing {n} jobs, round {r + 1}, {client}: {result['wall_s']:.2f} s, "
                        f"peak RSS {result['peak_rss_kb'] / 1024:.1f} MiB"
                    )
    finally:
        for fake in fakes.values():
            fake.close()
    summary: Json = {}
    for client in clients:
        summary[client] = {}
        for n in cfg.listing_jobs:
            rs = runs[client][n]
            summary[client][str(n)] = {
                "pages": -(-n // 100),
                "wall_s": median([x["wall_s"] for x in rs]),
                "cpu_s": median([x["cpu_s"] for x in rs]),
                "cpu_us_per_job": median([x["cpu_s"] for x in rs]) / n * 1e6,
                "rss_ready_kb": median([x["rss_ready_kb"] for x in rs]),
                "peak_rss_kb": median([x["peak_rss_kb"] for x in rs]),
                "peak_rss_rounds_kb": [x["peak_rss_kb"] for x in rs],
            }
    return {"clients": list(clients), "jobs": list(cfg.listing_jobs), "summary": summary}


# --- 3. start-up -----------------------------------------------------------------------------


def bench_startup(cfg: Config, env: Env) -> Json:
    names = [name for name in STARTUP if env.sdk_python or "klaviyo-api" not in name]
    runs: dict[str, list[Json]] = {name: [] for name in names}
    with FakeServer(rate_limits=None, python=env.python) as fake:
        added = fake.add_jobs("item-update", items=10, status="complete", revisions=(env.revision,))
        argv = [fake.api_key, fake.base_url, added["ids"][0], added["urls"][env.revision]]
        for r in range(cfg.startup_rounds):
            for name in names:
                python = env.sdk_python if "klaviyo-api" in name else env.python
                assert python is not None
                result, wall = run_json(
                    [python, "-c", STARTUP[name], *argv, env.revision], timeout=120
                )
                result["process_wall_s"] = wall
                runs[name].append(result)
                log(f"startup round {r + 1}, {name}: {wall * 1000:.0f} ms")
    summary = {
        name: {
            key: median([x[key] for x in rs])
            for key in ("process_wall_s", "import_s", "first_call_s", "maxrss_kb", "modules")
        }
        for name, rs in runs.items()
    }
    return {"names": names, "summary": summary, "python": env.python}


# --- 4. async --------------------------------------------------------------------------------


def bench_async(cfg: Config, env: Env) -> Json:
    """Calls in flight at once, without added latency (CPU-bound: the overhead shows) and with
    a network-like delay before each answer (where concurrency pays)."""
    scenarios = [
        (0.0, 1, cfg.async_calls),
        (0.0, cfg.async_concurrency, cfg.async_calls),
        (cfg.async_latency, cfg.async_concurrency, cfg.async_latency_calls),
    ]
    runs: dict[tuple[float, int, str], list[Json]] = {}
    with FakeServer(rate_limits=None, python=env.python) as fake:
        added = fake.add_jobs(
            "item-update", items=cfg.async_items, status="complete", revisions=(env.revision,)
        )
        common = {
            "base_url": fake.base_url,
            "api_key": fake.api_key,
            "job_id": added["ids"][0],
            "url": added["urls"][env.revision],
            "revision": env.revision,
        }
        for r in range(cfg.async_rounds):
            for latency, concurrency, calls in scenarios:
                fake.set_latency(latency)
                for client in ("facade", "floor"):
                    before = fake.stats()
                    args = {**common, "client": client, "calls": calls}
                    result = run_worker(env.python, "async", {**args, "concurrency": concurrency})
                    after = fake.stats()
                    served = after["requests"] - before["requests"]
                    result["server_cpu_us"] = (after["cpu_s"] - before["cpu_s"]) / served * 1e6
                    runs.setdefault((latency, concurrency, client), []).append(result)
                    log(
                        f"async round {r + 1}, +{latency * 1000:.0f} ms, {concurrency} in flight, "
                        f"{client}: {result['per_s']:.0f} calls/s"
                    )
            for latency in sorted({s[0] for s in scenarios}):
                fake.set_latency(latency)
                calls = cfg.async_calls // 3 if latency == 0 else max(10, int(2 / latency))
                sync_args = {**common, "client": "facade", "calls": calls, "warmup": 5}
                result = run_worker(env.python, "cpu", sync_args)
                result["per_s"] = 1e6 / result["wall_us"]
                runs.setdefault((latency, 1, "facade (sync CatalogJobs)"), []).append(result)
        fake.set_latency(0.0)
    rows = []
    for (latency, concurrency, client), rs in sorted(runs.items(), key=lambda kv: kv[0][:2]):
        rows.append(
            {
                "latency_ms": latency * 1000,
                "concurrency": concurrency,
                "client": client,
                "per_s": median([x["per_s"] for x in rs]),
                "cpu_us": median([x["cpu_us"] for x in rs]),
                "server_cpu_us": median([x.get("server_cpu_us", float("nan")) for x in rs]),
            }
        )
    return {"concurrency": cfg.async_concurrency, "items": cfg.async_items, "rows": rows}


# --- 4b. many tasks on one client -------------------------------------------------------------


def bench_tasks(cfg: Config, env: Env) -> Json:
    """One AsyncCatalogJobs shared by 20, 100 and 500 tasks: calls beyond its pool wait in the
    client, so throughput should hold (the goal: 500 tasks at >= 80 % of 20 tasks' rate)."""
    runs: dict[int, list[Json]] = {n: [] for n in cfg.tasks_counts}
    with FakeServer(rate_limits=None, python=env.python) as fake:
        added = fake.add_jobs("item-update", status="complete", revisions=(env.revision,))
        args = {"base_url": fake.base_url, "api_key": fake.api_key, "job_id": added["ids"][0]}
        for r in range(cfg.tasks_rounds):
            for tasks in cfg.tasks_counts:
                result = run_worker(
                    env.python, "tasks", {**args, "tasks": tasks, "calls": cfg.tasks_calls}
                )
                runs[tasks].append(result)
                log(
                    f"tasks round {r + 1}, {tasks} tasks: {result['per_s']:.0f} calls/s, "
                    f"{result['connections']} connections"
                )
    rows = [
        {
            "tasks": tasks,
            "per_s": median([x["per_s"] for x in rs]),
            "connections": median([x["connections"] for x in rs]),
        }
        for tasks, rs in runs.items()
    ]
    return {"calls": cfg.tasks_calls, "rounds": cfg.tasks_rounds, "rows": rows}


# --- 5. rate limits --------------------------------------------------------------------------


def rate_run(
    env: Env,
    seconds: float,
    processes: int,
    redis_url: str | None,
    *,
    hints: bool = True,
    limits: list[tuple[int, float]] = KLAVIYO_LIMITS,
    jitter: float = 0.0,
    threads: int = 1,
) -> Json:
    with FakeServer(rate_limits=limits, python=env.python) as fake:
        fake.command("jitter", {"seconds": jitter})
        job = fake.add_jobs("item-update", items=0, status="complete")["ids"][0]
        start_at = time.time() + 2.0 + 0.5 * processes  # every process imported by then
        args = {
            "base_url": fake.base_url,
            "api_key": fake.api_key,
            "job_id": job,
            "rates": limits,
            "redis_url": redis_url,
            "hints": hints,
            "start_at": start_at,
            "duration": seconds,
            "threads": threads,
        }
        with concurrent.futures.ThreadPoolExecutor(processes) as pool:
            futures = [
                pool.submit(
                    run_worker, env.python, "rate_client", args, timeout=seconds + 120, retries=0
                )
                for _ in range(processes)
            ]
            clients = [f.result() for f in futures]
        entries = fake.log()
    result = analyse(entries, seconds, limits)
    outcomes: dict[str, int] = {}
    for client in clients:
        for name, count in client["outcomes"].items():
            outcomes[name] = outcomes.get(name, 0) + count
    result.update(
        processes=processes, client_outcomes=outcomes, redis=redis_url is not None, hints=hints
    )
    result["client_cpu_s"] = sum(c["cpu_s"] for c in clients)
    return result


def bench_ratelimit(cfg: Config, env: Env) -> Json:
    out: Json = {"limits": KLAVIYO_LIMITS, "seconds": cfg.rl_seconds, "runs": {}}
    log(f"rate limit: one process, in-memory limiter, {cfg.rl_seconds:g} s")
    out["runs"]["memory"] = rate_run(env, cfg.rl_seconds, 1, None)
    # Diagnostic: the same limiter with its adaptive slowing (`observe`) switched off, long
    # enough to use a whole minute's quota; the difference is what the hints cost.
    log(f"rate limit: one process, in-memory limiter without hints, {cfg.rl_diag_seconds:g} s")
    out["runs"]["memory_no_hints"] = rate_run(env, cfg.rl_diag_seconds, 1, None, hints=False)
    log(f"rate limit: in-memory limiter, 0-60 ms uplink jitter, {cfg.rl_seconds:g} s")
    out["runs"]["memory_jitter"] = rate_run(
        env, cfg.rl_seconds, 1, None, limits=JITTER_LIMITS, jitter=UPLINK_JITTER, threads=8
    )
    out["overhead"] = run_worker(env.python, "limiter_overhead", {"n": cfg.limiter_n_memory})
    redis_ok = bool(shutil.which("redis-server")) and importlib.util.find_spec("redis") is not None
    if not redis_ok:
        out["redis_skipped"] = "redis-server or redis-py is missing"
        return out
    from klaviyo_catalog.testing import running_redis_server

    with running_redis_server() as server:
        url = server.url
        log(f"rate limit: {cfg.rl_processes} processes sharing Redis, {cfg.rl_seconds:g} s")
        out["runs"]["redis"] = rate_run(env, cfg.rl_seconds, cfg.rl_processes, url)
        overhead = run_worker(
            env.python, "limiter_overhead", {"n": cfg.limiter_n_redis, "redis_url": url}
        )
        out["overhead"].update(overhead)
    return out


# --- 6. waiting for many jobs -----------------------------------------------------------------


def bench_waiting(cfg: Config, env: Env) -> Json:
    return waiting.bench_waiting(
        cfg.waiting_jobs, cfg.waiting_span, cfg.waiting_interval, env.python
    )


# --- profile ---------------------------------------------------------------------------------


def bench_profile(cfg: Config, env: Env) -> Json:
    with FakeServer(rate_limits=None, python=env.python) as fake:
        added = fake.add_jobs(
            "item-update", items=100, status="complete", revisions=(env.revision,)
        )
        args = {
            "base_url": fake.base_url,
            "api_key": fake.api_key,
            "job_id": added["ids"][0],
            "url": added["urls"][env.revision],
            "revision": env.revision,
            "calls": cfg.profile_calls,
            "warmup": 50,
            "n": cfg.micro_n,
        }
        log("profile: cProfile and pyinstrument of the facade's 100-item call")
        profile = run_worker(env.profile_python, "profile", args)
        log("profile: micro-benchmarks")
        micro = run_worker(env.python, "micro", args)
    return {"profile": profile, "micro": micro, "python": env.profile_python}


BENCHES = {
    "cpu": bench_cpu,
    "listing": bench_listing,
    "startup": bench_startup,
    "async": bench_async,
    "tasks": bench_tasks,
    "ratelimit": bench_ratelimit,
    "waiting": bench_waiting,
    "profile": bench_profile,
}


# --- the run ---------------------------------------------------------------------------------


def find_sdk_python(given: str | None, quick: bool, skip: bool) -> str | None:
    if skip:
        return None
    candidates = [given] if given else [str(BENCH_VENV_PYTHON), sys.executable]
    for python in candidates:
        if python and Path(python).exists() and package_version(python, "klaviyo-api"):
            version = package_version(python, "klaviyo-api")
            if version != SDK_VERSION:
                log(f"warning: {python} has klaviyo-api {version}, not {SDK_VERSION}")
            return python
    if quick:
        log("klaviyo-api is not installed (make bench creates .venv-bench): skipping the SDK")
        return None
    raise SystemExit(
        "klaviyo-api is missing: run `make bench` (it creates .venv-bench from "
        "requirements-bench.txt), pass --sdk-python, or --no-sdk"
    )


def sdk_revision(python: str) -> str:
    """The revision the SDK sends, so that the fake serves it that revision's shape."""
    code = (
        "import json; from klaviyo_api import KlaviyoAPI; print(json.dumps(KlaviyoAPI._REVISION))"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return str(json.loads(done.stdout))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a tiny run for CI (writes nothing)")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md even so")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--rl-seconds", type=float, help="length of each rate-limit run")
    parser.add_argument("--calls", type=int, help="calls per CPU round (default 1000)")
    parser.add_argument("--rounds", type=int, help="rounds per CPU measurement (default 5)")
    parser.add_argument("--sdk-python", help="interpreter with klaviyo-api (default .venv-bench)")
    parser.add_argument("--no-sdk", action="store_true", help="skip the official SDK")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--render", type=Path, help="only render BENCHMARKS.md from --json output")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.render:
        saved: Json = json.loads(args.render.read_text())
        args.output.write_text(report.render(saved))
        log(f"wrote {args.output}")
        return 0
    cfg = QUICK if args.quick else Config()
    if args.rl_seconds is not None:
        cfg = replace(cfg, rl_seconds=args.rl_seconds)
    if args.calls is not None:
        cfg = replace(cfg, cpu_calls=args.calls)
    if args.rounds is not None:
        cfg = replace(cfg, cpu_rounds=args.rounds)
    sections = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")

    from klaviyo_catalog_api.catalog_spec import REVISION

    sdk = find_sdk_python(args.sdk_python, args.quick, args.no_sdk)
    profile_python = sys.executable
    if (
        sdk
        and package_version(sdk, "pyinstrument")
        and package_version(sdk, "klaviyo-catalog-jobs")
    ):
        profile_python = sdk
    env = Env(
        python=sys.executable,
        sdk_python=sdk,
        profile_python=profile_python,
        revision=REVISION,
        sdk_revision=sdk_revision(sdk) if sdk else None,
    )
    python = (
        os.path.relpath(sys.executable, ROOT)
        if sys.executable.startswith(str(ROOT))
        else (sys.executable)
    )
    meta: Json = {
        "command": shlex.join([python, "scripts/bench.py", *argv]),
        "machine": machine_info(),
        "config": asdict(cfg),
        "sections": list(sections),
        "env": asdict(env),
        "versions": {
            "klaviyo-catalog-jobs": package_version(sys.executable, "klaviyo-catalog-jobs"),
            "httpx": package_version(sys.executable, "httpx"),
            "attrs": package_version(sys.executable, "attrs"),
            "klaviyo-api": package_version(sdk, "klaviyo-api") if sdk else None,
            "pydantic (SDK)": package_version(sdk, "pydantic") if sdk else None,
            "urllib3 (SDK)": package_version(sdk, "urllib3") if sdk else None,
            "pyinstrument": package_version(profile_python, "pyinstrument"),
            "sdk python": python_version(sdk) if sdk else None,
        },
    }
    results: Json = {"meta": meta}
    started = time.perf_counter()
    failed = []
    for section in sections:
        log(f"== {section}")
        try:
            results[section] = BENCHES[section](cfg, env)
        except (BenchError, OSError, KeyError, ValueError) as exc:  # report it, run the rest
            log(f"section {section} failed: {exc}")
            results.setdefault("failed", {})[section] = str(exc)[-2000:]
            failed.append(section)
    meta["elapsed_s"] = time.perf_counter() - started
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        log(f"wrote {args.json}")
    print(report.summary(results))
    if args.write or (not args.quick and not args.only):
        args.output.write_text(report.render(results))
        log(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
