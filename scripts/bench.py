#!/usr/bin/env python3
"""`make bench`: the facade against the floor (httpx + json.loads) and klaviyo-api, side by side.

    .venv-bench/bin/python scripts/bench.py     # the full run (~15 min), writes BENCHMARKS.md
    .venv/bin/python scripts/bench.py --quick   # CI: every section at tiny sizes, writes nothing

Clients and the fake run in processes of their own (scripts/bench_lib/worker.py), so a client's
CPU time is its own. Each section measures and writes its part of BENCHMARKS.md. The revision,
media type and rate limits are the generated spec's. klaviyo-api lives in .venv-bench only.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make `scripts.bench_lib` importable

from klaviyo_catalog.testing import running_redis_server  # noqa: E402
from klaviyo_catalog_api.catalog_spec import KINDS, MEDIA_TYPE, OPERATIONS, REVISION  # noqa: E402

from scripts.bench_lib.worker import headers  # noqa: E402

WORKER, PY = "scripts.bench_lib.worker", sys.executable  # PY: the facade's, the floor's, the fake's
ENV = {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"}  # each gets the fake's key
ENV["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
SDK = "klaviyo-api 25.0.0"
ITEM_OP, CATEGORY_OP = "get_item_update_job", "get_category_update_job"
X, NA = "\u00d7", "\u2013"  # the times sign and an en dash, spelt as escapes for ruff
Json = dict[str, Any]
GOALS: list[str] = []  # "what|target|measured|met", as each section finds them
RAW: Json = {}  # each section's figures, for --json


@dataclass(frozen=True)
class Config:
    quick: bool = False
    sizes: tuple[int, ...] = (0, 10, 100)
    cpu_rounds: int = 3  # of fresh processes, one per client
    cpu_cycles: int = 10  # per round: a batch of every client, in turn
    cpu_batch: int = 100  # calls
    warmup: int = 100
    listing: tuple[int, int] = (1_000, 10_000)
    rounds: int = 3  # of listing, async and tasks
    startup_rounds: int = 7
    async_calls: int = 3_000
    latency_calls: int = 2_000
    tasks: tuple[int, ...] = (20, 100, 500)
    tasks_calls: int = 2_000
    pool_latencies: tuple[float, ...] = (0.15, 0.3)
    pool_tasks: int = 500
    pool_calls: int = 2_000
    rl_seconds: float = 75.0
    diag_seconds: float = 15.0
    limiter_n: int = 200_000
    redis_n: int = 5_000
    profile_calls: int = 1_000
    micro_n: int = 2_000
    wait_jobs: int = 500  # per kind
    wait_span: float = 120.0
    wait_interval: float = 5.0
    wait_setup: float = 10.0
    sdk: str = ""  # the interpreter with klaviyo-api; "": none
    profile: str = sys.executable  # .venv-bench's if it has pyinstrument

    def of(self, client: str) -> str:
        return self.sdk if client == "sdk" else PY


QUICK = Config(True, cpu_rounds=1, cpu_cycles=2, cpu_batch=15, warmup=5, listing=(200, 1_000))
QUICK = replace(QUICK, rounds=1, startup_rounds=1, async_calls=100, latency_calls=100)
QUICK = replace(QUICK, tasks=(5, 20, 50), tasks_calls=200, rl_seconds=1.0, diag_seconds=1.0)
QUICK = replace(QUICK, pool_tasks=100, pool_calls=150)
QUICK = replace(QUICK, limiter_n=5_000)
QUICK = replace(QUICK, redis_n=200, profile_calls=30, micro_n=50, wait_jobs=40, wait_span=3.0)
QUICK = replace(QUICK, wait_interval=1.0, wait_setup=3.0)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Iterable[float]) -> float:
    return statistics.median(listed) if (listed := list(values)) else math.nan


def medians(runs: list[Json]) -> Json:
    return {k: median(run[k] for run in runs) for k in runs[0]}


def median_of(runs: list[Json], key: str = "cpu_us") -> float:
    return median(run[key] for run in runs)


def quartiles(values: list[float]) -> tuple[float, float]:
    """The 25th and 75th percentiles (both the value itself when there is one)."""
    if len(values) < 2:
        return values[0], values[0]
    low, _, high = statistics.quantiles(values, n=4)
    return low, high


def run(python: str, task: str, args: Json, timeout: float = 900) -> Json:
    """One worker task in a fresh interpreter: its JSON line, with the process's wall time."""
    wall0, command = time.perf_counter(), [python, "-m", WORKER, task, json.dumps(args)]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=timeout)
    if done.returncode or not done.stdout.strip():
        raise RuntimeError(f"worker {task} exited {done.returncode}:\n{done.stderr[-3000:]}")
    out = {**json.loads(done.stdout.splitlines()[-1]), "process_s": time.perf_counter() - wall0}
    brief = {k: round(v, 1) for k, v in out.items() if isinstance(v, float | int)}
    log(f"{task} {args.get('client', '')} {brief}"[:150])
    return out


class Worker:
    """A worker task in a process of its own that serves commands, one JSON line each way."""

    def __init__(self, task: str, args: Json, python: str = PY) -> None:
        self.task, command, pipe = task, [python, "-m", WORKER, task, json.dumps(args)], -1
        self.proc = subprocess.Popen(command, cwd=ROOT, env=ENV, stdin=pipe, stdout=pipe, text=True)
        self.greeting = self.do("")

    def do(self, command: str, **arguments: Any) -> Any:
        """Send a command ("": none, read the greeting) and return the worker's answer."""
        assert self.proc.stdin and self.proc.stdout
        if command:
            self.proc.stdin.write(json.dumps([command, arguments]) + "\n")
            self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline() or '{"error": "the worker exited"}')
        if "error" in reply:
            raise RuntimeError(f"{self.task}: {reply['error']}")
        return reply["result"]

    def close(self) -> None:
        self.proc.communicate(timeout=60)  # closes its input, so the worker stops


