"""A throwaway redis-server on 127.0.0.1 and a free port, without persistence.

The same recipe as tests/redis_server.py, which is not imported here: it needs pytest, and the
benchmark environment has none.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis(startup_timeout: float = 10.0) -> Iterator[str]:
    """Start redis-server, yield its URL once it answers PING, stop it afterwards."""
    if REDIS_SERVER is None:
        raise RuntimeError("redis-server is not on PATH (apt-get install -y redis-server)")
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        for _attempt in range(5):  # the probed port may be taken before redis binds it
            port = _free_port()
            process = subprocess.Popen(
                [
                    REDIS_SERVER,
                    *("--bind", "127.0.0.1", "--port", str(port), "--save", ""),
                    *("--appendonly", "no", "--dir", tmp, "--daemonize", "no"),
                    *("--logfile", str(Path(tmp) / "redis.log")),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + startup_timeout
            while process.poll() is None and time.monotonic() < deadline:
                if _ready(port):
                    break
                time.sleep(0.02)
            else:
                _stop(process)
                continue
            try:
                yield f"redis://127.0.0.1:{port}/0"
            finally:
                _stop(process)
            return
        raise RuntimeError("redis-server did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
