"""What `make bench` measures, and its fake: `python -m scripts.bench_lib.worker TASK JSON`.

Each task runs in a fresh interpreter and prints one JSON line, or serves the parent's commands
a JSON line each way (the fake; a client's batches of calls); module-level imports are the
lightest of the standard library, so a task pays only for what its client imports. The fake has
a process of its own, so a client's `time.process_time` is the client's only. Every single-job
call reads what an app would: the job's status and dates, each item's title and price.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from importlib import import_module
from typing import Any

Json = dict[str, Any]
Call = Callable[[], tuple[int, float]]  # one call: (items read, sum of their prices)
NO_LIMIT = 10**9  # a rate that never binds


def vm_kb(field: str = "VmHWM") -> int:
    """Peak (or with VmRSS, current) RSS in KiB. Not `ru_maxrss`: Linux carries that over exec."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def client(a: Json, kind: str = "CatalogJobs", **options: Any) -> Any:
    """A facade client of the fake, with a rate limit that never binds."""
    catalog = import_module("klaviyo_catalog")
    free = [catalog.Rate(NO_LIMIT, 1)]
    return getattr(catalog, kind)(a["api_key"], base_url=a["base_url"], rate_limits=free, **options)


def facade(a: Json, http_client: Any = None) -> tuple[Call, Any]:
    kc = client(a, http_client=http_client)

    def call() -> tuple[int, float]:
        job, total = kc.get_item_update_job(a["job_id"], include=["items"]), 0.0
        _ = (job.status, job.created_at, job.completed_at, job.expires_at)
        for item in job.items:
            _ = item.title
            total += item.price
        return len(job.items), total

    return call, kc.close


def facade_json(a: Json) -> tuple[Call, Any]:
    """The facade without the [speedups] extra: the standard library's JSON decoder."""
    setattr(import_module("klaviyo_catalog._jsonapi"), "loads", json.loads)  # noqa: B010
    return facade(a)


def read_floor(body: bytes) -> tuple[int, float]:
    document, total = json.loads(body), 0.0
    job = document["data"]["attributes"]
    _ = (job["status"], job["created_at"], job["completed_at"], job["expires_at"])
    for item in document["included"]:
        _ = item["attributes"]["title"]
        total += item["attributes"]["price"]
    return len(document["included"]), total


def headers(a: Json) -> dict[str, str]:
    """What the facade sends, so that the floor gets the very same document."""
    key = f"Klaviyo-API-Key {a['api_key']}"
    return {"Authorization": key, "revision": a["revision"], "Accept": a["media_type"]}


def floor(a: Json, http_client: Any = None) -> tuple[Call, Any]:
    http = http_client or import_module("httpx").Client()

    def call() -> tuple[int, float]:
        response = http.get(a["url"], params={"include": "items"}, headers=headers(a))
        return read_floor(response.raise_for_status().content)

    return call, http.close


def sdk(a: Json) -> tuple[Call, Any]:
    api = import_module("klaviyo_api").KlaviyoAPI(a["api_key"], test_host=a["base_url"])
    catalogs = api.Catalogs  # a property that wraps every method anew: taken once

    def call() -> tuple[int, float]:
        doc = catalogs.get_bulk_update_catalog_items_job(a["job_id"], include=["items"])
        job, total = doc.data.attributes, 0.0
        _ = (job.status, job.created_at, job.completed_at, job.expires_at)
        for item in doc.included or ():
            _ = item.attributes.title
            total += item.attributes.price
        return len(doc.included or ()), total

    return call, lambda: None


CLIENTS = {"floor": floor, "facade": facade, "facade-json": facade_json, "sdk": sdk}