class Fake(Worker):
    """FakeKlaviyo in a process of its own (worker task `fake`). `limits`: each operation's
    published limits (the spec's), else none."""

    def __init__(self, limits: bool = False) -> None:
        super().__init__("fake", {"limits": limits})
        self.base_url, self.api_key = self.greeting

    def args(self, kind: str = "", **job: Any) -> Json:
        """What a client worker needs; with `kind`, a new job of that kind and its URL."""
        out = {"base_url": self.base_url, "api_key": self.api_key, "media_type": MEDIA_TYPE}
        if kind:
            added = self.do("add", kind=kind, n=1, status="complete", **job)
            out |= {"job_id": added["ids"][0], "url": added["url"]}
        return {**out, "revision": REVISION}

    def __enter__(self) -> Fake:
        return self

    def __exit__(self, *exc: object) -> None:
        errors = self.do("stats")[2] if exc[0] is None else []
        self.close()
        if errors:
            raise RuntimeError(f"the fake failed inside: {errors}")


def f(value: float | None, digits: int = 0) -> str:
    return NA if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def mib(kib: float) -> str:
    return f(kib / 1024, 1)


def goal(what: str, target: str, measured: str, met: bool | None) -> None:
    GOALS.append(f"{what}|{target}|{measured}|{NA if met is None else ['**no**', 'yes'][met]}")


def table(header: str, rows: Iterable[str | Sequence[object]], align: str = "") -> str:
    """A markdown table of "a|b|c" columns and rows (or lists of cells): the first column
    left-aligned, the others right unless `align` says otherwise."""
    cells = [row if isinstance(row, str) else "|".join(map(str, row)) for row in [header, *rows]]
    lines = [f"| {row.replace('|', ' | ')} |" for row in cells]
    return "\n".join([lines[0], "|" + (align or "---|" + "---:|" * header.count("|")), *lines[1:]])


def limits(operation: str) -> str:
    return " + ".join(f"{n}/{s:g} s" for n, s in OPERATIONS[operation].rate_limits)


NAMES = {
    "floor": "floor: httpx.Client.get + json.loads",
    "facade": "facade: CatalogJobs.get_item_update_job, with the [speedups] extra (orjson)",
    "facade-json": "facade without the [speedups] extra (json.loads)",
    "sdk": f"{SDK}: Catalogs.get_bulk_update_catalog_items_job",
}


def bench_cpu(cfg: Config) -> str:
    import httpx

    clients = ["floor", "facade", "facade-json", *(["sdk"] if cfg.sdk else [])]
    # Each client's batches, in the order they ran: the i-th batches of all clients ran back to
    # back, so their ratio is taken under the same load.
    batches: dict[tuple[str, int], list[Json]] = defaultdict(list)
    catalogs: list[float] = []
    body: dict[int, int] = {}
    with Fake() as fake:
        for n in cfg.sizes:
            args = fake.args("item-update", items=n) | {"warmup": cfg.warmup}
            params = {"include": "items"}
            body[n] = len(httpx.get(args["url"], params=params, headers=headers(args)).content)
            for r in range(cfg.cpu_rounds):
                workers = {c: Worker("batches", args | {"client": c}, cfg.of(c)) for c in clients}
                for cycle in range(cfg.cpu_cycles):  # each cycle in another order
                    k = (r * cfg.cpu_cycles + cycle) % len(clients)
                    for c in clients[k:] + clients[:k]:
                        result = workers[c].do("batch", n=cfg.cpu_batch)
                        if result["items"] != n * cfg.cpu_batch:
                            raise RuntimeError(f"{c} read {result['items']} items, not {n} a call")
                        batches[c, n].append(result)
                if "sdk" in workers and n == max(cfg.sizes):
                    catalogs.append(workers["sdk"].do("catalogs"))
                for worker in workers.values():
                    worker.close()
            figures = (f"{c} {median_of(batches[c, n]):.0f}" for c in clients)
            log(f"cpu {n} items: {', '.join(figures)}")
            if len({x["price_sum"] for c in clients for x in batches[c, n]}) != 1:
                raise RuntimeError(f"the clients read different prices at {n} items")
    cpu = {key: median_of(bs) for key, bs in batches.items()}

    def ratio(c: str, of: str, n: int) -> float:
        """The median of c's batches ÷ `of`'s, batch by batch."""
        pairs = zip(batches[c, n], batches[of, n], strict=True)
        return median(x["cpu_us"] / y["cpu_us"] for x, y in pairs)

    RAW["cpu"] = {f"{c} {n}": v for (c, n), v in cpu.items()}
    RAW["cpu_ratios"] = {f"{c} {n}": ratio(c, "floor", n) for c, n in cpu}
    rows, spread = [], []
    for c in clients:
        rows.append(NAMES[c])
        spread.append(c)
        for n in cfg.sizes:
            rows[-1] += f"|{f(cpu[c, n])} ({ratio(c, 'floor', n):.2f}{X})"
            low, high = quartiles([x["cpu_us"] for x in batches[c, n]])
            wall = median(x["wall_us"] for x in batches[c, n])
            spread[-1] += f"|{f(wall)} (CPU {f(low)}{NA}{f(high)})"
    plain = ratio("facade-json", "floor", 100)
    what = "facade without [speedups]: CPU per 100-item call ÷ floor"
    goal(what, f"≤ 1.3{X}", f"{plain:.2f}{X}", plain <= 1.3)
    note = ""
    if cfg.sdk:
        sdk, floor = ratio("sdk", "facade", 100), ratio("sdk", "floor", 100)
        what = "klaviyo-api ÷ facade with [speedups]: CPU per 100-item call"
        goal(what, f"≥ 3{X}", f"{sdk:.2f}{X}", sdk >= 3)
        note = f"""
Not counted above: `KlaviyoAPI.Catalogs` is a property that wraps all of the API's methods anew
on each access ({f(median(catalogs))} µs); the SDK runs took it once.

At 100 items klaviyo-api costs {floor:.2f}{X} the floor here, batch by batch, so the 3{X} goal
leaves the facade {floor / 3:.2f}{X} the floor; it measured {sdk:.2f}{X} cheaper than klaviyo-api.
"""
    header = "client|" + "|".join(f"{n} items" for n in cfg.sizes)
    total = cfg.cpu_rounds * cfg.cpu_cycles
    return f"""## 1. CPU per call: one job with its included items

`get_item_update_job(id, include=["items"])`, then the job's status and dates and every item's
title and price read; client process CPU. Each of {cfg.cpu_rounds} rounds starts a fresh process
per client and warms it with {cfg.warmup} calls; then the clients run batches of
{cfg.cpu_batch} calls in turn, {cfg.cpu_cycles} times, each time in another order. The load on
this shared host changes within a second, so a ratio is taken batch by batch, between batches
run back to back, and its median over the {total} is given; a client's own figure is the
median of its {total} batches. Every client gets revision {REVISION}'s document, and all read
the same prices.

CPU µs per call ({X} the floor, the median of the batch-by-batch ratios):

{table(header, rows)}

Wall µs per call (loopback round trip included) and the middle half of the batches' CPU
(25th{NA}75th percentile):

{table(header, spread)}

Response body bytes: {", ".join(f"{f(body[n])} at {n} items" for n in cfg.sizes)}.
{note}"""


