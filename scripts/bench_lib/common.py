"""Paths, the worker protocol, statistics and machine facts shared by the benchmark modules."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH_VENV_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
WORKERS_MODULE = "scripts.bench_lib.workers"
FAKE_MODULE = "scripts.bench_lib.fake_server"

Json = dict[str, Any]


class BenchError(RuntimeError):
    """A worker or helper process failed; the message carries the end of its stderr."""


def child_env() -> dict[str, str]:
    """The environment of every subprocess: the repo importable, no stray bytecode or hashing."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    env.pop("KLAVIYO_API_KEY", None)  # every client gets the fake's key explicitly
    return env


def run_json(command: Sequence[str], *, timeout: float) -> tuple[Json, float]:
    """Run a command that prints one JSON object as its last stdout line.

    Returns the object and the wall time of the whole process, start to exit.
    """
    started = time.perf_counter()
    try:
        done = subprocess.run(
            list(command),
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(command[:4])} timed out after {timeout:g}s") from exc
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout)[-3000:]
        raise BenchError(f"{' '.join(command[:4])} exited {done.returncode}:\n{tail}")
    result: Json = json.loads(lines[-1])
    return result, wall


def run_worker(
    python: str, task: str, args: Json, *, timeout: float = 900.0, retries: int = 1
) -> Json:
    """Run one measurement in a fresh interpreter: `python -m scripts.bench_lib.workers`.

    A failed worker is retried once by default, after a pause: the code under test may be
    mid-edit in a shared work tree.
    """
    command = [python, "-m", WORKERS_MODULE, task, json.dumps(args)]
    for attempt in range(retries + 1):
        try:
            result, _ = run_json(command, timeout=timeout)
            return result
        except BenchError as exc:
            if attempt == retries:
                raise
            print(f"worker {task} failed, retrying in 5 s: {exc}", file=sys.stderr, flush=True)
            time.sleep(5)
    raise AssertionError("unreachable")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def git_state() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "facade", "generated")
    return commit + (" + uncommitted changes in facade/ or generated/" if dirty else "")


def python_version(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def package_version(python: str, distribution: str) -> str | None:
    code = (
        "import importlib.metadata as m, sys\n"
        "try: print(m.version(sys.argv[1]))\n"
        "except m.PackageNotFoundError: pass\n"
    )
    done = subprocess.run(
        [python, "-c", code, distribution], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or None


def machine_info() -> Json:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git_state(),
        "load_before": [round(x, 2) for x in load],
        "executable": sys.executable,
    }