def cpu_us(fn: Callable[[], object], n: int, repeats: int = 1) -> float:
    """The median CPU µs of one call of fn, over `repeats` batches of n."""
    runs = []
    for _ in range(repeats):
        cpu0 = time.process_time()
        for _ in range(n):
            fn()
        runs.append((time.process_time() - cpu0) / n * 1e6)
    return sorted(runs)[len(runs) // 2]


def calls(call: Call, n: int) -> Json:
    """CPU and wall µs per call over n calls, the items they read and their mean price sum."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results = [call() for _ in range(n)]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    items = sum(count for count, _ in results)
    prices = round(sum(total for _, total in results) / n, 6)
    return {"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6, "items": items, "price_sum": prices}


def task_batches(a: Json) -> None:
    """A client, warmed up, then running batches of calls as the parent asks (`batch`, n), one
    JSON line each way: the parent interleaves them with the other clients' batches."""
    call, close = CLIENTS[a["client"]](a)
    for _ in range(a["warmup"]):
        call()
    commands: dict[str, Callable[..., Any]] = {"batch": lambda n: calls(call, n)}
    if a["client"] == "sdk":  # what `client.Catalogs.<method>` costs when written on every call
        api = import_module("klaviyo_api").KlaviyoAPI(a["api_key"], test_host=a["base_url"])
        commands["catalogs"] = lambda: cpu_us(lambda: api.Catalogs, 200)
    serve(commands, greeting=None)
    close()


def task_startup(a: Json) -> Json:
    """Import a client, then build it and make one call; timed inside the process."""
    module = {"python": "json", "floor": "httpx", "facade": "klaviyo_catalog"}.get(a["client"])
    t0 = time.perf_counter()
    import_module(module or "klaviyo_api")
    t1 = time.perf_counter()
    if a["client"] != "python":
        CLIENTS[a["client"]](a)[0]()
    t2 = time.perf_counter()
    return {"import_s": t1 - t0, "call_s": t2 - t1, "rss_kb": vm_kb(), "modules": len(sys.modules)}


def task_listing(a: Json) -> Json:
    """Every job of every page: wall, CPU, RSS once the client exists, and peak RSS."""
    cpu0, wall0, jobs = time.process_time(), time.perf_counter(), 0
    if a["client"] == "facade":
        kc, ready = client(a), vm_kb("VmRSS")
        for job in kc.iter_item_create_jobs():
            _ = (job.id, job.status, job.created_at)
            jobs += 1
    else:
        http, url, ready = import_module("httpx").Client(), a["url"], vm_kb("VmRSS")
        while url:
            document = json.loads(http.get(url, headers=headers(a)).raise_for_status().content)
            for job in document["data"]:
                _ = (job["id"], job["attributes"]["status"], job["attributes"]["created_at"])
                jobs += 1
            url = (document.get("links") or {}).get("next")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"jobs": jobs, "wall_s": wall, "cpu_s": cpu, "ready_kb": ready, "peak_kb": vm_kb()}


def gather(one: Callable[[], Any], tasks: int, calls: int, warm: bool = False) -> Json:
    """`calls` calls of `one` shared by `tasks` asyncio tasks; `warm`: one round first."""
    import asyncio

    async def worker(n: int) -> int:
        for _ in range(n):
            await one()
        return n

    async def run() -> Json:
        if warm:  # open the connections
            await asyncio.gather(*(one() for _ in range(tasks)))
        share, extra = divmod(calls, tasks)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(share + (i < extra)) for i in range(tasks)))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return {"per_s": calls / wall, "cpu_us": cpu / calls * 1e6}

    return asyncio.run(run())


def task_async(a: Json) -> Json:
    """`concurrency` calls in flight at once: the facade's AsyncCatalogJobs or httpx's client."""
    kc, http = client(a, "AsyncCatalogJobs"), import_module("httpx").AsyncClient()

    async def one() -> Any:
        if a["client"] == "facade":
            return await kc.get_item_update_job(a["job_id"], include=["items"])
        response = await http.get(a["url"], params={"include": "items"}, headers=headers(a))
        return read_floor(response.raise_for_status().content)

    return gather(one, a["concurrency"], a["calls"], warm=True)


def task_tasks(a: Json) -> Json:
    """One cold AsyncCatalogJobs shared by N tasks, counting the TCP connections it opens."""
    backend = import_module("httpcore._backends.auto").AutoBackend
    opened, connect = [], backend.connect_tcp

    async def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        return await connect(*args, **kwargs)

    backend.connect_tcp, kc = counting, client(a, "AsyncCatalogJobs")
    out = gather(lambda: kc.get_item_update_job(a["job_id"]), a["tasks"], a["calls"])
    return out | {"connections": len(opened)}