def bench_listing(cfg: Config) -> str:
    runs: dict[tuple[str, int], list[Json]] = defaultdict(list)
    for n in cfg.listing:
        with Fake() as fake:
            url = fake.do("add", kind="item-create", n=n, status="complete")["list_url"]
            for _ in range(cfg.rounds):
                for c in ("facade", "floor"):
                    result = run(PY, "listing", {**fake.args(), "url": url, "client": c})
                    if result["jobs"] != n:
                        raise RuntimeError(f"listing {c}: read {result['jobs']} of {n} jobs")
                    runs[c, n].append(result)
    s = {key: medians(rs) for key, rs in sorted(runs.items())}
    RAW["listing"] = {f"{c} {n}": v for (c, n), v in s.items()}
    rows = []
    for (c, n), v in s.items():
        wall, cpu, per_job = f(v["wall_s"], 2), f(v["cpu_s"], 2), f(v["cpu_s"] / n * 1e6, 1)
        rss = mib(v["ready_kb"]), mib(v["peak_kb"])
        rows.append([c, f"{n:,} / {n // 100}", wall, cpu, per_job, *rss])
    small, big = cfg.listing
    growth, pages = (
        s["facade", big]["peak_kb"] - s["facade", small]["peak_kb"],
        big // 100 - small // 100,
    )
    columns = "client|jobs / pages|wall s|CPU s|CPU µs per job|RSS after setup MiB|peak RSS MiB"
    return f"""## 2. Listing: every job of every page

`iter_item_create_jobs()` over every job, 100 a page, reading each one's id, status and
created_at; the floor follows `links.next` with httpx + `json.loads`. A fresh process each; RSS
once the client exists, and the peak (`VmHWM`). Medians of {cfg.rounds} rounds.

{table(columns, rows)}

Facade peak RSS from {small // 100} to {big // 100} pages: {growth / 1024:+.1f} MiB
({growth / pages:+.0f} KiB per extra page): one page in memory at a time.
"""


def bench_startup(cfg: Config) -> str:
    names = {"python": "python (no client)", "floor": "floor (httpx + json)", "facade": "facade"}
    names |= {"sdk": SDK} if cfg.sdk else {}
    runs: dict[str, list[Json]] = defaultdict(list)
    with Fake() as fake:
        args = fake.args("item-update", items=10)
        for _ in range(cfg.startup_rounds):
            for c in names:
                runs[c].append(run(cfg.of(c), "startup", {**args, "client": c}, 120))
    s = RAW["startup"] = {c: medians(rs) for c, rs in runs.items()}
    ms = {c: (v["import_s"] + v["call_s"]) * 1000 for c, v in s.items()}
    rows = []
    for c, v in s.items():
        times = [f(v["process_s"] * 1000), f(v["import_s"] * 1000, 1), f(v["call_s"] * 1000, 1)]
        rows.append([names[c], *times, f(ms[c]), mib(v["rss_kb"]), f(v["modules"])])
    if cfg.sdk:
        ratio, rss = ms["facade"] / ms["sdk"], (s["facade"]["rss_kb"], s["sdk"]["rss_kb"])
        measured = f"{ratio:.2f} ({f(ms['facade'])} vs {f(ms['sdk'])} ms)"
        goal("start-up (import + first call) ÷ klaviyo-api's", "≤ 1/3", measured, ratio <= 1 / 3)
        measured = f"{rss[0] / rss[1]:.2f} ({mib(rss[0])} vs {mib(rss[1])} MiB)"
        goal("start-up peak RSS ÷ klaviyo-api's", "(smaller)", measured, None)
    columns = (
        "process|process wall ms|import ms|first call ms|import + call ms|peak RSS MiB|modules"
    )
    return f"""## 3. Start-up: a fresh process, import and first call

A fresh interpreter (the benchmark's worker) imports the client, then builds it and makes one
call with 10 included items, timed inside; *process wall* is spawn to exit, as the parent sees
it. Peak RSS is `VmHWM`. Medians of {cfg.startup_rounds}.

{table(columns, rows)}
"""


