"""FakeKlaviyo in a process of its own, driven over stdin/stdout with one JSON line each way.

The benchmarks measure the client's CPU with `time.process_time`, which counts every thread of
the process: a fake running in the client's process would bill its own work to the client.

    python -m scripts.bench_lib.fake_server '{"rate_limits": null, "page_size": 100}'

(`"rate_limits": "spec"` keeps each operation's published limits.)

prints `{"base_url": ..., "api_key": ...}`, then answers one command per line:

- `add {"kind": ..., "n": ..., "options": {...}, "revisions": [...]}`: `{"ids": [...],
  "urls": {revision: URL of the first job}, "list_urls": {revision: URL of the kind's list}}`;
- `latency {"seconds": s}`: from now on every request waits s seconds before it is served;
- `jitter {"seconds": s}`: every request waits a random 0 to s seconds (13 steps) first;
- `log`: `{"log": [[monotonic time, status, counted, path], ...]}`; `reset`: clears the log;
- `finish_randomly {"within": s, "seed": n}`: every running job finishes on its own within s
  seconds; `{"finishes": {id: monotonic time}}`;
- `stats`: the fake's request count, its own CPU seconds and any internal errors;
- `quit` (or end of input): stops the fake and exits.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from types import TracebackType
from typing import IO, Any, Self

from scripts.bench_lib.common import FAKE_MODULE, ROOT, BenchError, Json, child_env


def serve(config: Json) -> None:
    from klaviyo_catalog.testing import FakeKlaviyo, Fault

    limits = config.get("rate_limits")
    options: dict[str, Any] = {"page_size": int(config.get("page_size", 100))}
    if limits != "spec":  # "spec": the fake's default, each operation's published limits
        options["rate_limits"] = [(int(c), float(s)) for c, s in limits] if limits else None
    fake = FakeKlaviyo(**options)
    with fake:
        _reply({"base_url": fake.base_url, "api_key": fake.api_key})
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "add":
                spec = json.loads(argument)
                job_options: dict[str, Any] = spec.get("options", {})
                ids = fake.add_jobs(spec["kind"], int(spec.get("n", 1)), **job_options)
                revisions = spec.get("revisions", [])
                # The fake serves the generated revision's shape whatever revision is asked for.
                urls = {rev: fake.url(spec["kind"], ids[0]) for rev in revisions}
                lists = {rev: fake.url(spec["kind"]) for rev in revisions}
                _reply({"ids": ids, "urls": urls, "list_urls": lists})
            elif command == "log":
                log = [[r.time, r.status, r.counted, r.path] for r in fake.request_log]
                _reply({"log": log})
            elif command == "finish_randomly":
                spec = json.loads(argument)
                finishes = fake.finish_randomly(float(spec["within"]), seed=spec.get("seed", 0))
                _reply({"finishes": finishes})
            elif command == "latency":
                seconds = float(json.loads(argument)["seconds"])
                if seconds > 0:  # every request waits first, as if it crossed a network
                    fake.inject_random(1.0, [Fault.delay(seconds)])
                else:
                    fake.clear_faults()
                _reply({})
            elif command == "jitter":
                seconds = float(json.loads(argument)["seconds"])
                steps = [Fault.delay(seconds * i / 12) for i in range(13)]
                fake.inject_random(1.0 if seconds > 0 else 0.0, steps, seed=0)
                _reply({})
            elif command == "reset":
                fake.reset_log()
                _reply({})
            elif command == "stats":
                errors = [repr(e) for e in fake.internal_errors]
                _reply(
                    {
                        "requests": len(fake.request_log),
                        "cpu_s": time.process_time(),
                        "internal_errors": errors,
                    }
                )
            elif command == "quit":
                _reply({})
                break
            else:
                _reply({"error": f"unknown command {command!r}"})


def _reply(message: Json) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class FakeServer:
    """The parent's handle on a fake server process (a context manager)."""

    def __init__(
        self,
        *,
        rate_limits: list[tuple[int, float]] | str | None = None,
        page_size: int = 100,
        python: str = sys.executable,
    ) -> None:
        config = {"rate_limits": rate_limits, "page_size": page_size}
        self._process = subprocess.Popen(
            [python, "-m", FAKE_MODULE, json.dumps(config)],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.base_url: str = hello["base_url"]
        self.api_key: str = hello["api_key"]

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:
            raise BenchError("the fake server has no pipes")
        return stdin, stdout

    def _read(self) -> Json:
        line = self._pipes()[1].readline()
        if not line:
            raise BenchError(f"the fake server exited (code {self._process.poll()})")
        message: Json = json.loads(line)
        if "error" in message:
            raise BenchError(f"fake server: {message['error']}")
        return message

    def command(self, command: str, argument: Json | None = None) -> Json:
        stdin, _ = self._pipes()
        stdin.write(command + (" " + json.dumps(argument) if argument is not None else "") + "\n")
        stdin.flush()
        return self._read()

    def add_jobs(
        self, kind: str, n: int = 1, *, revisions: tuple[str, ...] = (), **options: Any
    ) -> Json:
        """`ids`, and per revision given the URL of the first job (`urls`) and of the list."""
        spec = {"kind": kind, "n": n, "options": options, "revisions": list(revisions)}
        return self.command("add", spec)

    def log(self) -> list[tuple[float, int | None, bool]]:
        return [(float(t), s, bool(c)) for t, s, c, *_ in self.command("log")["log"]]

    def set_latency(self, seconds: float) -> None:
        self.command("latency", {"seconds": seconds})

    def reset_log(self) -> None:
        self.command("reset")

    def stats(self) -> Json:
        return self.command("stats")

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(BenchError, OSError, ValueError):
                self.command("quit")
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