def task_pool(a: Json) -> Json:
    """`calls` single-job calls shared by `tasks` tasks, through: the facade's own pool ("own",
    sized from the spec's limits), the facade with an app's client of 20 connections all kept
    alive ("twenty", the old size), or httpx's default pool (100 open, 20 kept alive) with
    every task let through ("httpx")."""
    import httpx

    if a["client"] == "httpx":
        # No pool timeout: its wait for a connection is what is measured, not a PoolTimeout.
        http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, pool=None))

        async def get() -> None:
            (await http.get(a["url"], headers=headers(a))).raise_for_status()

        return gather(get, a["tasks"], a["calls"])
    twenty = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    app = httpx.AsyncClient(limits=twenty) if a["client"] == "twenty" else None
    kc = client(a, "AsyncCatalogJobs", http_client=app)
    return gather(lambda: kc.get_item_update_job(a["job_id"]), a["tasks"], a["calls"])


def task_rate(a: Json) -> Json:
    """Call `op` as fast as the client's default (the spec's) limits let it, from `start_at` for
    `duration` s on `threads` daemon threads; a call waiting for the next window is abandoned."""
    import threading
    from collections import Counter

    from klaviyo_catalog import CatalogJobs, MemoryRateLimiter, RedisRateLimiter

    class NoHints(MemoryRateLimiter):
        """The default limiter without the server's budget hint: isolates what it costs."""

        def complete(self, ticket: Any, observation: Any = None) -> None:
            super().complete(ticket)

    redis = RedisRateLimiter(a["redis_url"]) if a["redis_url"] else None
    limiter = redis or (None if a["hints"] else NoHints())
    call = getattr(CatalogJobs(a["api_key"], base_url=a["base_url"], rate_limiter=limiter), a["op"])
    outcomes, stop = list[str](), threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                call(a["job_id"])
                outcomes.append("ok")
            except Exception as exc:  # counted and reported, never fatal
                outcomes.append(type(exc).__name__)

    time.sleep(max(0.0, a["start_at"] - time.time()))
    cpu0 = time.process_time()
    for _ in range(a["threads"]):
        threading.Thread(target=run, daemon=True).start()
    time.sleep(max(0.0, a["start_at"] + a["duration"] - time.time()))
    stop.set()
    result = {"outcomes": Counter(outcomes), "cpu_s": time.process_time() - cpu0}
    print(json.dumps(result), flush=True)
    os._exit(0)  # do not wait for a call that sleeps until the next window


def task_limiter(a: Json) -> Json:
    """The limiter's own cost per request (try_acquire + complete), without any HTTP."""
    from klaviyo_catalog import MemoryRateLimiter, Rate, RedisRateLimiter

    def one(limiter: Any, rates: Any) -> None:
        limiter.complete(limiter.try_acquire("account", "op", rates))  # a Wait (binding) fails

    free = (Rate(NO_LIMIT, 1.0), Rate(NO_LIMIT, 60.0))  # two windows, as Klaviyo has
    redis = RedisRateLimiter(a["redis_url"]) if a.get("redis_url") else None
    limiter, kind, wall0 = redis or MemoryRateLimiter(), "redis" if redis else "memory", time.time()
    out = {f"{kind}_cpu_us": cpu_us(lambda: one(limiter, free), a["n"])}
    out[f"{kind}_wall_us"] = (time.time() - wall0) / a["n"] * 1e6
    if redis:
        return out
    # The spec's limits on a clock just slower than the steady rate: the window holds nearly its
    # whole quota, yet every request is admitted.
    (burst, burst_s), (steady, steady_s) = sorted(a["limits"], key=lambda r: r[1])
    now, step = [0.0], max(steady_s / steady, burst_s / burst) * 1.05
    full, rates = (
        MemoryRateLimiter(clock=lambda: now[0]),
        (Rate(burst, burst_s), Rate(steady, steady_s)),
    )

    def tick() -> None:
        now[0] += step
        one(full, rates)

    cpu_us(tick, steady)  # fill the window
    return out | {"memory_full_cpu_us": cpu_us(tick, a["n"])}