def bench_async(cfg: Config) -> str:
    runs: dict[tuple[float, int, str], list[Json]] = defaultdict(list)
    plan = ((0, 1, cfg.async_calls), (0, 50, cfg.async_calls), (0.05, 50, cfg.latency_calls))
    with Fake() as fake:
        args = fake.args("item-update", items=10)
        for _ in range(cfg.rounds):
            for latency, tasks, calls in plan:
                fake.do("delay", low=latency, high=latency)
                for c in ("facade", "floor"):
                    before = fake.do("stats")
                    more = {"client": c, "calls": calls, "concurrency": tasks}
                    result = run(PY, "async", args | more)
                    after = fake.do("stats")
                    result["fake_us"] = (after[1] - before[1]) / (after[0] - before[0]) * 1e6
                    runs[latency, tasks, c].append(result)
                if tasks == 1 or latency:  # the sync client, one call at a time
                    calls = cfg.latency_calls // 50 if latency else calls // 3
                    sync = Worker("batches", args | {"client": "facade", "warmup": 5})
                    result = sync.do("batch", n=calls)
                    sync.close()
                    result |= {"per_s": 1e6 / result["wall_us"], "fake_us": math.nan}
                    runs[latency, 1, "facade (sync CatalogJobs)"].append(result)
        fake.do("delay", low=0, high=0)
    s = {key: medians(rs) for key, rs in sorted(runs.items())}
    RAW["async"] = {" ".join(map(str, key)): v for key, v in s.items()}
    rows = []
    for (latency, tasks, c), v in s.items():
        figures = f(v["per_s"]), f(v["cpu_us"]), f(v["fake_us"])
        rows.append([f"+{latency * 1000:.0f} ms", tasks, c, *figures])
    one, many = s[0, 1, "floor"]["cpu_us"], s[0, 50, "floor"]["cpu_us"]
    columns = "added latency|in flight|client|calls per s|client CPU µs per call"
    return f"""## 4. Async: calls in flight at once

`AsyncCatalogJobs.get_item_update_job` (10 items) from N tasks at once, `httpx.AsyncClient` +
`json.loads` doing the same, and the sync `CatalogJobs` one call at a time. Without added latency
the run is CPU-bound (two cores shared with the fake); with it, every answer is delayed as if it
crossed a network, which is where concurrency pays. Medians of {cfg.rounds}.

{table(columns + "|fake's CPU µs per request", rows, "---|---:|---|---:|---:|---:|")}

With 50 in flight the floor's own CPU per call is {many / one:.1f}{X} what it is with one: that
cost is httpx's, not the facade's.
"""


def bench_tasks(cfg: Config) -> str:
    runs: dict[int, list[Json]] = defaultdict(list)
    with Fake() as fake:
        args = fake.args("item-update") | {"calls": cfg.tasks_calls}
        for _ in range(cfg.rounds):
            for n in cfg.tasks:
                runs[n].append(run(PY, "tasks", {**args, "tasks": n}))
    s = RAW["tasks"] = {n: medians(rs) for n, rs in runs.items()}
    few, many = s[min(s)]["per_s"], s[max(s)]["per_s"]
    rows = [
        [n, f(v["per_s"]), f"{v['per_s'] / few:.0%}", f(v["connections"])] for n, v in s.items()
    ]
    what = f"calls per s, {max(s)} tasks ÷ {min(s)} tasks on one AsyncCatalogJobs"
    goal(what, "≥ 80%", f"{many / few:.0%} ({f(many)} vs {f(few)})", many / few >= 0.8)
    return f"""## 4b. Many tasks on one AsyncCatalogJobs

{cfg.tasks_calls:,} `get_item_update_job` calls shared by N tasks on one cold client (its own pool,
sized from the limits, every connection kept alive; median of {cfg.rounds}). Calls beyond the pool
wait in the client's semaphore; before, inside httpcore's pool (httpx's default: 100 open, 20
kept alive), 500 tasks fell from 461 to 36 calls per second, opening 1,960 connections for 2,000
calls. The pool is split into httpcore pools of `SHARD_CONNECTIONS`, since httpcore's CPU per
request grows with the square of its pool's connections under load.

{table(f"tasks|calls per s|of {min(s)} tasks' rate|connections opened", rows, "---:|" * 4)}
"""


POOLS = {
    "own": "facade, its own pool (sized from the limits)",
    "twenty": "facade, 20 connections (the old size)",
    "httpx": "httpx.AsyncClient, its default pool (100 open, 20 kept alive), no queue",
}


