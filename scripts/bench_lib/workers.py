"""The measured clients. Each task runs in a fresh interpreter and prints one JSON line.

    python -m scripts.bench_lib.workers TASK '{"...": ...}'

Nothing here is imported at module level beyond the standard library, so a task pays only for
what its client imports. The official SDK (`klaviyo_api`) and pyinstrument exist only in the
benchmark environment (.venv-bench) and are imported by name, untyped.

Every single-job call reads what an app would: the job's status and dates, and each included
item's title and price. The floor reads the same values from the decoded dicts.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

Json = dict[str, Any]
Call = Callable[[], tuple[int, float]]  # one call: (items read, sum of their prices)
NO_LIMIT = 10**9  # a rate that never binds


# --- measuring ---------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss_kb() -> int:
    """The current resident set size in KiB, from /proc (0 where there is none)."""
    return _status_kb("VmRSS")


def peak_rss_kb() -> int:
    """The peak RSS of this process image in KiB. Not `ru_maxrss`: Linux carries that over
    exec from the forking parent, so a small child reports its parent's peak."""
    return _status_kb("VmHWM") or int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def timed(call: Call, calls: int) -> Json:
    """CPU and wall time per call, in µs, over `calls` calls."""
    items, total = 0, 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        n, s = call()
        items += n
        total += s
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "cpu_us": cpu / calls * 1e6,
        "wall_us": wall / calls * 1e6,
        "calls": calls,
        "items_per_call": items / calls,
        "price_sum": total / calls,
    }


# --- the three clients of one single-job call ----------------------------------------------------


def read_facade_job(job: Any) -> tuple[int, float]:
    """What an app reads from a BulkJob: status, dates, each item's title and price."""
    _sink = (job.status, job.created_at, job.completed_at, job.expires_at)
    items = job.items or ()
    if not items:
        return 0, 0.0
    total = 0.0
    if hasattr(items[0], "title"):  # typed views: item.title
        for item in items:
            _title = item.title
            total += item.price
    else:  # generated models: item.attributes.title
        for item in items:
            attributes = item.attributes
            _title = attributes.title
            total += attributes.price
    return len(items), total


def facade_call(args: Json, http_client: Any = None) -> tuple[Call, Callable[[], None]]:
    from klaviyo_catalog import CatalogJobs, Rate

    kc = CatalogJobs(
        args["api_key"],
        base_url=args["base_url"],
        rate_limits=[Rate(NO_LIMIT, 1.0)],
        http_client=http_client,
    )
    job_id = args["job_id"]
    include = ["items"] if args.get("include", True) else None

    def call() -> tuple[int, float]:
        return read_facade_job(kc.get_item_update_job(job_id, include=include))

    return call, kc.close


def floor_headers(args: Json) -> dict[str, str]:
    """The headers the facade sends, so that the floor gets the very same document."""
    return {
        "Authorization": f"Klaviyo-API-Key {args['api_key']}",
        "revision": args["revision"],
        "Accept": args.get("accept", "application/json"),
    }


def read_floor_document(body: bytes) -> tuple[int, float]:
    document = json.loads(body)
    attributes = document["data"]["attributes"]
    _sink = (
        attributes["status"],
        attributes["created_at"],
        attributes["completed_at"],
        attributes["expires_at"],
    )
    n, total = 0, 0.0
    for included in document.get("included") or ():
        item = included["attributes"]
        _title = item["title"]
        total += item["price"]
        n += 1
    return n, total


def floor_call(args: Json, http_client: Any = None) -> tuple[Call, Callable[[], None]]:
    import httpx

    client: httpx.Client = http_client if http_client is not None else httpx.Client()
    url, headers = args["url"], floor_headers(args)
    params = {"include": "items"} if args.get("include", True) else None

    def call() -> tuple[int, float]:
        response = client.get(url, params=params, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"floor: HTTP {response.status_code}: {response.text[:200]}")
        return read_floor_document(response.content)

    return call, client.close


