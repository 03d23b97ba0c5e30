"""A throwaway `redis-server` on 127.0.0.1: a free port, no persistence, stopped afterwards.

For tests of code that shares its rate limit through `RedisRateLimiter`, and for the
benchmarks. Needs `redis-server` on PATH (`apt-get install -y redis-server`).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REDIS_SERVER", "RedisServer", "running_redis_server"]

REDIS_SERVER = shutil.which("redis-server")


@dataclass(frozen=True)
class RedisServer:
    """A running throwaway redis-server, as `running_redis_server()` yields it."""

    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """`redis://host:port/0`, for `RedisRateLimiter(url)`."""
        return f"redis://{self.host}:{self.port}/0"


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that was free when asked (redis-server binds it later, so it may
    not be)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ready(host: str, port: int) -> bool:
    """Whether a Redis server on host:port answers PING."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis_server(startup_timeout: float = 10.0) -> Iterator[RedisServer]:
    """Start redis-server on 127.0.0.1, yield it once it answers PING, stop it afterwards."""
    if REDIS_SERVER is None:
        raise RuntimeError("redis-server is not on PATH (apt-get install -y redis-server)")
    with tempfile.TemporaryDirectory(prefix="redis-test-") as tmp:
        # The port is free when probed but could be taken before redis binds it: retry.
        last_log = ""
        for _attempt in range(5):
            port = _free_port()
            log = Path(tmp) / f"redis-{port}.log"
            options = {
                "--bind": "127.0.0.1",
                "--port": str(port),
                "--save": "",  # no snapshots (no shell, so this is a real empty argument)
                "--appendonly": "no",
                "--dir": tmp,
                "--logfile": str(log),
                "--daemonize": "no",
            }
            process = subprocess.Popen(
                [REDIS_SERVER, *(part for option in options.items() for part in option)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + startup_timeout
            while process.poll() is None and time.monotonic() < deadline:
                if _ready("127.0.0.1", port):
                    break
                time.sleep(0.02)
            else:
                _stop(process)
                last_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                continue
            try:
                yield RedisServer("127.0.0.1", port, process)
            finally:
                _stop(process)
            return
        raise RuntimeError(f"redis-server did not start; its log ends:\n{last_log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a redis-server: terminate, and kill it if it has not exited within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