def task_wait(a: Json) -> Json:
    """Wait with one `wait_for_jobs`, or (`each`) a `wait_for_job` task per job at a fixed interval;
    when each job was learned of (time.monotonic, the fake's clock too) and whether it was done."""
    import asyncio
    from contextlib import suppress

    from klaviyo_catalog import AsyncCatalogJobs, CatalogJobs, WaitTimeoutError
    from klaviyo_catalog_api.catalog_spec import KINDS

    with open(a["ids_file"]) as ids_file:  # kind -> the ids of its jobs to wait for
        wanted: dict[str, set[str]] = {k: set(ids) for k, ids in json.load(ids_file).items()}
    jobs: list[Any] = []
    with CatalogJobs(a["api_key"], base_url=a["base_url"]) as kc:
        for kind, ids in wanted.items():  # each kind's running jobs, from its list
            walk = getattr(kc, str(KINDS[kind].list_operation).replace("list_", "iter_", 1))
            jobs += [j for j in walk(status="processing") if j.id in ids]
    expected = sum(len(ids) for ids in wanted.values())
    if len(jobs) != expected:
        raise RuntimeError(f"fetched {len(jobs)} of {expected} jobs")
    seen, not_done = dict[str, list[float]](), list[str]()

    def note(job: Any) -> None:
        seen.setdefault(job.id, []).append(time.monotonic())
        not_done.extend([] if job.is_done else [job.id])

    interval, timeout = a["interval"], a["timeout"]

    async def each() -> None:  # a task per job, polling at a fixed interval; no call deadline,
        # as a call of the loop may wait minutes for its turn in the quota
        async with AsyncCatalogJobs(a["api_key"], base_url=a["base_url"], deadline=None) as kc:

            async def one(job: Any) -> None:
                with suppress(WaitTimeoutError):  # a job never reported shows as missed
                    note(await kc.wait_for_job(job, poll_interval=interval, **fixed))

            await asyncio.gather(*(one(job) for job in jobs))

    fixed = {"max_poll_interval": interval, "timeout": timeout}
    time.sleep(max(0.0, a["start_at"] - time.time()))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if a["mode"] == "each":
        asyncio.run(each())
    else:
        with CatalogJobs(a["api_key"], base_url=a["base_url"]) as kc, suppress(WaitTimeoutError):
            for job in kc.wait_for_jobs(jobs, poll_interval=interval, timeout=timeout):
                note(job)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    kinds = {job.id: job.kind for job in jobs}  # ids are unique per kind, and the fake's overall
    return {"seen": seen, "not_done": not_done, "wall_s": wall, "cpu_s": cpu, "kinds": kinds}


def area(filename: str, function: str) -> str:
    """Where a profiled function's own time belongs: socket, builtin, package or module."""
    if filename == "~":
        if any(word in function for word in ("socket", "select", "poll")):
            return "socket calls (incl. waiting for the server)"
        return "json decoding (C)" if "loads" in function else "builtins"
    if "/scripts/bench_lib/" in filename or filename.startswith("<attrs"):
        return "the app's own reads" if "/scripts/" in filename else "attrs-generated methods"
    if "/klaviyo_catalog/" in filename:
        return "facade: " + filename.rsplit("/", 1)[-1]
    tail = filename.split("/site-packages/")[-1].split("/generated/")[-1]
    stdlib = "stdlib: " + tail.split("/lib/python3")[-1].split("/", 1)[-1]
    return tail.split("/")[0] if tail != filename else stdlib


def short(filename: str, line: int, function: str) -> str:
    for marker in ("/site-packages/", "/facade/", "/generated/", "/lib/python3.11/", "/scripts/"):
        filename = filename.split(marker, 1)[-1]
    return function if filename == "~" else f"{filename}:{line}({function})"


def task_profile(a: Json) -> Json:
    """The facade's 100-item call under cProfile and, where installed, pyinstrument."""
    import cProfile
    import pstats

    call, close = facade(a)
    for _ in range(50):
        call()
    profiler, n, wall0 = cProfile.Profile(), a["calls"], time.perf_counter()
    profiler.runcall(lambda: [call() for _ in range(n)])
    out: Json = {"calls": n, "wall_us": (time.perf_counter() - wall0) / n * 1e6, "areas": {}}
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, own, _, _) in stats.items():
        where = area(filename, function)
        out["areas"][where] = out["areas"].get(where, 0.0) + own / n * 1e6
    ours = [kv for kv in stats.items() if "/klaviyo_catalog/" in kv[0][0]]
    for key, rows, i in (("own", list(stats.items()), 2), ("cumulative", ours, 3)):
        rows = sorted(rows, key=lambda kv, i=i: -kv[1][i])  # type: ignore[misc]
        out[key] = [[short(*k), v[1] / n, v[2] / n * 1e6, v[3] / n * 1e6] for k, v in rows[:20]]
    try:
        sampler = import_module("pyinstrument").Profiler(interval=0.0001)
    except ImportError:
        return out
    sampler.start()
    for _ in range(n):
        call()
    sampler.stop()
    close()
    return out | {"pyinstrument": sampler.output_text(unicode=False, flat=True, flat_time="self")}