def sdk_client(args: Json) -> Any:
    klaviyo_api: Any = importlib.import_module("klaviyo_api")
    return klaviyo_api.KlaviyoAPI(args["api_key"], test_host=args["base_url"])


def read_sdk_document(document: Any) -> tuple[int, float]:
    attributes = document.data.attributes
    _sink = (
        attributes.status,
        attributes.created_at,
        attributes.completed_at,
        attributes.expires_at,
    )
    n, total = 0, 0.0
    for included in document.included or ():
        item = included.attributes
        _title = item.title
        total += item.price
        n += 1
    return n, total


def sdk_call(args: Json) -> tuple[Call, Callable[[], None]]:
    sdk = sdk_client(args)
    catalogs = sdk.Catalogs  # a property that wraps every method anew: taken once
    job_id = args["job_id"]
    include = ["items"] if args.get("include", True) else None

    def call() -> tuple[int, float]:
        document = catalogs.get_bulk_update_catalog_items_job(job_id, include=include)
        return read_sdk_document(document)

    return call, lambda: None


def facade_stdlib_json_call(args: Json) -> tuple[Call, Callable[[], None]]:
    """The facade without the [speedups] extra: the standard library's JSON decoder."""
    import json

    from klaviyo_catalog import _jsonapi

    _jsonapi.loads = json.loads
    return facade_call(args)


CLIENTS: dict[str, Callable[[Json], tuple[Call, Callable[[], None]]]] = {
    "facade": facade_call,
    "facade-json": facade_stdlib_json_call,
    "floor": floor_call,
    "sdk": sdk_call,
}


def task_cpu(args: Json) -> Json:
    """Section 1: CPU per single-job call, after a warm-up."""
    call, close = CLIENTS[args["client"]](args)
    for _ in range(int(args["warmup"])):
        call()
    result = timed(call, int(args["calls"]))
    if args["client"] == "sdk":
        # What `client.Catalogs.<method>` costs when an app writes it on every call.
        sdk = sdk_client(args)
        n = 200
        cpu0 = time.process_time()
        for _ in range(n):
            sdk.Catalogs  # noqa: B018
        result["catalogs_property_us"] = (time.process_time() - cpu0) / n * 1e6
    close()
    return result


# --- listing ---------------------------------------------------------------------------------