def bench_pool(cfg: Config) -> str:
    from klaviyo_catalog._pool import DESIGN_LATENCY, POOL_CONNECTIONS, sustained_rate

    # What an app waiting on every job kind may use: each kind's largest sustained rate.
    quota = sum(
        max(sustained_rate(OPERATIONS[op].rate_limits) for op in ops if op in OPERATIONS)
        for ops in ((k.get_operation, k.list_operation) for k in KINDS.values())
    )
    r: dict[str, Json] = RAW.setdefault("pool", {})
    for latency in cfg.pool_latencies:
        with Fake() as fake:
            fake.do("delay", low=latency, high=latency)
            args = fake.args("item-update") | {"tasks": cfg.pool_tasks, "calls": cfg.pool_calls}
            for c in POOLS:
                before = fake.do("connections")
                result = run(PY, "pool", args | {"client": c})
                r[f"{c} {latency}"] = result | {"connections": fake.do("connections") - before}
    rows = []
    for latency in cfg.pool_latencies:
        for c, label in POOLS.items():
            v = r[f"{c} {latency}"]
            rows.append([f"+{latency * 1000:.0f} ms", label, f(v["per_s"]), f(v["connections"])])
    slowest = max(cfg.pool_latencies)
    own = r[f"own {slowest}"]
    what = f"own pool, {cfg.pool_tasks} tasks at +{slowest * 1000:.0f} ms: calls per s"
    measured = f"{f(own['per_s'])} (pool of {POOL_CONNECTIONS})"
    goal(what, f"≥ 90% of the kinds' quota ({quota:.0f}/s)", measured, own["per_s"] >= 0.9 * quota)
    columns = "added latency|client|calls per s|connections opened"
    return f"""## 4c. Pool size: {cfg.pool_tasks} tasks against a distant server

The client's own pool has {POOL_CONNECTIONS} connections: room for every job kind's sustained
quota at once ({quota:.1f} calls/s, each kind counted at its largest operation's limit, revision
{REVISION}) at {DESIGN_LATENCY * 1000:.0f} ms a request (Little's law), never fewer than 20; all
kept alive, and `AsyncCatalogJobs` queues calls beyond it. {cfg.pool_calls:,} calls shared by
{cfg.pool_tasks} tasks on one cold client; the fake delays every answer as if it crossed a
network. 20 connections cap a client at 20 / latency; httpx's default pool, with every task let
in, opens up to 100 connections and closes all but 20 as they go idle.

{table(columns, rows, "---|---|---:|---:|")}
"""


def max_in_window(times: Sequence[float], width: float, fixed: bool = False) -> int:
    """The most requests in any window [t, t + width) of the sorted times; `fixed`: in windows
    as Klaviyo and the fake count them, each opening at the first request after the last ended."""
    best, start, first = 0, 0, -math.inf
    for end, t in enumerate(times):
        if fixed and t >= first + width:
            first, start = t, end
        while not fixed and t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def rate_run(cfg: Config, op: str, seconds: float, processes: int = 1, **options: Any) -> Json:
    """`processes` clients calling `op` for `seconds`, against the spec's limits in the fake."""
    with Fake(limits=True) as fake:
        fake.do("delay", low=0, high=options.pop("jitter", 0))
        args = fake.args(next(k for k, v in KINDS.items() if v.get_operation == op))
        args |= {"op": op, "duration": seconds, "start_at": time.time() + 2 + processes / 2}
        args |= {"threads": 1, "hints": True, "redis_url": None, **options}
        with ThreadPoolExecutor(processes) as pool:
            clients = list(pool.map(lambda _: run(PY, "rate", args), range(processes)))
        log_ = fake.do("log")
    ok = sorted(t for t, status, counted, _ in log_ if status == 200 and counted)
    (burst, burst_s), (steady, steady_s) = sorted(OPERATIONS[op].rate_limits, key=lambda r: r[1])
    ideal = []  # an ideal client: as fast as the burst window lets it, until the steady one is full
    for start in range(0, math.ceil(seconds), int(steady_s)):
        ideal.append(min(steady, burst * math.ceil(min(steady_s, seconds - start) / burst_s)))
    later = [t for t in ok if t >= ok[0] + steady_s]
    windows = [f"{max_in_window(ok, s)} ({max_in_window(ok, s, True)}) / {n}" for n, s in
               ((burst, burst_s), (steady, steady_s))]  # fmt: skip
    first = f"{sum(1 for t in ok if t < ok[0] + steady_s)} / {ideal[0]}"
    errors = sum(n for c in clients for k, n in c["outcomes"].items() if k != "ok")
    use, throttled = len(ok) / sum(ideal), sum(1 for _, status, *_ in log_ if status == 429)
    resume = f"{(later[0] - ok[0] - steady_s) * 1000:.0f} ms" if later else NA
    cpu = f(sum(c["cpu_s"] for c in clients) / len(ok) * 1e6)
    row = [seconds, f(len(ok)), f(sum(ideal)), f"{use:.1%}", throttled, *windows, first, resume]
    return {"row": [*row, cpu], "use": use, "throttled": throttled, "errors": errors}


