"""The sliding-log limiter of `_ratelimit`, shared through Redis by processes and hosts.

Each acquire is one EVALSHA of one Lua script, so check and record are atomic and cost one
round trip. The script stamps admissions with the Redis server's clock (`TIME`), so clock
skew between client hosts cannot stretch or shrink a window; only the jitter between Redis and
Klaviyo remains, which the margin covers as in memory.

Keys, all sharing the hash tag `{account}` so that one script touches one Cluster slot:

- `<prefix>:{<account>}:pause`: the account's 429 cooldown, the server time (µs) it ends at;
- `<prefix>:{<account>}:<operation>:<window µs>`: a sorted set of admissions, score = server
  time in µs, one set per distinct window length, expiring one window after the last write;
- `<prefix>:{<account>}:<operation>:hint`: the adaptive hint (see `RedisRateLimiter`).

`account` should be `account_key(api_key)`, never the key itself.

redis-py is optional (the `[redis]` extra) and imported only when a `RedisRateLimiter` is made.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from klaviyo_catalog._ratelimit import DEFAULT_MARGIN, Rate, _check_rates, _validate_pause

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

__all__ = ["RedisNotInstalledError", "RedisRateLimiter"]


class RedisNotInstalledError(ImportError):
    """redis-py is missing: install the extra, `pip install 'klaviyo-catalog-jobs[redis]'`."""


# Lua 5.1 numbers are doubles: server times in µs (~1.8e15) are exact below 2^53, and Redis
# passes numeric arguments of redis.call exactly. Never build strings from them with `..`,
# which formats with 14 significant digits.
_ACQUIRE = """
-- KEYS[1] pause, KEYS[2] hint, KEYS[3..] one sorted set per window
-- ARGV[1] unique member, ARGV[2] margin us, ARGV[3] steady log index (1-based)
-- ARGV[4..6] pending observation: limit (0: none), remaining, reset us
-- ARGV[7..] pairs: count, window us
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: TIME, then writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local margin = tonumber(ARGV[2])
local steady = tonumber(ARGV[3])
local nlogs = #KEYS - 2
local steady_key = KEYS[2 + steady]
local steady_count = tonumber(ARGV[5 + 2 * steady])
local steady_window = tonumber(ARGV[6 + 2 * steady])

local h = redis.call('HMGET', KEYS[2], 'limit', 'foreign', 'until')
local hint_limit, hint_foreign, hint_until = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
if hint_until and hint_until <= now then hint_limit = nil end

local obs_limit = tonumber(ARGV[4])
if obs_limit > 0 then
  -- Foreign usage = what the server counts in its current steady window minus our admissions
  -- since that window began; the largest figure within one server window wins.
  local deadline = now + tonumber(ARGV[6])
  -- RateLimit-Reset has whole seconds: the window may have begun up to 1 s earlier.
  local start = math.max(deadline - steady_window - 1000000, now - steady_window)
  local ours = redis.call('ZCOUNT', steady_key, start + 1, '+inf')
  local limit = obs_limit
  local foreign = math.max(0, obs_limit - tonumber(ARGV[5]) - ours)
  if hint_limit and math.abs(hint_until - deadline) < steady_window / 2 then
    foreign = math.max(foreign, hint_foreign)
    limit = math.min(limit, hint_limit)
    deadline = math.max(deadline, hint_until)
  end
  if foreign > 0 or limit < steady_count then
    redis.call('HSET', KEYS[2], 'limit', limit, 'foreign', foreign, 'until', deadline)
    redis.call('PEXPIRE', KEYS[2], math.ceil((deadline - now) / 1000) + 1)
    hint_limit, hint_foreign, hint_until = limit, foreign, deadline
  else
    redis.call('DEL', KEYS[2])
    hint_limit = nil
  end
end

-- Checked after the observation so that a paused acquire does not lose it.
local paused = tonumber(redis.call('GET', KEYS[1]) or 0)
if paused > now then return {paused - now, now} end

-- The score of the count-th newest admission in a log holding `used` (>= count).
local function oldest_in_window(key, used, count)
  return tonumber(redis.call('ZRANGE', key, used - count, used - count, 'WITHSCORES')[2])
end

local wait = 0
for i = 1, nlogs do
  local key = KEYS[2 + i]
  local count = tonumber(ARGV[5 + 2 * i])
  local window = tonumber(ARGV[6 + 2 * i]) + margin
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local used = redis.call('ZCARD', key)
  if used >= count then
    wait = math.max(wait, oldest_in_window(key, used, count) + window - now)
  end
  if i == steady and hint_limit then
    -- The capped count holds only until the server window resets.
    local cap = math.min(count, hint_limit) - hint_foreign
    if cap <= 0 then
      wait = math.max(wait, hint_until - now)
    elseif used >= cap then
      local w = oldest_in_window(key, used, cap) + window - now
      wait = math.max(wait, math.min(w, hint_until - now))
    end
  end
end
if wait > 0 then return {wait, now} end
for i = 1, nlogs do
  local key = KEYS[2 + i]
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, math.ceil((tonumber(ARGV[6 + 2 * i]) + margin) / 1000) + 1)
end
return {0, now}
"""

_PAUSE = """
-- KEYS[1] pause; ARGV[1] seconds in us. Only ever extends the pause.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local deadline = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or 0)
if deadline > current then
  redis.call('SET', KEYS[1], deadline, 'PX', math.ceil((deadline - now) / 1000) + 1)
  return deadline - now