def task_listing(args: Json) -> Json:
    """Section 2: every job of every page, in a fresh process; wall, CPU and peak RSS."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    jobs = 0
    if args["client"] == "facade":
        from klaviyo_catalog import CatalogJobs, Rate

        with CatalogJobs(
            args["api_key"], base_url=args["base_url"], rate_limits=[Rate(NO_LIMIT, 1.0)]
        ) as kc:
            rss_ready = rss_kb()
            for job in kc.iter_item_create_jobs():
                _sink = (job.id, job.status, job.created_at)
                jobs += 1
    else:
        import httpx

        with httpx.Client() as client:
            rss_ready = rss_kb()
            url: str | None = args["url"]
            headers = floor_headers(args)
            while url:
                response = client.get(url, headers=headers)
                response.raise_for_status()
                document = json.loads(response.content)
                for job in document["data"]:
                    attributes = job["attributes"]
                    _sink = (job.get("id"), attributes["status"], attributes["created_at"])
                    jobs += 1
                url = (document.get("links") or {}).get("next")
    return {
        "jobs": jobs,
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": time.process_time() - cpu0,
        "rss_ready_kb": rss_ready,
        "rss_end_kb": rss_kb(),
        "peak_rss_kb": peak_rss_kb(),
    }


# --- async -----------------------------------------------------------------------------------


async def _async_run(args: Json) -> Json:
    import httpx

    concurrency, calls = int(args["concurrency"]), int(args["calls"])
    include = ["items"] if args.get("include", True) else None
    one: Callable[[], Any]
    if args["client"] == "facade":
        from klaviyo_catalog import AsyncCatalogJobs, Rate

        kc = AsyncCatalogJobs(
            args["api_key"], base_url=args["base_url"], rate_limits=[Rate(NO_LIMIT, 1.0)]
        )

        async def facade_one() -> tuple[int, float]:
            job = await kc.get_item_update_job(args["job_id"], include=include)
            return read_facade_job(job)

        one, close = facade_one, kc.aclose
    else:
        client = httpx.AsyncClient()
        url, headers = args["url"], floor_headers(args)
        params = {"include": "items"} if include else None

        async def floor_one() -> tuple[int, float]:
            response = await client.get(url, params=params, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"floor: HTTP {response.status_code}")
            return read_floor_document(response.content)

        one, close = floor_one, client.aclose

    async def worker(n: int) -> int:
        for _ in range(n):
            await one()
        return n

    await asyncio.gather(*(one() for _ in range(concurrency)))  # warm-up: open connections
    share, extra = divmod(calls, concurrency)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    done = await asyncio.gather(*(worker(share + (i < extra)) for i in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await close()
    return {
        "calls": sum(done),
        "wall_s": wall,
        "cpu_s": cpu,
        "per_s": sum(done) / wall,
        "cpu_us": cpu / sum(done) * 1e6,
    }


def task_async(args: Json) -> Json:
    """Section 4: throughput with `concurrency` calls in flight at once."""
    return asyncio.run(_async_run(args))


async def _tasks_run(args: Json) -> Json:
    import httpcore._backends.auto as auto
    from klaviyo_catalog import AsyncCatalogJobs, Rate

    # Count the TCP connections the client opens: pool thrashing shows as one per call.
    opened = 0
    connect = auto.AutoBackend.connect_tcp

    async def counting(self: Any, *a: Any, **k: Any) -> Any:
        nonlocal opened
        opened += 1
        return await connect(self, *a, **k)

    auto.AutoBackend.connect_tcp = counting  # type: ignore[method-assign]
    tasks, calls = int(args["tasks"]), int(args["calls"])
    kc = AsyncCatalogJobs(
        args["api_key"], base_url=args["base_url"], rate_limits=[Rate(NO_LIMIT, 1.0)]
    )

    async def worker(n: int) -> int:
        for _ in range(n):
            read_facade_job(await kc.get_item_update_job(args["job_id"]))
        return n

    share, extra = divmod(calls, tasks)
    wall0 = time.perf_counter()
    done = await asyncio.gather(*(worker(share + (i < extra)) for i in range(tasks)))
    wall = time.perf_counter() - wall0
    await kc.aclose()
    return {"tasks": tasks, "calls": sum(done), "per_s": sum(done) / wall, "connections": opened}


def task_tasks(args: Json) -> Json:
    """Section `tasks`: one AsyncCatalogJobs shared by N tasks, a cold client each time."""
    return asyncio.run(_tasks_run(args))


# --- rate limits -----------------------------------------------------------------------------


def task_rate_client(args: Json) -> Json:
    """Section 5: one process calling as fast as its limiter lets it, from start_at for
    `duration` seconds, on `threads` threads. The calls run on daemon threads, so a call
    waiting for the next window is simply abandoned at the end instead of stretching the run."""
    from klaviyo_catalog import CatalogJobs, Rate, RateLimiter

    limiter: RateLimiter | None = None
    if args.get("redis_url"):
        from klaviyo_catalog import RedisRateLimiter

        limiter = RedisRateLimiter(args["redis_url"])
    elif not args.get("hints", True):
        from klaviyo_catalog._ratelimit import MemoryRateLimiter, Observation, Ticket

        class NoHints(MemoryRateLimiter):
            """The default limiter without the server's budget hint: isolates what it costs."""

            def complete(self, ticket: Ticket, observation: Observation | None = None) -> None:
                super().complete(ticket)

        limiter = NoHints()
    rates = [Rate(int(c), float(s)) for c, s in args["rates"]]
    kc = CatalogJobs(
        args["api_key"], base_url=args["base_url"], rate_limits=rates, rate_limiter=limiter
    )
    outcomes: Counter[str] = Counter()
    counting = threading.Lock()
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                kc.get_item_update_job(args["job_id"])
                outcome = "ok"
            except Exception as exc:  # counted and reported, never fatal
                outcome = type(exc).__name__
            with counting:
                outcomes[outcome] += 1

    start_at, duration = float(args["start_at"]), float(args["duration"])
    time.sleep(max(0.0, start_at - time.time()))
    cpu0 = time.process_time()
    # Calls in flight at once: with latency, one caller alone cannot keep up with the limit.
    for _ in range(int(args.get("threads", 1))):
        threading.Thread(target=run, daemon=True).start()
    time.sleep(max(0.0, start_at + duration - time.time()))
    stop.set()
    result = {"outcomes": dict(outcomes), "cpu_s": time.process_time() - cpu0}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # do not wait for a call that sleeps until the next window


