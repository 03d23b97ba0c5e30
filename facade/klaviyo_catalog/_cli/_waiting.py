"""`klaviyo-catalog jobs wait` (many jobs, one aggregate display) and `jobs watch`.

On a terminal `wait` draws one progress bar, redrawn in place and every second (so the elapsed
time ticks between polls), never wider than the terminal; in a pipe it prints a plain line
per round; with --json, one JSON line per round and one per finished job. Ctrl-C ends the
bar's line before the CLI reports the interruption, so the shell prompt starts clean.
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from klaviyo_catalog_api.catalog_spec import KINDS

from .._client import CatalogJobs
from .._models import BulkJob, JobStatus
from .._polling import WaitProgress
from .._text import escape
from ._jobs import walk
from ._render import SHORT_KINDS, JobTable, counts, describe_error, job_json, to_json

# From the generated kinds: a kind can be waited for if it can be fetched at all (by its GET
# or through its list), and `watch` shows the running jobs of every listable kind.
WAIT_KINDS = tuple(n for n, kind in KINDS.items() if kind.get_operation or kind.list_operation)
WATCH_KINDS = tuple(n for n, kind in KINDS.items() if kind.list_operation)
TICK = 1.0  # seconds between redraws of a live display
SHOWN_ERRORS = 3
PAGE_JOBS = 100  # jobs on a page of a list: more ids than this are found in fewer requests


def is_live(out: TextIO) -> bool:
    return out.isatty() and os.environ.get("TERM") != "dumb"


def elapsed_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# --- jobs wait -------------------------------------------------------------------------------


class WaitDisplay:
    """What `jobs wait` shows; `progress` and `finished` are called from the wait, `close` at
    the end. In live mode a daemon thread redraws the bar every second."""

    def __init__(self, out: TextIO, *, live: bool, json_lines: bool) -> None:
        self.out = out
        self.live = live and not json_lines
        self.json_lines = json_lines
        self.started = time.monotonic()
        self._last: WaitProgress | None = None
        self._drawn = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "")
        self._marks = ("█", "░") if encoding == "utf8" else ("#", "-")
        self._ticker: threading.Thread | None = None
        if self.live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def progress(self, progress: WaitProgress) -> None:
        with self._lock:
            self._last = progress
            if self.json_lines:
                self._line(to_json({"event": "progress", **_progress_json(progress)}))
            elif self.live:
                self._draw()
            else:
                self._line(f"{self.elapsed:7.1f}s  {_summary(progress)}")

    def finished(self, job: BulkJob) -> None:
        with self._lock:
            if self.json_lines:
                self._line(to_json({"event": "done", "job": job_json(job)}))
                return
            lines = [
                f"job {escape(job.id)} is {escape(str(job.status))} after {self.elapsed:.1f}s: "
                f"{counts(job)}"
            ]
            lines += [f"  - {describe_error(error)}" for error in job.errors[:SHOWN_ERRORS]]
            if len(job.errors) > SHOWN_ERRORS:
                lines.append(
                    f"  ... and {len(job.errors) - SHOWN_ERRORS} more: see `jobs get --json`"
                )
            self._erase()
            for line in lines:
                self._line(line)
            if self.live and self._last is not None:
                self._draw()

    def close(self) -> None:
        """Stop redrawing, and end the bar's line (also on Ctrl-C and errors)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self._lock:
            if self._drawn:
                self.out.write("\n")
                self.out.flush()
                self._drawn = False

    # --- drawing ---

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self._lock:
                if self._last is not None and not self._stop.is_set():
                    self._draw()

    def _draw(self) -> None:
        progress = self._last
        if progress is None:
            return
        columns = max(20, shutil.get_terminal_size().columns)
        percent, elapsed = f"{progress.progress:>4.0%}", elapsed_text(self.elapsed)
        short = f"{percent}  {progress.done}/{progress.jobs} jobs done  {elapsed}"
        line = short[: columns - 1]
        # The item counts go first when the terminal is narrow; the bar takes the rest.
        for text in (f"{percent}  {_summary(progress)}  {elapsed}", short):
            room = columns - 1 - len(text) - 3  # one column spare: a full line would wrap
            if room >= 10:
                size = min(40, room)
                filled = round(progress.progress * size)
                bar = self._marks[0] * filled + self._marks[1] * (size - filled)
                line = f"[{bar}] {text}"
                break
        self.out.write("\r" + line + "\x1b[K")
        self.out.flush()
        self._drawn = True

    def _erase(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def _summary(progress: WaitProgress) -> str:
    missing = f", {progress.missing} in no list" if progress.missing else ""
    return (
        f"{progress.done}/{progress.jobs} jobs done{missing}  "
        f"{progress.completed_items:,} completed, {progress.failed_items:,} failed, "
        f"{progress.total_items:,} items"
    )


def _progress_json(progress: WaitProgress) -> dict[str, object]:
    return {
        "elapsed_s": round(progress.elapsed, 3),
        "jobs": progress.jobs,
        "done": progress.done,
        "running": progress.running,
        "missing": progress.missing,
        "total_items": progress.total_items,
        "completed_items": progress.completed_items,
        "failed_items": progress.failed_items,
        "progress": round(progress.progress, 4),
        "rounds": progress.rounds,
        "requests": progress.requests,
    }


def initial_jobs(client: CatalogJobs, kind: str, job_ids: list[str]) -> list[BulkJob]:
    """The jobs to wait for, as they are now: by their GET (a 404 names the job), or from the
    kind's list (one request per 100 jobs of the account) for a kind with no GET or for more
    ids than a page holds."""
    ids = list(dict.fromkeys(job_ids))
    spec = KINDS[kind]
    if spec.get_operation and not (spec.list_operation and len(ids) > PAGE_JOBS):
        get: Callable[[str], BulkJob] = getattr(client, spec.get_operation)
        return [get(i) for i in ids]
    wanted, found = set(ids), {}
    for job in walk(client, kind):
        if job.id in wanted:
            found[job.id] = job
            if len(found) == len(wanted):
                break
    missing = [i for i in ids if i not in found]
    if missing:
        from . import CliError

        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise CliError(f"no {kind} job with id {shown}: check the ids and KIND", code=1)
    return [found[i] for i in ids]


def wait_jobs(client: CatalogJobs, args: argparse.Namespace, out: TextIO) -> int:
    jobs = initial_jobs(client, args.kind, args.job_ids)
    display = WaitDisplay(out, live=is_live(out), json_lines=args.json)
    finished: list[BulkJob] = []
    try:
        for job in client.wait_for_jobs(
            jobs,
            poll_interval=args.poll_interval,
            timeout=args.timeout,
            on_progress=display.progress,
        ):
            finished.append(job)
            display.finished(job)
    finally:
        display.close()
    if len(finished) > 1 and not args.json:
        statuses = {str(s): sum(1 for j in finished if j.status == s) for s in JobStatus}
        done = ", ".join(f"{n} {s}" for s, n in statuses.items() if n)
        failed = sum(j.failed_count for j in finished)
        completed = sum(j.completed_count for j in finished)
        print(
            f"{len(finished)} jobs done in {elapsed_text(display.elapsed)}: {done}; "
            f"{completed:,} items completed, {failed:,} failed",
            file=out,
        )
    return 0


# --- jobs watch ------------------------------------------------------------------------------


def watch_jobs(client: CatalogJobs, args: argparse.Namespace, out: TextIO) -> int:
    """Every running job of the account's listable kinds, polled until Ctrl-C (or --count
    polls): a table redrawn in place on a terminal, JSON lines in a pipe."""
    live = is_live(out) and not args.json
    polls = 0
    try:
        while True:
            polled_at = time.time()
            running = list(_running(client))
            polls += 1
            if live:
                _draw_table(out, running, args.interval)
            else:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(polled_at))
                for job in running:
                    print(to_json({"poll": polls, "at": stamp, **job_json(job)}), file=out)
                if not running:
                    print(to_json({"poll": polls, "at": stamp, "running": 0}), file=out)
                out.flush()
            if args.count is not None and polls >= args.count:
                return 0
            time.sleep(args.interval)
    finally:
        if live:
            out.write("\n")
            out.flush()