def bench_ratelimit(cfg: Config) -> str:
    item, category = f"{ITEM_OP} ({limits(ITEM_OP)})", f"{CATEGORY_OP} ({limits(CATEGORY_OP)})"
    plans: dict[str, tuple[str, float, int, Json]] = {  # label: operation, seconds, processes
        f"1 {X} in-memory (default), {item}": (ITEM_OP, cfg.rl_seconds, 1, {}),
        f"1 {X} in-memory, server budget hint off (diagnostic), {item}": (
            ITEM_OP, cfg.diag_seconds, 1, {"hints": False}),
        f"1 {X} in-memory, 8 threads, 0-60 ms uplink jitter, {item}": (
            ITEM_OP, cfg.rl_seconds, 1, {"jitter": 0.06, "threads": 8}),
    }  # fmt: skip
    redis = shutil.which("redis-server") and importlib.util.find_spec("redis")
    item_limits = OPERATIONS[ITEM_OP].rate_limits
    cost = run(PY, "limiter", {"n": cfg.limiter_n, "limits": item_limits})
    r = RAW["ratelimit"] = {}
    with ExitStack() as stack:
        if redis:
            url = stack.enter_context(running_redis_server()).url
            redis_plan = (CATEGORY_OP, cfg.rl_seconds, 4, {"redis_url": url})
            plans[f"4 {X} RedisRateLimiter, {category}"] = redis_plan
            cost |= run(PY, "limiter", {"n": cfg.redis_n, "redis_url": url})
        for label, (op, seconds, processes, options) in plans.items():
            r[label] = rate_run(cfg, op, seconds, processes, **options)
            if "diagnostic" not in label:
                v, what = r[label], f"rate limits: {label}"
                measured, ok = f"{v['use']:.1%}, {v['throttled']} {X} 429", v["use"] >= 0.97
                goal(what, "≥ 97%, no 429", measured, ok and not v["throttled"])
    columns = "clients|run s|200s|admissible|utilisation|429s|max in burst window (fixed)"
    columns += "|max in steady window (fixed)|first steady window|next window's first 200 after"
    errors = {label: v["errors"] for label, v in r.items() if v["errors"]}
    costs = {  # what: its CPU and wall keys
        "MemoryRateLimiter, two free windows, real clock": ("memory_cpu_us", "memory_wall_us"),
        f"MemoryRateLimiter at {limits(ITEM_OP)}, steady window nearly full": (
            "memory_full_cpu_us",
            "",
        ),
        "RedisRateLimiter (loopback)": ("redis_cpu_us", "redis_wall_us"),
    }
    cost_rows = [[what, f(cost.get(c), 2), f(cost.get(w), 2)] for what, (c, w) in costs.items()]
    return f"""## 5. Rate limits

The fake enforces each operation's published limits (revision {REVISION}) in fixed windows, as
Klaviyo does; each client calls as fast as its default limits (the generated spec's) allow.
*Admissible*: the most an ideal client gets through those windows in the time; *utilisation* =
200s ÷ admissible. Window maxima: over every sliding window of the fake's log (in brackets, its
fixed windows). The jitter row delays each request 0-60 ms in the fake before it is counted.

{table(columns + "|client CPU µs per 200", ([label, *v["row"]] for label, v in r.items()))}

{f"Calls that raised in the clients: {errors}." if errors else "No call raised in the clients."}
{"" if redis else "Redis runs skipped: redis-server or redis-py is missing."}
The limiter's cost per request (`try_acquire` + `complete`), no HTTP:

{table("limiter|client CPU µs|wall µs", cost_rows)}
"""