def _admit_and_complete(limiter: Any, account: str, operation: str, rates: Any) -> None:
    """One request's worth of limiter work: admit it, then complete it."""
    ticket = limiter.try_acquire(account, operation, rates)
    if not hasattr(ticket, "seq"):
        raise RuntimeError(f"the limiter bound ({ticket}); the overhead run needs free rates")
    limiter.complete(ticket)


def task_limiter_overhead(args: Json) -> Json:
    """Section 5: the limiter's own cost per admitted acquire, without any HTTP."""
    from klaviyo_catalog import Rate

    n = int(args["n"])
    out: Json = {}
    if args.get("redis_url"):
        from klaviyo_catalog import RedisRateLimiter

        redis_limiter = RedisRateLimiter(args["redis_url"])
        rates = (Rate(10**6, 1.0), Rate(10**7, 60.0))  # two windows, as Klaviyo has; not binding
        account = f"bench-{os.getpid()}"
        for _ in range(50):
            _admit_and_complete(redis_limiter, account, "warmup", rates)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            _admit_and_complete(redis_limiter, account, "get_item_update_job", rates)
        out["redis_wall_us"] = (time.perf_counter() - wall0) / n * 1e6
        out["redis_cpu_us"] = (time.process_time() - cpu0) / n * 1e6
        return out

    from klaviyo_catalog._ratelimit import MemoryRateLimiter

    # Real clock, two windows that never bind.
    free = MemoryRateLimiter()
    rates = (Rate(NO_LIMIT, 1.0), Rate(NO_LIMIT, 60.0))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        _admit_and_complete(free, "account", "get_item_update_job", rates)
    out["memory_wall_us"] = (time.perf_counter() - wall0) / n * 1e6
    out["memory_cpu_us"] = (time.process_time() - cpu0) / n * 1e6
    # Klaviyo's limits with 1,500 completions in the minute window, on a clock that moves 20 ms
    # per reading (two per request: under both limits, so every acquire is admitted).
    ticks = iter(range(10**12))
    real = MemoryRateLimiter(clock=lambda: next(ticks) * 0.02)
    klaviyo = (Rate(350, 1.0), Rate(3500, 60.0))
    for _ in range(4000):
        _admit_and_complete(real, "account", "get_item_update_job", klaviyo)
    cpu0 = time.process_time()
    for _ in range(n):
        _admit_and_complete(real, "account", "get_item_update_job", klaviyo)
    out["memory_full_ring_cpu_us"] = (time.process_time() - cpu0) / n * 1e6
    return out


# --- profile and micro-benchmarks ----------------------------------------------------------------