end
return current - now
"""


class _Plan:
    """Keys and script arguments for one (account, operation, rates), built once."""

    __slots__ = ("args", "keys")

    def __init__(self, prefix: str, account: str, operation: str, rates: Sequence[Rate]) -> None:
        _check_rates(rates)
        # One log per distinct window length; of equal windows, the smallest count binds.
        windows: dict[int, int] = {}
        for rate in rates:
            window_us = round(rate.per_seconds * 1_000_000)
            windows[window_us] = min(rate.count, windows.get(window_us, rate.count))
        ordered = sorted(windows.items())
        base = f"{prefix}:{{{account}}}"
        self.keys = [f"{base}:pause", f"{base}:{operation}:hint"]
        self.keys += [f"{base}:{operation}:{window_us}" for window_us, _ in ordered]
        steady = len(ordered)  # sorted by window: the last is the longest
        self.args: list[int] = [steady]
        for window_us, count in ordered:
            self.args += [count, window_us]


class RedisRateLimiter:
    """The exact sliding-log limiter, shared through Redis; one round trip per acquire.

    Pass `redis_url` (e.g. "redis://localhost:6379/0") or a ready redis-py `client` (its
    connection pool is thread-safe and survives fork). Redis errors propagate from
    `try_acquire`: failing closed is the caller's choice to make.

    `observe` costs no round trip: it stores the latest RateLimit-* figures of the key locally
    and the next `try_acquire` of that key hands them to the acquire script, which computes
    the foreign usage exactly as `MemoryRateLimiter` does, but against the shared log of all
    our processes, and stores the resulting cap in the shared hint key until the server
    window resets. So every process on the account slows down, not only the one that saw the
    headers. Between the response and that next acquire, admissions by other processes count
    as ours, which can only underestimate foreign usage.

    In async code each call is a short blocking round trip (about 0.1 ms on loopback).
    """

    # Each call is a network round trip: the async client runs it off the event loop.
    blocking_io = True

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        client: Redis | None = None,
        prefix: str = "klaviyo-catalog",
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        if (redis_url is None) == (client is None):
            raise ValueError("pass exactly one of redis_url or client")
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"margin must be finite and >= 0, got {margin!r}")
        if client is None:
            try:
                import redis
            except ImportError as exc:
                raise RedisNotInstalledError(
                    "RedisRateLimiter needs redis-py: pip install 'klaviyo-catalog-jobs[redis]'"
                ) from exc
            assert redis_url is not None
            client = redis.Redis.from_url(redis_url)
        self._client = client
        self._prefix = prefix
        self._margin_us = round(margin * 1_000_000)
        self._acquire: Script = client.register_script(_ACQUIRE)
        self._pause: Script = client.register_script(_PAUSE)
        self._plans: dict[tuple[str, str, tuple[Rate, ...]], _Plan] = {}
        self._plans_lock = threading.Lock()
        self._pending: dict[tuple[str, str], tuple[int, int, float]] = {}
        # Members must be unique among a window's admissions across processes and threads.
        self._token = os.urandom(6).hex()
        self._seq = itertools.count()

    @property
    def client(self) -> Redis:
        return self._client

    def try_acquire(self, account: str, operation: str, rates: Sequence[Rate]) -> float:
        return self.try_acquire_timed(account, operation, rates)[0]

    def try_acquire_timed(
        self, account: str, operation: str, rates: Sequence[Rate]
    ) -> tuple[float, float]:
        """`try_acquire`, plus the Redis server time (epoch seconds) of the decision: the
        admission's timestamp in the shared log when the wait is 0.0."""
        plan = self._plan(account, operation, rates)
        observation: list[int] = [0, 0, 0]
        if self._pending:
            pending = self._pending.pop((account, operation), None)
            if pending is not None:
                limit, remaining, deadline = pending
                reset_us = round((deadline - time.monotonic()) * 1_000_000)
                if reset_us > 0:
                    observation = [limit, remaining, reset_us]
        # The pid keeps members unique when an instance is inherited through fork.
        member = f"{os.getpid()}:{self._token}:{next(self._seq)}"
        args: list[int | str] = [member, self._margin_us, *plan.args[:1], *observation]
        args += plan.args[1:]
        reply: Any = self._acquire(keys=plan.keys, args=args)
        wait_us, now_us = int(reply[0]), int(reply[1])
        return wait_us / 1_000_000, now_us / 1_000_000

    def pause(self, account: str, seconds: float) -> None:
        _validate_pause(seconds)
        key = f"{self._prefix}:{{{account}}}:pause"
        self._pause(keys=[key], args=[math.ceil(seconds * 1_000_000)])

    def observe(
        self, account: str, operation: str, limit: int, remaining: int, reset_seconds: float
    ) -> None:
        if limit <= 0 or not (math.isfinite(reset_seconds) and reset_seconds > 0):
            return
        remaining = min(max(remaining, 0), limit)
        # The newest response wins locally; the script merges it with the shared hint.
        self._pending[(account, operation)] = (limit, remaining, time.monotonic() + reset_seconds)

    def _plan(self, account: str, operation: str, rates: Sequence[Rate]) -> _Plan:
        key = (account, operation, rates if isinstance(rates, tuple) else tuple(rates))
        plan = self._plans.get(key)
        if plan is None:
            plan = _Plan(self._prefix, account, operation, rates)
            with self._plans_lock:
                if len(self._plans) >= 4096:  # a bound, not an LRU: rebuilding a plan is cheap
                    self._plans.clear()
                self._plans[key] = plan
        return plan
