"""The pytest side of `klaviyo_catalog.testing.running_redis_server`.

A test module wraps `running_redis_server()` in its own fixture (a fixture imported from here
would trip ruff's F401/F811, and there is no conftest.py). Tests that need a server carry
`requires_redis_server`, which skips them only when `redis-server` is not on PATH.
"""

from __future__ import annotations

import pytest
from klaviyo_catalog.testing import REDIS_SERVER, RedisServer, running_redis_server

__all__ = ["RedisServer", "requires_redis_server", "running_redis_server"]

requires_redis_server = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="redis-server is not on PATH (apt-get install -y redis-server)",
)