def _area(filename: str, function: str) -> str:
    """Where a profiled function's own time belongs, for the breakdown."""
    if filename == "~":
        if "fromisoformat" in function:
            return "datetime parsing (fromisoformat)"
        if "_json" in function:
            return "json decoding (C)"
        if "socket" in function or "select" in function or "poll" in function:
            return "socket calls (incl. waiting for the server)"
        if "isinstance" in function:
            return "builtins: isinstance"
        return "builtins: other"
    if filename.startswith("<attrs generated"):
        return "attrs-generated __init__/__eq__"
    path = filename.replace("\\", "/")
    for marker, area in (
        ("/klaviyo_catalog_api/", "generated models (klaviyo_catalog_api)"),
        ("/httpx/", "httpx"),
        ("/httpcore/", "httpcore"),
        ("/h11/", "h11"),
        ("/json/", "json (Python part)"),
        ("/attr/", "attrs library"),
        ("/attrs/", "attrs library"),
        ("/socket.py", "socket calls (incl. waiting for the server)"),
        ("/selectors.py", "socket calls (incl. waiting for the server)"),
    ):
        if marker in path:
            return area
    if "/scripts/bench_lib/" in path:
        return "the app's own reads (benchmark code)"
    if "/klaviyo_catalog/" in path:
        return f"facade: {path.rsplit('/', 1)[-1]}"
    if "/lib/python3" in path:
        module = path.rsplit("/lib/python3", 1)[-1].split("/", 1)[-1]
        return f"stdlib: {module}"
    return f"other: {path.rsplit('/', 1)[-1]}"


def _short(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return function
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/facade/", "/generated/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line}({function})"


def task_profile(args: Json) -> Json:
    """The facade's 100-item call under cProfile and, where installed, pyinstrument."""
    import cProfile
    import pstats

    calls = int(args["calls"])
    call, close = facade_call(args)
    for _ in range(int(args["warmup"])):
        call()
    profiler = cProfile.Profile()
    wall0 = time.perf_counter()
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    wall = time.perf_counter() - wall0
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    for key, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        area = _area(key[0], key[2])
        areas[area] = areas.get(area, 0.0) + tottime
    total = sum(areas.values())

    def row(key: tuple[str, int, str], value: tuple[int, int, float, float, Any]) -> Json:
        return {
            "function": _short(key),
            "ncalls_per_call": value[1] / calls,
            "tottime_us": value[2] / calls * 1e6,
            "cumtime_us": value[3] / calls * 1e6,
        }

    by_tottime = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)
    by_cumtime = sorted(
        (
            kv
            for kv in raw.items()
            if "/klaviyo_catalog" in kv[0][0] or kv[0][0].startswith("<attrs")
        ),
        key=lambda kv: kv[1][3],
        reverse=True,
    )
    out: Json = {
        "calls": calls,
        "profiled_wall_us": wall / calls * 1e6,
        "profiled_total_us": total / calls * 1e6,
        "areas": [
            {"area": area, "us": t / calls * 1e6, "share": t / total}
            for area, t in sorted(areas.items(), key=lambda kv: kv[1], reverse=True)
        ],
        "top_tottime": [row(k, v) for k, v in by_tottime[: int(args.get("top", 25))]],
        "top_cumtime": [row(k, v) for k, v in by_cumtime[: int(args.get("top", 25))]],
    }
    try:
        pyinstrument: Any = importlib.import_module("pyinstrument")
    except ImportError:
        out["pyinstrument"] = None
    else:
        sampler = pyinstrument.Profiler(interval=0.0001)
        sampler.start()
        for _ in range(calls):
            call()
        sampler.stop()
        out["pyinstrument"] = sampler.output_text(
            unicode=False, color=False, flat=True, flat_time="self"
        )
        out["pyinstrument_tree"] = sampler.output_text(unicode=False, color=False)
    close()
    return out