def wait_run(cfg: Config, mode: str, timeout: float) -> Json:
    with Fake(limits=True) as fake, ExitStack() as stack:
        # A mixed fleet: every kind of the generated spec, the same number of each.
        added = [fake.do("add", kind=k, n=cfg.wait_jobs, status="processing") for k in KINDS]
        ids = {k: a["ids"] for k, a in zip(KINDS, added, strict=True)}
        # In a file: thousands of ids are past what one argument of a command line may hold.
        ids_file = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".json"))
        ids_file.write(json.dumps(ids))
        ids_file.flush()
        args = {**fake.args(), "ids_file": ids_file.name, "mode": mode}
        args |= {"interval": cfg.wait_interval, "timeout": timeout}
        args["start_at"] = time.time() + cfg.wait_setup
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(run, PY, "wait", args, cfg.wait_setup + timeout + 300)
            time.sleep(max(0.0, args["start_at"] - time.time()))
            fake.do("reset")  # the worker's setup (fetching its jobs) is not counted
            load, started = os.getloadavg()[0], time.monotonic()  # the fake's clock too
            finishes = fake.do("finish_randomly", within=cfg.wait_span, seed=1)
            result = future.result()
            load = max(load, os.getloadavg()[0])
        log_ = fake.do("log")
    # What a poll per job per interval costs to report each job within an interval of its
    # completion: the requests per-job polling needs, whatever the quota or the machine allow.
    interval = cfg.wait_interval
    needed = sum(int(max(0.0, at - started) // interval) + 1 for at in finishes.values())
    seen: dict[str, list[float]] = result["seen"]
    delays = [times[0] - finishes[i] for i, times in seen.items() if i in finishes]
    ops: dict[str, int] = defaultdict(int)
    for *_, path in log_:  # a list, or a single-job GET (its path ends in the job id)
        ops[("list " if path.count("/") == 2 else "get ") + path.split("/")[2]] += 1
    once = set(seen) == set(finishes) and all(len(v) == 1 for v in seen.values())
    times = sorted(t for t, *_ in log_)
    kinds_seen = {result["kinds"][i] for i in seen}
    return {
        "jobs": sum(len(v) for v in ids.values()),
        "kinds": len(kinds_seen),
        "requests": len(log_),
        "per_minute": max_in_window(times, 60.0),
        "per_second": max_in_window(times, 1.0),
        "throttled": sum(1 for _, status, *_ in log_ if status == 429),
        "median_s": median(delays),
        "worst_s": max(delays, default=math.nan),
        "reported": len(seen),
        "once": once and not result["not_done"] and min(delays, default=0) >= 0,
        "missed": len(set(finishes) - set(seen)),
        "ops": ", ".join(f"{k} {v:,}" for k, v in sorted(ops.items())),
        "wall_s": result["wall_s"],
        "needed": needed,
        "load": load,
    }


def bench_waiting(cfg: Config) -> str:
    timeout, r = cfg.wait_span + max(60.0, 10 * cfg.wait_interval), RAW.setdefault("waiting", {})
    for mode, label in (("wait_for_jobs", "many"), ("wait_for_job per job", "each")):
        r[mode] = wait_run(cfg, label, timeout)
    many, each = r["wait_for_jobs"], r["wait_for_job per job"]
    ratio, worst, limit = each["requests"] / many["requests"], many["worst_s"], cfg.wait_interval
    measured = f"{ratio:.1f}{X} ({each['requests']:,} vs {many['requests']:,})"
    goal(
        f"wait_for_jobs over all {len(KINDS)} kinds: requests, per-job polling ÷ it",
        f"≥ 20{X}",
        measured,
        ratio >= 20,
    )
    goal("wait_for_jobs: 429s", "0", str(many["throttled"]), many["throttled"] == 0)
    target, ok = f"≤ poll interval + 2 s ({limit + 2:g} s)", worst <= limit + 2 and many["once"]
    goal("wait_for_jobs: worst detection delay, all reported once", target, f"{worst:.2f} s", ok)
    rows = []
    for mode, v in r.items():
        once = "yes" if v["once"] else f"**no** ({v['missed']:,} not reported in {timeout:g} s)"
        delays = f(v["median_s"], 2) + " s", f(v["worst_s"], 2) + " s"
        requests = f(v["requests"]), f(v["per_minute"]), f(v["per_second"]), v["throttled"]
        reported = f"{v['reported']:,} of {v['jobs']:,} ({v['kinds']} kinds)"
        rows.append([f"`{mode}`", *requests, *delays, reported, once])
    columns = "client|requests|max / min|max / s|429s|median delay|worst delay|reported"
    fleet = f"{len(KINDS)} kinds x {cfg.wait_jobs:,} = {many['jobs']:,}"
    return f"""## 6. Waiting for many jobs

A mixed fleet of running jobs, {cfg.wait_jobs:,} of each of the {len(KINDS)} kinds
({", ".join(KINDS)}; {fleet} jobs), finishes at random (seeded) within
{cfg.wait_span:g} s, on the fake at the published limits of each operation (e.g. the item-create
list {limits("list_item_create_jobs")}, the item-delete list {limits("list_item_delete_jobs")}),
in real time. One process waits for all, polling every {cfg.wait_interval:g} s: one
`wait_for_jobs` over the whole fleet, or a `wait_for_job` task per job (fixed interval, no call
deadline), the two measured one after the other in this run. A delay runs from a job's
completion in the fake to the app learning of it. Per-job polling needs far more than the
quota, so its limiter holds it there and it cannot keep its interval; its request count is the
quota times its duration, cut by a {timeout:g} s timeout.

{table(columns + "|each once, none early", rows)}

To keep its interval, per-job polling needs a poll per job per interval until the job is done:
{each["needed"]:,} requests here, {each["needed"] / many["requests"]:.1f}{X} `wait_for_jobs`'s
{many["requests"]:,}; what it made is what the quota and this machine let through (the 1-minute
load average, at most {max(v["load"] for v in r.values()):.1f} on {os.cpu_count()} cores during
the two waits, says how busy the machine was: the fake, the client and anything else share it).

{chr(10).join(f"- `{m}`: {v['ops']}; the wait took {v['wall_s']:.0f} s." for m, v in r.items())}
"""


def bench_profile(cfg: Config) -> str:
    with Fake() as fake:
        args = fake.args("item-update", items=100)
        p = run(cfg.profile, "profile", {**args, "calls": cfg.profile_calls})
        micro = run(PY, "micro", {**args, "n": cfg.micro_n})
    RAW["profile"], total = {"profile": p, "micro": micro}, sum(p["areas"].values())
    areas = sorted(p["areas"].items(), key=lambda kv: -kv[1])
    rows = ([a, f(us, 1), f"{us / total:.1%}"] for a, us in areas if us > total / 200)
    tables = [table("area|µs|share", rows)]
    for key in ("own", "cumulative"):
        rows = ([f"`{r[0]}`", f(r[1], 1), f(r[2], 1), f(r[3], 1)] for r in p[key])
        tables.append(table("function|calls|own µs|cumulative µs", rows))
    flat = [line for line in p.get("pyinstrument", "").splitlines() if line.strip()[:1].isdigit()]
    micro.pop("process_s")
    facade, floor = (micro[f"{c} through httpx.MockTransport"] for c in ("facade", "floor"))
    others = [f"{a} {us / total:.0%}" for a, us in areas if not a.startswith("socket")]
    parts = [
        f"""## Profile: the facade's 100-item call

cProfile over {p["calls"]:,} calls (wall-clock timer, so the socket rows include waiting for the
fake). cProfile's own overhead inflates small functions; read the shares, and the unprofiled
figures in section 1 and the micro-benchmarks below. Profiled: {f(p["wall_us"])} µs per call.""",
        "Own time by area, per call:",
        tables[0],
        "Top functions by own time (per call):",
        tables[1],
        "The facade's own functions by cumulative time (per call):",
        tables[2],
        "pyinstrument (sampling every 0.1 ms, wall clock; flat, own time), top entries:",
        "\n".join(["```", *flat[:32], "```"]) if flat else "(pyinstrument is not installed)",
        "Micro-benchmarks on the same 100-item body, no sockets (median CPU µs):",
        table("what|µs", ([k, f(v, 3 if v < 1 else 1)] for k, v in micro.items())),
        f"Without sockets the facade costs {facade - floor:+,.0f} µs against the floor per call "
        f"({facade / floor:.2f}{X}); everything the facade adds (request building, limiter, "
        "parsing, typed objects) is in that difference.",
        f"Largest areas other than socket calls: {', '.join(others[:4])}.",
    ]
    return "\n\n".join(parts) + "\n"


BENCHES: dict[str, Callable[[Config], str]] = {
    name[6:]: bench for name, bench in globals().items() if name.startswith("bench_")
}  # cpu, listing, startup, async, tasks, ratelimit, waiting, profile: in the order defined

# Hand-written notes at the end of BENCHMARKS.md, kept from one run to the next.
HISTORY = "## What dominated, and what changed it"


def versions(python: str) -> dict[str, str]:
    """The interpreter's Python version ("python") and those of all its distributions."""
    code = "import importlib.metadata as m, json, platform; print(json.dumps([platform."
    code += "python_version(), {d.name.lower().replace('_', '-'): d.version"
    code += " for d in m.distributions()}]))"
    python_version, distributions = json.loads(subprocess.check_output([python, "-c", code]))
    return {"python": python_version, **distributions}


def header(command: str, cfg: Config, minutes: float) -> str:
    def git(*args: str) -> str:
        return subprocess.check_output(["git", *args], cwd=ROOT, text=True).strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "facade", "generated")
    code = git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")
    ours, sdk = versions(PY), versions(cfg.sdk) if cfg.sdk else {}
    with open("/proc/cpuinfo") as cpuinfo, open("/proc/meminfo") as meminfo:
        cpu = next((line.split(":")[1].strip() for line in cpuinfo if "model name" in line), "?")
        memory = int(meminfo.readline().split()[1]) / 2**20  # MemTotal comes first
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    pyinstrument = versions(cfg.profile).get("pyinstrument")
    return f"""# Benchmarks

Written by `make bench` (scripts/bench.py), except the notes at the end; rerun it. The command:

```sh
{command}
```

- **Date:** {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; the run took {minutes:.1f} min.
- **Machine:** {cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()}
  {platform.release()}; load average at the end of the run {load}.
- **Python:** {platform.python_implementation()} {ours["python"]} (the SDK's: {sdk.get("python")}).
- **Code:** klaviyo-catalog-jobs {ours["klaviyo-catalog-jobs"]} at {code}, revision {REVISION};
  httpx {ours["httpx"]}, attrs {ours["attrs"]}; klaviyo-api {sdk.get("klaviyo-api")} (pydantic
  {sdk.get("pydantic")}, urllib3 {sdk.get("urllib3")}); pyinstrument {pyinstrument}.
- **Server:** `klaviyo_catalog.testing.FakeKlaviyo` on 127.0.0.1 in its own process; every client
  runs in a fresh interpreter. Two cores: the client and the fake each have one.

## Targets

{table("goal|target|measured|met", GOALS, "---|---|---|---|")}
"""


def find_sdk(given: str | None, quick: bool) -> str:
    for python in [given] if given is not None else [str(ROOT / ".venv-bench/bin/python"), PY]:
        if python and Path(python).exists() and "klaviyo-api" in versions(python):
            return python
    if not (quick or given == ""):
        raise SystemExit("no klaviyo-api: run `make bench` (it makes .venv-bench), --sdk-python")
    log("klaviyo-api is not installed (make bench creates .venv-bench): skipping the SDK")
    return ""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every section at tiny sizes (CI)")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(BENCHES)}")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md even so")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--sdk-python", help="interpreter with klaviyo-api ('' to skip the SDK)")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    cfg, sections = QUICK if args.quick else Config(), (args.only or ",".join(BENCHES)).split(",")
    if set(sections) - set(BENCHES):
        raise SystemExit(f"unknown sections {set(sections) - set(BENCHES)}; choose from {BENCHES}")
    sdk = find_sdk(args.sdk_python, args.quick)
    # Bytecode, as an installed wheel has it (pip compiles at install time, as it did for
    # klaviyo-api): a checkout run under PYTHONDONTWRITEBYTECODE would otherwise compile the
    # package again in every start-up measured.
    for package in ("facade", "generated"):
        compileall.compile_dir(ROOT / package, quiet=1)
    profiles = sdk and {"pyinstrument", "klaviyo-catalog-jobs"} <= versions(sdk).keys()
    cfg = replace(cfg, sdk=sdk, profile=sdk if profiles else PY)
    started, body, failed = time.perf_counter(), [], []
    for section in sections:
        log(f"== {section}")
        try:
            body.append(BENCHES[section](cfg))
        except Exception:  # report it, run the rest, and fail at the end
            log(f"section {section} FAILED:\n{traceback.format_exc()}")
            failed.append(section)
            body.append(f"**Section {section} failed:**\n\n```\n{traceback.format_exc(-3)}```\n")
    if args.json:
        args.json.write_text(json.dumps(RAW, indent=1, default=str))
    print("\n".join(row.replace("|", " | ") for row in GOALS))
    if args.write or not (args.quick or args.only):
        python = Path(sys.executable)
        python = python.relative_to(ROOT) if ROOT in python.parents else python
        command = shlex.join([str(python), "scripts/bench.py", *argv])
        head = header(command, cfg, (time.perf_counter() - started) / 60)
        old = args.output.read_text() if args.output.exists() else ""
        history = old[old.index(HISTORY) :] if HISTORY in old else ""
        args.output.write_text("\n".join([head, *body, history]))
        log(f"wrote {args.output}")
    log(f"FAILED sections: {', '.join(failed)}" if failed else "every section ran")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
