"""BENCHMARKS.md from the results of `scripts/bench.py`, and a short summary for the terminal."""

from __future__ import annotations

import math
from typing import Any

from scripts.bench_lib import waiting
from scripts.bench_lib.common import Json

TARGET_FLOOR_RATIO = 1.3  # facade CPU at 100 items <= 1.3 times the floor
TARGET_SDK_RATIO = 3.0  # the SDK >= 3 times the facade's CPU at 100 items
TARGET_STARTUP = 1 / 3  # facade start-up <= 1/3 of the SDK's
TARGET_UTILISATION = 0.97
TARGET_TASKS = 0.8  # 500 tasks on one AsyncCatalogJobs >= 80 % of the rate of 20
X = "\u00d7"  # times sign (spelt as an escape: ruff flags the character as confusable)
NA = "\u2013"  # en dash: no value

CLIENT_NAMES = {
    "floor": "floor: httpx.Client.get + json.loads",
    "facade": "facade: CatalogJobs.get_item_update_job, with the [speedups] extra (orjson)",
    "facade-json": "facade without the [speedups] extra (json.loads)",
    "sdk": "klaviyo-api 25.0.0: Catalogs.get_bulk_update_catalog_items_job",
}


def _f(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    return f"{value:,.{digits}f}"


def _mib(kib: Any) -> str:
    return NA if kib is None else f"{kib / 1024:,.1f}"


def _ok(good: bool | None) -> str:
    return NA if good is None else ("yes" if good else "**no**")


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    spec = align or ("---|" + "---:|" * (len(header) - 1))
    lines = ["| " + " | ".join(header) + " |", "|" + spec]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


# --- targets -----------------------------------------------------------------------------------


def targets(results: Json) -> list[tuple[str, str, str, bool | None]]:
    """(what, target, measured, met) for each goal whose section ran."""
    out: list[tuple[str, str, str, bool | None]] = []
    cpu = results.get("cpu")
    if cpu and "100" in cpu["summary"]["facade"]:
        ratio = cpu["summary"]["facade"]["100"]["ratio_to_floor"]
        out.append(
            (
                "facade CPU per 100-item call ÷ floor",
                f"≤ {TARGET_FLOOR_RATIO}{X}",
                f"{ratio:.2f}{X}",
                ratio <= TARGET_FLOOR_RATIO,
            )
        )
        if "sdk" in cpu["summary"]:
            sdk = cpu["summary"]["sdk"]["100"]["cpu_us"] / cpu["summary"]["facade"]["100"]["cpu_us"]
            out.append(
                (
                    "klaviyo-api CPU per 100-item call ÷ facade",
                    f"≥ {TARGET_SDK_RATIO:g}{X}",
                    f"{sdk:.2f}{X}",
                    sdk >= TARGET_SDK_RATIO,
                )
            )
    startup = results.get("startup")
    if startup and "klaviyo-api 25.0.0" in startup["summary"]:
        facade = startup["summary"]["facade"]
        sdk_start = startup["summary"]["klaviyo-api 25.0.0"]
        ours = facade["import_s"] + facade["first_call_s"]
        theirs = sdk_start["import_s"] + sdk_start["first_call_s"]
        out.append(
            (
                "start-up (import + first call) ÷ klaviyo-api's",
                "≤ 1/3 (0.33)",
                f"{ours / theirs:.2f} ({ours * 1000:.0f} vs {theirs * 1000:.0f} ms)",
                ours / theirs <= TARGET_STARTUP,
            )
        )
        rss = facade["maxrss_kb"] / sdk_start["maxrss_kb"]
        out.append(
            (
                "start-up peak RSS ÷ klaviyo-api's",
                "(smaller)",
                f"{rss:.2f} ({_mib(facade['maxrss_kb'])} vs {_mib(sdk_start['maxrss_kb'])} MiB)",
                None,
            )
        )
    tasks = {r["tasks"]: r for r in (results.get("tasks") or {}).get("rows", [])}
    if 20 in tasks and 500 in tasks:
        share = tasks[500]["per_s"] / tasks[20]["per_s"]
        out.append(
            (
                "calls per s, 500 tasks ÷ 20 tasks on one AsyncCatalogJobs",
                f"≥ {TARGET_TASKS:.0%}",
                f"{share:.0%} ({tasks[500]['per_s']:.0f} vs {tasks[20]['per_s']:.0f})",
                share >= TARGET_TASKS,
            )
        )
    rl = results.get("ratelimit")
    if rl:
        for key, label in (
            ("memory", "1 process"),
            ("memory_jitter", "1 process, 0-60 ms jitter"),
            ("redis", "processes sharing Redis"),
        ):
            run = rl["runs"].get(key)
            if run is None:
                continue
            name = f"{run['processes']} {label}" if key == "redis" else label
            good = run["utilisation"] >= TARGET_UTILISATION and run["throttled"] == 0
            out.append(
                (
                    f"rate-limit utilisation, {name}",
                    "≥ 97 %, no 429",
                    f"{run['utilisation']:.1%}, {run['throttled']} {X} 429",
                    good,
                )
            )
    if results.get("waiting"):
        out += waiting.targets(results["waiting"])
    return out


def summary(results: Json) -> str:
    lines = ["", "benchmark summary:"]
    for what, target, measured, met in targets(results):
        lines.append(f"  {what}: {measured} (target {target}) {_ok(met).strip('*')}")
    cpu = results.get("cpu")
    if cpu:
        for client in cpu["clients"]:
            cells = ", ".join(
                f"{n} items {cpu['summary'][client][str(n)]['cpu_us']:.0f} µs" for n in cpu["sizes"]
            )
            lines.append(f"  cpu {client}: {cells}")
    return "\n".join(lines)


# --- sections ----------------------------------------------------------------------------------


def _cpu(cpu: Json, meta: Json) -> list[str]:
    sizes = cpu["sizes"]
    rev = meta["env"]["revision"]
    sdk_rev = meta["env"].get("sdk_revision")
    lines = [
        "## 1. CPU per call: one job with its included items",
        "",
        f'`get_item_update_job(id, include=["items"])` against one completed job with 0, 10 '
        f"and 100 items; each call then reads the job's status and three dates and every "
        f"item's title and price. Client process CPU (`time.process_time`), the fake in "
        f"another process. Median of {meta['config']['cpu_rounds']} rounds of "
        f"{meta['config']['cpu_calls']:,} calls after {meta['config']['cpu_warmup']} warm-up "
        f"calls, each round a fresh process, clients interleaved. The facade and the floor "
        f"get revision {rev}'s document (the facade's revision), the SDK revision "
        f"{sdk_rev or NA}'s, the shape it expects; the jobs and items are the same.",
        "",
        f"CPU µs per call ({X} the floor):",
        "",
    ]
    header = ["client", *(f"{n} items" for n in sizes)]
    rows = []
    for client in cpu["clients"]:
        cells = [CLIENT_NAMES[client]]
        for n in sizes:
            s = cpu["summary"][client][str(n)]
            cells.append(f"{_f(s['cpu_us'])} ({s['ratio_to_floor']:.2f}{X})")
        rows.append(cells)
    lines += _table(header, rows)
    lines += [
        "Wall µs per call (loopback round trip included) and the CPU spread of the rounds:",
        "",
    ]
    rows = []
    for client in cpu["clients"]:
        cells = [client]
        for n in sizes:
            s = cpu["summary"][client][str(n)]
            rounds = s["cpu_rounds"]
            cells.append(f"{_f(s['wall_us'])} (CPU {_f(min(rounds))}{NA}{_f(max(rounds))})")
        rows.append(cells)
    lines += _table(header, rows)
    body_rows = [
        [f"revision {revision}", *(_f(cpu["bodies"][str(n)].get(revision)) for n in sizes)]
        for revision in cpu["bodies"][str(sizes[0])]
    ]
    lines += ["Response body bytes:", ""]
    lines += _table(["document", *(f"{n} items" for n in sizes)], body_rows)
    if "sdk" in cpu["summary"]:
        extra = cpu["summary"]["sdk"][str(sizes[0])].get("catalogs_property_us")
        if extra is not None:
            lines += [
                f"Not counted above: `KlaviyoAPI.Catalogs` is a property that wraps all of the "
                f"API's methods anew on each access ({_f(extra)} µs); the SDK runs took it "
                f"once. Code that writes `klaviyo.Catalogs.get_...(...)` for every call pays "
                f"that on top.",
                "",
            ]
    if not cpu.get("same_values_read", True):
        lines += ["**Warning:** the clients did not read the same prices.", ""]
    return lines


def _listing(listing: Json) -> list[str]:
    jobs = listing["jobs"]
    lines = [
        "## 2. Listing: every job of every page",
        "",
        "`iter_item_create_jobs()` over all item-create jobs, 100 per page, in a fresh process "
        "each; each job's id, status and created_at read. The floor follows `links.next` with "
        "httpx + `json.loads`. RSS after setup is taken once the client exists, before the "
        "first page; peak RSS is the process image's high-water mark (`VmHWM`). Medians of "
        "the rounds.",
        "",
    ]
    rows = []
    for client in listing["clients"]:
        for n in jobs:
            s = listing["summary"][client][str(n)]
            rows.append(
                [
                    client,
                    f"{n:,} / {s['pages']}",
                    f"{s['wall_s']:.2f}",
                    f"{s['cpu_s']:.2f}",
                    _f(s["cpu_us_per_job"], 1),
                    _mib(s["rss_ready_kb"]),
                    _mib(s["peak_rss_kb"]),
                ]
            )
    lines += _table(
        [
            "client",
            "jobs / pages",
            "wall s",
            "CPU s",
            "CPU µs per job",
            "RSS after setup MiB",
            "peak RSS MiB",
        ],
        rows,
    )
    facade = listing["summary"]["facade"]
    small, big = facade[str(jobs[0])], facade[str(jobs[1])]
    growth = (big["peak_rss_kb"] - small["peak_rss_kb"]) / 1024
    pages = big["pages"] - small["pages"]
    lines += [
        f"Facade peak RSS from {small['pages']} to {big['pages']} pages: {growth:+.1f} MiB "
        f"({growth * 1024 / pages:+.0f} KiB per extra page): one page in memory at a time.",
        "",
    ]
    return lines


def _startup(startup: Json) -> list[str]:
    lines = [
        "## 3. Start-up: a fresh process, import and first call",
        "",
        "Each row is a new interpreter (`python -c`) that imports the client and makes one "
        "single-job call with 10 included items. *Process wall* is spawn to exit as the parent "
        "sees it; *import* and *first call* are timed inside. Peak RSS is `VmHWM` from /proc. "
        "Medians.",
        "",
    ]
    rows = []
    for name in startup["names"]:
        s = startup["summary"][name]
        rows.append(
            [
                name,
                _f(s["process_wall_s"] * 1000),
                _f(s["import_s"] * 1000, 1),
                _f(s["first_call_s"] * 1000, 1),
                _f((s["import_s"] + s["first_call_s"]) * 1000),
                _mib(s["maxrss_kb"]),
                _f(s["modules"]),
            ]
        )
    lines += _table(
        [
            "process",
            "process wall ms",
            "import ms",
            "first call ms",
            "import + call ms",
            "peak RSS MiB",
            "modules",
        ],
        rows,
    )
    return lines


def _async(data: Json) -> list[str]:
    lines = [
        "## 4. Async: calls in flight at once",
        "",
        f'`AsyncCatalogJobs.get_item_update_job(id, include=["items"])` on a job with '
        f"{data['items']} items, from N tasks at once, against `httpx.AsyncClient` + "
        f"`json.loads` doing the same (both with httpx's default pool: 100 connections, 20 "
        f"kept alive), and the sync `CatalogJobs` one call at a time. Without added latency "
        f"the run is CPU-bound on two cores shared with the fake (one Python process, one "
        f"request at a time, its CPU per request shown); with latency every answer is "
        f"delayed as if it crossed a network, which is where concurrency pays. Medians.",
        "",
    ]
    rows = [
        [
            f"+{r['latency_ms']:.0f} ms",
            str(r["concurrency"]),
            r["client"],
            _f(r["per_s"]),
            _f(r["cpu_us"]),
            _f(r["server_cpu_us"]),
        ]
        for r in data["rows"]
    ]
    lines += _table(
        [
            "added latency",
            "in flight",
            "client",
            "calls per s",
            "client CPU µs per call",
            "fake's CPU µs per request",
        ],
        rows,
        "---|---:|---|---:|---:|---:|",
    )
    by = {(r["latency_ms"], r["concurrency"], r["client"]): r for r in data["rows"]}
    one, many = by.get((0.0, 1, "floor")), by.get((0.0, data["concurrency"], "floor"))
    if one and many:
        lines += [
            f"With {data['concurrency']} in flight the floor's own CPU per call is "
            f"{many['cpu_us'] / one['cpu_us']:.1f}{X} what it is with one: that cost is httpx's "
            f"(httpcore's connection-pool bookkeeping grows with the connections it holds), "
            f"not the facade's.",
            "",
        ]
    return lines


def _tasks(data: Json) -> list[str]:
    lines = [
        "## 4b. Many tasks on one AsyncCatalogJobs",
        "",
        f"{data['calls']:,} `get_item_update_job` calls shared by N tasks on one client (its "
        f"own pool: 20 connections, all kept alive), a fresh process each run, median of "
        f"{data['rounds']}. Calls beyond the pool wait in the client's semaphore, not inside "
        f"httpcore's pool. Before that change, with httpx's default pool (100 open, 20 kept "
        f"alive), 500 tasks fell from 461 to 36 calls per second, opening 1,960 connections "
        f"for 2,000 calls.",
        "",
    ]
    by = {r["tasks"]: r for r in data["rows"]}
    base = by.get(20)
    rows = [
        [
            str(r["tasks"]),
            _f(r["per_s"]),
            f"{r['per_s'] / base['per_s']:.0%}" if base else "",
            _f(r["connections"]),
        ]
        for r in data["rows"]
    ]
    lines += _table(
        ["tasks", "calls per s", "of 20 tasks' rate", "connections opened"],
        rows,
        "---:|---:|---:|---:|",
    )
    return lines


def _ratelimit(rl: Json) -> list[str]:
    limits = " and ".join(f"{c}/{s:g} s" for c, s in rl["limits"])
    lines = [
        "## 5. Rate limits",
        "",
        f"The fake enforces Klaviyo's fixed windows ({limits}); each client process calls "
        f"`get_item_update_job` as fast as its limiter allows for {rl['seconds']:g} s, with "
        f"`rate_limits=[Rate(350, 1), Rate(3500, 60)]`. *Admissible* is the most an ideal "
        f"client could get through the fake's windows in that time (350 per second until "
        f"3500 per minute are used, then wait for the next minute); *utilisation* = 200s ÷ "
        f"admissible. Window maxima are over every 1 s and 60 s sliding window of the fake's "
        f"log (times as requests reached its limiter, after its own thread scheduling), and in "
        f"brackets over the fixed windows the fake (like Klaviyo) counts in. The jitter row "
        f"runs at the 2026-07-15 item-job limits (75/1 s and 750/60 s), each request waiting a "
        f"random 0-60 ms in the fake before it is counted, as on a slow network path; 8 threads "
        f"call at once, as one caller alone could not keep up with the limit at that latency.",
        "",
    ]
    rows = []
    names = {
        "memory": "in-memory (default)",
        "memory_no_hints": "in-memory, server budget hint off (diagnostic)",
        "memory_jitter": "in-memory, 75/s + 750/min, 0-60 ms uplink jitter",
        "redis": "RedisRateLimiter",
    }
    for key, run in rl["runs"].items():
        limiter = names.get(key, key)
        resume = run.get("resume_after_s")
        rows.append(
            [
                f"{run['processes']} {X} {limiter}",
                f"{run['duration_s']:g}",
                _f(run["ok"]),
                _f(run["admissible"]),
                f"{run['utilisation']:.1%}",
                _f(run["throttled"]),
                f"{run['max_burst_window']} ({run.get('max_fixed_burst_window', NA)}) "
                f"/ {run['burst_limit']}",
                f"{run['max_steady_window']} ({run.get('max_fixed_steady_window', NA)}) "
                f"/ {run['steady_limit']}",
                f"{run.get('first_window_ok', 0)} / {run.get('first_window_expected', 0)}",
                NA if resume is None else f"{resume * 1000:.0f} ms",
                _f(run["client_cpu_s"] / max(1, run["ok"]) * 1e6),
            ]
        )
    lines += _table(
        [
            "clients",
            "run s",
            "200s",
            "admissible",
            "utilisation",
            "429s",
            "max in 1 s (fixed)",
            "max in 60 s (fixed)",
            "first minute",
            "next minute's first 200 after",
            "client CPU µs per 200",
        ],
        rows,
    )
    memory, diag = rl["runs"].get("memory"), rl["runs"].get("memory_no_hints")
    if memory and diag and memory.get("first_window_ok") != diag.get("first_window_ok"):
        lost = diag["first_window_ok"] - memory["first_window_ok"]
        lines += [
            f"With its adaptive slowing switched off the same limiter gets "
            f"{diag['first_window_ok']:,} through in the first minute instead of "
            f"{memory['first_window_ok']:,}: the hints take {lost:,} requests per minute "
            f"({lost / diag['first_window_ok']:.0%}) although nobody else uses the quota.",
            "",
        ]
    if "redis_skipped" in rl:
        lines += [f"Redis runs skipped: {rl['redis_skipped']}.", ""]
    o = rl.get("overhead", {})
    rows = [
        [
            "MemoryRateLimiter, two free windows, real clock",
            _f(o.get("memory_cpu_us"), 2),
            _f(o.get("memory_wall_us"), 2),
        ],
        [
            "MemoryRateLimiter, 350/s + 3500/60 s, 1,500 in the window",
            _f(o.get("memory_full_ring_cpu_us"), 2),
            NA,
        ],
        [
            "RedisRateLimiter (two EVALSHA, loopback)",
            _f(o.get("redis_cpu_us"), 1),
            _f(o.get("redis_wall_us"), 1),
        ],
    ]
    lines += ["The limiter's cost per request (`try_acquire` + `complete`), no HTTP:", ""]
    lines += _table(["limiter", "client CPU µs", "wall µs"], rows)
    return lines


def _profile(data: Json, cpu: Json | None) -> list[str]:
    p, micro = data["profile"], data["micro"]
    lines = [
        "## Profile: the facade's 100-item call",
        "",
        f"cProfile over {p['calls']:,} calls (wall-clock timer, so the socket rows include "
        f"waiting for the fake). cProfile's own overhead inflates small functions; read "
        f"the shares, and the unprofiled figures in section 1 and the micro-benchmarks below. "
        f"Profiled: {_f(p['profiled_wall_us'])} µs per call.",
        "",
        "Own time by area, per call:",
        "",
    ]
    rows = [
        [a["area"], _f(a["us"], 1), f"{a['share']:.1%}"] for a in p["areas"] if a["share"] >= 0.005
    ]
    lines += _table(["area", "µs", "share"], rows)
    lines += ["Top functions by own time (per call):", ""]
    rows = [
        [
            f"`{r['function']}`",
            _f(r["ncalls_per_call"], 1),
            _f(r["tottime_us"], 1),
            _f(r["cumtime_us"], 1),
        ]
        for r in p["top_tottime"][:20]
    ]
    lines += _table(["function", "calls", "own µs", "cumulative µs"], rows)
    lines += ["The facade's own functions by cumulative time (per call):", ""]
    rows = [
        [
            f"`{r['function']}`",
            _f(r["ncalls_per_call"], 1),
            _f(r["tottime_us"], 1),
            _f(r["cumtime_us"], 1),
        ]
        for r in p["top_cumtime"][:15]
    ]
    lines += _table(["function", "calls", "own µs", "cumulative µs"], rows)
    if p.get("pyinstrument"):
        flat = [
            line
            for line in p["pyinstrument"].splitlines()
            if line.strip() and line.strip()[0].isdigit()  # entries, not the banner
        ]
        lines += [
            "pyinstrument (sampling every 0.1 ms, wall clock; flat, own time), top entries:",
            "",
            "```",
            *flat[:32],
            "```",
            "",
        ]
    lines += [
        "Micro-benchmarks on the same 100-item body, no sockets (median CPU µs):",
        "",
    ]
    rows = [
        ["`json.loads` of the body", _f(micro.get("json_loads_us"), 1)],
        [
            "generated `ItemUpdateJobDocument.from_dict` (eager attrs models)",
            _f(micro.get("generated_from_dict_us"), 1),
        ],
        [
            "generated `CatalogItem.from_dict`, one item",
            _f(micro.get("generated_item_from_dict_us"), 2),
        ],
        ["`datetime.fromisoformat`, one timestamp", _f(micro.get("fromisoformat_us"), 3)],
        [
            "the floor's dict reading (json.loads included)",
            _f(micro.get("read_floor_document_us"), 1),
        ],
        ["floor through httpx.MockTransport", _f(micro.get("floor_mock_us"), 1)],
        ["facade through httpx.MockTransport", _f(micro.get("facade_mock_us"), 1)],
    ]
    lines += _table(["what", "µs"], rows)
    facade_mock, floor_mock = micro.get("facade_mock_us"), micro.get("floor_mock_us")
    if facade_mock and floor_mock:
        lines += [
            f"Without sockets the facade costs {facade_mock - floor_mock:,.0f} µs more than the "
            f"floor per call ({facade_mock / floor_mock:.2f}{X}); everything the facade adds "
            f"(request building, limiter, parsing, typed objects) is in that difference.",
            "",
        ]
    if cpu is not None:
        top = [a for a in p["areas"] if not a["area"].startswith("socket")][:4]
        names = ", ".join(f"{a['area']} {a['share']:.0%}" for a in top)
        lines += [f"Largest areas other than socket calls: {names}.", ""]
    return lines


# What the profile showed and what changed it. History, not a measurement of this run: the
# figures are from full runs of this script at the commits named.
HISTORY = [
    "## What dominated, and what changed it",
    "",
    f"First full run (fd96fd8): 100-item call 779 µs, 1.40{X} the floor; start-up 142 ms, 0.41 "
    "of the SDK's; 90 % of the rate-limit quota.",
    "",
    "- Before any run, from the field notes: the generated models' eager `from_dict` over "
    "a hundred included items costs about as much as the HTTP round trip (920 µs per call in "
    "this script's micro-benchmark). Included resources are typed views over the decoded "
    "JSON, and `raw` / `.model` build the generated models on first use (30ce82c, before "
    "fd96fd8).",
    "- Identifying included resources and linkage went through several checked-reader calls "
    "per item (101 µs): exact-type checks inline, error text built only on error; views get "
    "their (type, id) from the caller; typed reads return exact-type values unconverted.",
    "- httpx merged the query params on each request (53 µs with params against 28 µs with a "
    "ready URL): the query string is encoded once per call.",
    "- Start-up: `asyncio` and `email.utils` were imported eagerly (about 25 ms) and the first "
    "call imported the generated client and all its models for `_get_kwargs` (about 35 ms): "
    "both are now imported on use, and requests are built from the generated operation table, "
    "proved equal to `_get_kwargs` by tests/test_operations.py.",
    "- `json.loads` is a third of the floor at 100 items: orjson, the optional [speedups] "
    "extra, halves it; section 1 shows the facade with it and without it.",
    "- The rate-limit shortfall was the adaptive hint reading `RateLimit-Reset`'s whole "
    "seconds as exact, so our own first-second burst looked like another integration's usage "
    "and capped the minute at 3,150 (a diagnostic run without hints got 3,500): our own "
    "admissions are now counted from a second earlier.",
    "",
]


def render(results: Json) -> str:
    meta = results["meta"]
    m, v = meta["machine"], meta["versions"]
    memory = f", {m['memory_gib']:.0f} GiB" if m.get("memory_gib") else ""
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench`; do not edit by hand, rerun it. The exact command:",
        "",
        "```sh",
        meta["command"],
        "```",
        "",
        f"- **Date:** {m['date']}; the run took {meta.get('elapsed_s', 0) / 60:.1f} min.",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores{memory}, {m['os']}; load average "
        f"before the run {', '.join(str(x) for x in m['load_before'])}.",
        f"- **Python:** {m['python_impl']} {m['python']} (the SDK: "
        f"{v.get('sdk python') or 'not run'}).",
        f"- **Code:** klaviyo-catalog-jobs {v.get('klaviyo-catalog-jobs')} at {m['git']}; "
        f"httpx {v.get('httpx')}, attrs {v.get('attrs')}; klaviyo-api {v.get('klaviyo-api')} "
        f"(pydantic {v.get('pydantic (SDK)')}, urllib3 {v.get('urllib3 (SDK)')}); "
        f"pyinstrument {v.get('pyinstrument')}.",
        "- **Server:** `klaviyo_catalog.testing.FakeKlaviyo` on 127.0.0.1 in its own process "
        "(`scripts/bench_lib/fake_server.py`); every client runs in a fresh interpreter. Two "
        "cores: the client and the fake each have one.",
        "",
    ]
    if meta["config"].get("quick"):
        lines += ["**A --quick run: too few calls to mean anything.**", ""]
    goals = targets(results)
    if goals:
        lines += ["## Targets", ""]
        lines += _table(
            ["goal", "target", "measured", "met"],
            [[what, target, measured, _ok(met)] for what, target, measured, met in goals],
            "---|---|---|---|",
        )
        cpu = results.get("cpu")
        if cpu and "sdk" in cpu["summary"] and "100" in cpu["summary"]["sdk"]:
            sdk_us = cpu["summary"]["sdk"]["100"]["cpu_us"]
            floor_us = cpu["summary"]["floor"]["100"]["cpu_us"]
            budget = sdk_us / TARGET_SDK_RATIO
            lines += [
                f"At 100 items klaviyo-api costs {sdk_us / floor_us:.2f}{X} the floor here, so "
                f"the {TARGET_SDK_RATIO:g}{X} goal leaves the facade {budget:,.0f} µs per call, "
                f"{budget / floor_us:.2f}{X} the floor; the {TARGET_FLOOR_RATIO}{X} goal allows "
                f"{floor_us * TARGET_FLOOR_RATIO:,.0f} µs.",
                "",
            ]
    if "cpu" in results:
        lines += _cpu(results["cpu"], meta)
    if "listing" in results:
        lines += _listing(results["listing"])
    if "startup" in results:
        lines += _startup(results["startup"])
    if "async" in results:
        lines += _async(results["async"])
    if "tasks" in results:
        lines += _tasks(results["tasks"])
    if "ratelimit" in results:
        lines += _ratelimit(results["ratelimit"])
    if "waiting" in results:
        lines += waiting.render(results["waiting"])
    if "profile" in results:
        lines += _profile(results["profile"], results.get("cpu"))
    lines += HISTORY
    for section, error in results.get("failed", {}).items():
        lines += [f"**Section {section} failed:**", "", "```", error.strip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"