def _per_call_us(fn: Callable[[], object], n: int, repeats: int = 5) -> float:
    """The median CPU µs of one call of fn, over `repeats` batches of n."""
    results = []
    for _ in range(repeats):
        cpu0 = time.process_time()
        for _ in range(n):
            fn()
        results.append((time.process_time() - cpu0) / n * 1e6)
    results.sort()
    return results[len(results) // 2]


def task_micro(args: Json) -> Json:
    """What the pieces of a 100-item call cost, on the very body the fake serves, no sockets."""
    import datetime as dt

    import httpx

    headers = floor_headers(args)
    with httpx.Client() as client:
        response = client.get(args["url"], params={"include": "items"}, headers=headers)
        response.raise_for_status()
        body = response.content
    content_type = response.headers.get("content-type", "application/json")
    document = json.loads(body)
    n = int(args["n"])
    out: Json = {"body_bytes": len(body), "included": len(document.get("included") or ())}
    out["json_loads_us"] = _per_call_us(lambda: json.loads(body), n)

    models: Any = importlib.import_module("klaviyo_catalog_api.models")
    model = getattr(models, args.get("document_model", "ItemUpdateJobDocument"))
    out["generated_from_dict_us"] = _per_call_us(lambda: model.from_dict(document), n)
    item = (document.get("included") or [None])[0]
    if item is not None:
        item_model = getattr(models, "CatalogItem")  # noqa: B009
        out["generated_item_from_dict_us"] = _per_call_us(lambda: item_model.from_dict(item), n)
    stamp = document["data"]["attributes"]["created_at"]
    out["fromisoformat_us"] = _per_call_us(lambda: dt.datetime.fromisoformat(stamp), n * 20)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    mock = {**args, "base_url": "https://bench.invalid", "url": "https://bench.invalid/x/"}
    facade, close_facade = facade_call(mock, httpx.Client(transport=httpx.MockTransport(handler)))
    floor, close_floor = floor_call(mock, httpx.Client(transport=httpx.MockTransport(handler)))
    for _ in range(20):
        facade()
        floor()
    out["facade_mock_us"] = _per_call_us(facade, n)
    out["floor_mock_us"] = _per_call_us(floor, n)
    out["read_floor_document_us"] = _per_call_us(lambda: read_floor_document(body), n)
    close_facade()
    close_floor()
    return out


# --- start-up snippets (run with `python -c`, one fresh process each) -----------------------------

_PRELUDE = "import json, sys, time\nt0 = time.perf_counter()\n"
_REPORT = (
    "t2 = time.perf_counter()\n"
    "rss = [int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:')][0]\n"
    "print(json.dumps({'import_s': t1 - t0, 'first_call_s': t2 - t1, 'maxrss_kb': rss,"
    " 'modules': len(sys.modules)}))\n"
)
STARTUP: dict[str, str] = {
    # argv: api key, base URL, job id, job URL at the facade's revision, revision
    "python (no client)": _PRELUDE + "t1 = time.perf_counter()\n" + _REPORT,
    "floor (httpx + json)": _PRELUDE
    + "import httpx\n"
    + "t1 = time.perf_counter()\n"
    + "r = httpx.Client().get(sys.argv[4], params={'include': 'items'}, headers={"
    "'Authorization': 'Klaviyo-API-Key ' + sys.argv[1], 'revision': sys.argv[5]})\n"
    + "d = json.loads(r.content); [i['attributes']['title'] for i in d['included']]\n"
    + _REPORT,
    "facade": _PRELUDE
    + "from klaviyo_catalog import CatalogJobs\n"
    + "t1 = time.perf_counter()\n"
    + "with CatalogJobs(sys.argv[1], base_url=sys.argv[2]) as kc:\n"
    + "    job = kc.get_item_update_job(sys.argv[3], include=['items'])\n"
    + _REPORT,
    "klaviyo-api 25.0.0": _PRELUDE
    + "from klaviyo_api import KlaviyoAPI\n"
    + "t1 = time.perf_counter()\n"
    + "k = KlaviyoAPI(sys.argv[1], test_host=sys.argv[2])\n"
    + "doc = k.Catalogs.get_bulk_update_catalog_items_job(sys.argv[3], include=['items'])\n"
    + _REPORT,
}


TASKS: dict[str, Callable[[Json], Json]] = {
    "cpu": task_cpu,
    "listing": task_listing,
    "async": task_async,
    "tasks": task_tasks,
    "rate_client": task_rate_client,
    "limiter_overhead": task_limiter_overhead,
    "profile": task_profile,
    "micro": task_micro,
    "wait": lambda args: importlib.import_module("scripts.bench_lib.waiting").worker(args),
}


def main(argv: list[str]) -> None:
    task, args = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    gc.collect()
    result = TASKS[task](args)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