def _running(client: CatalogJobs) -> Iterator[BulkJob]:
    seen: set[tuple[str, str]] = set()  # a job that moved from queued to processing meanwhile
    for status in (JobStatus.QUEUED.value, JobStatus.PROCESSING.value):
        for kind in WATCH_KINDS:
            for job in walk(client, kind, status):
                if (job.kind, job.id) not in seen:
                    seen.add((job.kind, job.id))
                    yield job


def _draw_table(out: TextIO, running: list[BulkJob], interval: float) -> None:
    size = shutil.get_terminal_size()
    rows = JobTable()
    header = (
        f"{len(running)} running jobs ({', '.join(WATCH_KINDS)}) at "
        f"{time.strftime('%H:%M:%S')} (every {interval:g}s; Ctrl-C to stop)"
    )
    width = max(len(kind) for kind in WATCH_KINDS)
    lines = [header, "", f"{'KIND':<{width}}  {rows.header()}"]
    room = max(1, size.lines - len(lines) - 2)
    for job in running[:room]:
        kind = escape(SHORT_KINDS.get(job.kind, job.kind))
        lines.append(f"{kind:<{width}}  {rows.row(job)}")
    if len(running) > room:
        lines.append(f"... and {len(running) - room} more")
    # Home, then each line cleared to its end, then the rest of the screen cleared.
    text = "\x1b[H" + "".join(line[: size.columns - 1] + "\x1b[K\n" for line in lines)
    out.write(text + "\x1b[J")
    out.flush()