def task_micro(a: Json) -> Json:
    """What the pieces of a 100-item call cost, on the very body the fake serves, no sockets."""
    import datetime as dt

    import httpx

    body = httpx.get(a["url"], params={"include": "items"}, headers=headers(a)).content
    document, n, models = json.loads(body), a["n"], import_module("klaviyo_catalog_api.models")
    spec = import_module("klaviyo_catalog_api.catalog_spec")
    model = spec.KINDS["item-update"].model + "Document"
    item, stamp = document["included"][0], document["data"]["attributes"]["created_at"]
    out: Json = {}

    def measure(what: str, fn: Callable[[], object], k: int = 1) -> None:
        out[what] = cpu_us(fn, n * k, 5)

    measure("`json.loads` of the body", lambda: json.loads(body))
    document_model = getattr(models, model)
    measure(
        f"generated `{model}.from_dict` (eager models)", lambda: document_model.from_dict(document)
    )
    measure(
        "generated `CatalogItem.from_dict`, one item", lambda: models.CatalogItem.from_dict(item)
    )
    measure("`datetime.fromisoformat`, one timestamp", lambda: dt.datetime.fromisoformat(stamp), 20)
    measure("the floor's dict reading (json.loads included)", lambda: read_floor(body))

    def answer(_: Any) -> Any:
        return httpx.Response(200, content=body, headers={"content-type": a["media_type"]})

    mock = {**a, "base_url": "https://bench.invalid", "url": "https://bench.invalid/x/"}
    for name, build in (("floor", floor), ("facade", facade)):
        call, close = build(mock, httpx.Client(transport=httpx.MockTransport(answer)))
        cpu_us(call, 20)
        measure(f"{name} through httpx.MockTransport", call)
        close()
    return out


def task_fake(a: Json) -> None:
    """FakeKlaviyo over stdin/stdout, one JSON line each way; `limits`: the spec's, or none."""
    from klaviyo_catalog.testing import DEFAULT_RATE_LIMITS, FakeKlaviyo, Fault

    fake = FakeKlaviyo(rate_limits=DEFAULT_RATE_LIMITS if a["limits"] else None)

    def add(kind: str, n: int, **options: Any) -> Json:
        ids = fake.add_jobs(kind, n, **options)
        return {"ids": ids, "url": fake.url(kind, ids[0]), "list_url": fake.url(kind)}

    def delay(low: float, high: float) -> None:
        """From now on every request waits low to high seconds (13 steps) before it is served."""
        steps = [Fault.delay(low + (high - low) * i / 12) for i in range(13)]
        fake.inject_random(1.0 if high > 0 else 0.0, steps, seed=0)

    commands: dict[str, Callable[..., Any]] = {
        "add": add,
        "delay": delay,
        "reset": fake.reset_log,
        "log": lambda: [[r.time, r.status, r.counted, r.path] for r in fake.request_log],
        "stats": lambda: [len(fake.request_log), time.process_time(), fake.internal_errors],
        "connections": lambda: fake.connections,
        "finish_randomly": lambda within, seed: fake.finish_randomly(within, seed=seed),
    }
    with fake:
        serve(commands, greeting=[fake.base_url, fake.api_key])


def serve(commands: dict[str, Callable[..., Any]], greeting: Any) -> None:
    """Greet, then answer each command line (`[name, arguments]`) of stdin until it closes."""
    print(json.dumps({"result": greeting}), flush=True)
    for line in sys.stdin:
        name, arguments = json.loads(line)
        try:
            reply = {"result": commands[name](**arguments)}
        except Exception as exc:  # the parent raises it
            reply = {"error": f"{name}: {exc!r}"}
        print(json.dumps(reply, default=repr), flush=True)


if __name__ == "__main__":
    task = globals()["task_" + sys.argv[1]]
    print(json.dumps(task(json.loads(sys.argv[2]))), flush=True)
