"""Section `waiting`: many running jobs finishing at random, waited for two ways.

500 running item-create and 500 running variant-update jobs (at full size) each finish at a
random moment within `span` seconds, on a FakeKlaviyo with the published 2026-07-15 limits
per operation (75/s and 750/min for these). One client process waits for all of them:

- `wait_for_jobs`: one call for the thousand jobs;
- per job: one `wait_for_job` call per job (asyncio tasks, so that they run at once), at the
  same fixed interval; item-create jobs go through the same list machinery, one job at a time.

Figures from the fake's log (every request that reached it) and the client's detection times
(time.monotonic, one clock for both processes on one machine): total requests, the busiest
minute and second, 429s, and the delay from each job's completion in the fake to the app
learning of it.
"""

from __future__ import annotations

import concurrent.futures
import statistics
import time
from typing import Any

from scripts.bench_lib.common import Json, run_worker
from scripts.bench_lib.fake_server import FakeServer
from scripts.bench_lib.windows import max_in_window

KINDS = ("item-create", "variant-update")
SETUP_S = 10.0  # for the worker to start and fetch its jobs before they start finishing
MODES = {"many": "wait_for_jobs", "each": "wait_for_job per job"}
X = "\u00d7"  # the multiplication sign, as in report.py


def log(message: str) -> None:
    import sys

    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench_waiting(jobs: int, span: float, interval: float, python: str) -> Json:
    out: Json = {"jobs_per_kind": jobs, "span_s": span, "interval_s": interval, "runs": {}}
    for mode, label in MODES.items():
        log(f"waiting: {label}, {jobs} + {jobs} jobs finishing within {span:g} s")
        out["runs"][mode] = _run(mode, jobs, span, interval, python)
    return out


def _run(mode: str, jobs: int, span: float, interval: float, python: str) -> Json:
    with FakeServer(rate_limits="spec", python=python) as fake:
        ids = {kind: fake.add_jobs(kind, jobs, status="processing")["ids"] for kind in KINDS}
        start_at = time.time() + SETUP_S
        args = {
            "base_url": fake.base_url,
            "api_key": fake.api_key,
            "ids": ids,
            "mode": mode,
            "interval": interval,
            "timeout": timeout_of(span, interval),
            "start_at": start_at,
        }
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(
                run_worker, python, "wait", args, timeout=SETUP_S + span + 600, retries=0
            )
            time.sleep(max(0.0, start_at - time.time()))
            fake.reset_log()  # the worker's setup (fetching its jobs) is not counted
            finishes: dict[str, float] = fake.command(
                "finish_randomly", {"within": span, "seed": 1}
            )["finishes"]
            result = future.result()
        entries = fake.command("log")["log"]
    return analyse(entries, finishes, result)


def timeout_of(span: float, interval: float) -> float:
    """Each wait's timeout: the span, and a minute (or ten intervals) more."""
    return span + max(60.0, 10 * interval)


def analyse(entries: list[list[Any]], finishes: dict[str, float], result: Json) -> Json:
    times = sorted(float(t) for t, *_ in entries)
    detected: dict[str, list[float]] = result["detected"]
    delays = [times_[0] - finishes[i] for i, times_ in detected.items() if i in finishes]
    by_path: dict[str, int] = {}
    for _, _, _, path in entries:
        # The operation: a list, or a single-job GET (paths end in the job id).
        key = "list " + path.split("/")[2] if path.count("/") == 2 else "get " + path.split("/")[2]
        by_path[key] = by_path.get(key, 0) + 1
    return {
        "requests": len(entries),
        "requests_by_operation": by_path,
        "max_per_minute": max_in_window(times, 60.0),
        "max_per_second": max_in_window(times, 1.0),
        "throttled": sum(1 for _, status, *_ in entries if status == 429),
        "other_errors": sum(1 for _, status, *_ in entries if status not in (200, 429)),
        "reported": len(detected),
        "expected": len(finishes),
        "exactly_once": set(detected) == set(finishes)
        and all(len(v) == 1 for v in detected.values()),
        "early": sum(1 for i, v in detected.items() if v[0] < finishes.get(i, 0.0)),
        "duplicates": sum(1 for v in detected.values() if len(v) > 1),
        "not_done": result["not_done"],
        "missed": len(set(finishes) - set(detected)),
        "median_delay_s": statistics.median(delays) if delays else None,
        "worst_delay_s": max(delays) if delays else None,
        "wall_s": result["wall_s"],
        "cpu_s": result["cpu_s"],
    }


# --- the worker (a fresh interpreter, through scripts.bench_lib.workers) ---------------------


def worker(args: Json) -> Json:
    import asyncio

    from klaviyo_catalog import AsyncCatalogJobs, BulkJob, CatalogJobs, WaitTimeoutError

    wanted = {i for ids in args["ids"].values() for i in ids}
    with CatalogJobs(args["api_key"], base_url=args["base_url"]) as kc:
        held: list[BulkJob] = [
            *(j for j in kc.iter_item_create_jobs(status="processing") if j.id in wanted),
            *(j for j in kc.iter_variant_update_jobs(status="processing") if j.id in wanted),
        ]
    if len(held) != len(wanted):
        raise RuntimeError(f"fetched {len(held)} of {len(wanted)} jobs")
    time.sleep(max(0.0, args["start_at"] - time.time()))
    detected: dict[str, list[float]] = {}
    not_done: list[str] = []
    interval, timeout = float(args["interval"]), float(args["timeout"])
    started, cpu = time.perf_counter(), time.process_time()

    def note(job: BulkJob) -> None:
        detected.setdefault(job.id, []).append(time.monotonic())
        if not job.is_done:
            not_done.append(job.id)

    if args["mode"] == "many":
        with CatalogJobs(args["api_key"], base_url=args["base_url"]) as kc:
            try:
                for job in kc.wait_for_jobs(held, poll_interval=interval, timeout=timeout):
                    note(job)
            except WaitTimeoutError:
                pass  # the jobs never reported show as missed
    else:

        async def each() -> None:
            async with AsyncCatalogJobs(args["api_key"], base_url=args["base_url"]) as kc:

                async def one(job: BulkJob) -> None:
                    try:
                        done = await kc.wait_for_job(
                            job,
                            poll_interval=interval,
                            max_poll_interval=interval,
                            timeout=timeout,
                        )
                    except WaitTimeoutError:
                        return
                    note(done)

                await asyncio.gather(*(one(job) for job in held))

        asyncio.run(each())
    return {
        "detected": detected,
        "not_done": not_done,
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
    }


# --- report ------------------------------------------------------------------------------------


def targets(data: Json) -> list[tuple[str, str, str, bool | None]]:
    many, each = data["runs"].get("many"), data["runs"].get("each")
    if not many:
        return []
    out: list[tuple[str, str, str, bool | None]] = []
    if each:
        ratio = each["requests"] / max(1, many["requests"])
        out.append(
            (
                "wait_for_jobs: requests, per-job wait_for_job ÷ wait_for_jobs",
                f"≥ 20{X}",
                f"{ratio:.1f}{X} ({each['requests']:,} vs {many['requests']:,})",
                ratio >= 20,
            )
        )
    out.append(("wait_for_jobs: 429s", "0", str(many["throttled"]), many["throttled"] == 0))
    worst, limit = many["worst_delay_s"], data["interval_s"] + 2.0
    out.append(
        (
            "wait_for_jobs: worst detection delay",
            f"≤ poll interval + 2 s ({limit:g} s)",
            f"{worst:.2f} s" if worst is not None else "none detected",
            worst is not None and worst <= limit and many["exactly_once"],
        )
    )
    return out


def render(data: Json) -> list[str]:
    runs = data["runs"]
    n = data["jobs_per_kind"]
    timeout = timeout_of(data["span_s"], data["interval_s"])
    lines = [
        "## 6. Waiting for many jobs",
        "",
        f"{n} running item-create and {n} running variant-update jobs, each finishing at a "
        f"random moment (seeded) within {data['span_s']:g} s, on FakeKlaviyo with the published "
        "2026-07-15 limits per operation (75/s and 750/min). Real time, not scaled. One client "
        f"process waits for all of them, polling every {data['interval_s']:g} s: "
        "`wait_for_jobs` once, or one `wait_for_job` per job (asyncio tasks, fixed interval). "
        "Requests and 429s are counted by the fake; a delay runs from a job's completion in "
        "the fake to the app receiving it (`scripts/bench_lib/waiting.py`). Per-job polling "
        "needs far more than the quota (a thousand requests every interval), so the client's "
        "limiter holds it at the quota: it cannot keep its interval, its delays grow, and its "
        f"request count is the quota times its duration, cut here by a {timeout:g} s timeout.",
        "",
    ]

    def cell(run: Json | None, key: str, fmt: str = "{:,}") -> str:
        if run is None or run.get(key) is None:
            return "-"
        return fmt.format(run[key])

    rows = []
    for mode, label in MODES.items():
        run = runs.get(mode)
        if run is None:
            continue
        rows.append(
            [
                f"`{label}`",
                cell(run, "requests"),
                cell(run, "max_per_minute"),
                cell(run, "max_per_second"),
                cell(run, "throttled"),
                cell(run, "median_delay_s", "{:.2f} s"),
                cell(run, "worst_delay_s", "{:.2f} s"),
                f"{run['reported']:,} of {run['expected']:,}",
                _once(run, timeout),
            ]
        )
    lines += _table(
        [
            "client",
            "requests",
            "max / min",
            "max / s",
            "429s",
            "median delay",
            "worst delay",
            "reported",
            "each once, none early",
        ],
        rows,
    )
    for mode, label in MODES.items():
        run = runs.get(mode)
        if run is not None:
            ops = ", ".join(f"{k} {v:,}" for k, v in sorted(run["requests_by_operation"].items()))
            lines.append(f"- `{label}`: {ops}; the wait took {run['wall_s']:.0f} s.")
    lines.append("")
    return lines


def _once(run: Json, timeout: float) -> str:
    if run["exactly_once"] and not run["early"]:
        return "yes"
    if run["early"] or run.get("duplicates", 1) or not run["missed"]:
        return "**no**"
    return f"yes; {run['missed']:,} not before the {timeout:g} s timeout"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]
