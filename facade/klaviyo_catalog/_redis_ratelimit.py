"""The in-flight-counting limiter of `_ratelimit`, shared through Redis by processes and hosts.

Admitting and completing are one EVALSHA each of a Lua script, so check and record are atomic
and cost one round trip each. The scripts stamp admissions and completions with the Redis
server's clock (`TIME`); since a request counts from its admission until a window after its
completion, neither clock skew between client hosts nor the distance to Klaviyo matters.

Keys, all sharing the hash tag `{account}` so that one script touches one Cluster slot:

- `<prefix>:{<account>}:pause`: the account's 429 cooldown, the server time (µs) it ends at;
- `<prefix>:{<account>}:<operation>:flight`: a sorted set of the requests in flight, score =
  admission time in µs;
- `<prefix>:{<account>}:<operation>:done`: a sorted set of completions within the longest
  window, score = completion time in µs;
- `<prefix>:{<account>}:<operation>:state`: the admission counter and the server's budget hint.

Every key expires once idle (a window after its last write, or the hint's end).
`account` should be `account_key(api_key)`, never the key itself.

redis-py is optional (the `[redis]` extra) and imported only when a `RedisRateLimiter` is made.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._ratelimit import (
    DEFAULT_MARGIN,
    HINT_RECHECK,
    RESET_GRANULARITY,
    Observation,
    Rate,
    Ticket,
    Wait,
    budget_hint,
    check_rates,
    checked_seconds,
    pause_seconds,
)
from .errors import ConfigurationError

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

__all__ = ["RedisNotInstalledError", "RedisRateLimiter"]


class RedisNotInstalledError(ImportError):
    """redis-py is missing: install the extra, `pip install 'klaviyo-catalog-jobs[redis]'`."""


# Lua 5.1 numbers are doubles: server times in µs (~1.8e15) are exact below 2^53, and Redis
# passes numeric arguments of redis.call exactly. Never build strings from them with `..`,
# which formats with 14 significant digits. Each script starts with `_NOW`, the server's clock.
_NOW = """
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: TIME, then writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

_ACQUIRE = """
-- KEYS[1] pause, KEYS[2] in flight (member -> admission us), KEYS[3] completions
-- (member -> completion us), KEYS[4] state hash (seq; hint: hint_seq, hint_max, hint_until)
-- ARGV[1] member, ARGV[2] margin us, ARGV[3] stale us, ARGV[4] recheck us,
-- ARGV[5..] pairs: count, window us, sorted by window (the longest last)
-- Returns {wait us, now us, paused 0/1, seq} (seq 0 when not admitted).
local paused = tonumber(redis.call('GET', KEYS[1]) or 0)
if paused > now then return {paused - now, now, 1, 0} end
local margin, stale = tonumber(ARGV[2]), tonumber(ARGV[3])
local flight, done, state = KEYS[2], KEYS[3], KEYS[4]
-- A request whose process died in flight counts as completed `stale` after its admission.
local lost = redis.call('ZRANGEBYSCORE', flight, '-inf', now - stale, 'WITHSCORES')
for i = 1, #lost, 2 do
  redis.call('ZADD', done, tonumber(lost[i + 1]) + stale, lost[i])
  redis.call('ZREM', flight, lost[i])
end
local longest = tonumber(ARGV[#ARGV]) + margin
redis.call('ZREMRANGEBYSCORE', done, '-inf', now - longest)
local in_flight = redis.call('ZCARD', flight)
local n = redis.call('ZCARD', done)
local wait = 0
for i = 5, #ARGV, 2 do
  local count, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1]) + margin
  if in_flight >= count then
    wait = math.max(wait, window)
  elseif in_flight + redis.call('ZCOUNT', done, now - window + 1, '+inf') >= count then
    local at = n - count + in_flight
    local oldest = tonumber(redis.call('ZRANGE', done, at, at, 'WITHSCORES')[2])
    wait = math.max(wait, oldest + window - now)
  end
end
local h = redis.call('HMGET', state, 'seq', 'hint_max', 'hint_until')
local seq = tonumber(h[1] or 0)
local hint_max, hint_until = tonumber(h[2]), tonumber(h[3])
if hint_until and hint_until > now and seq >= hint_max then
  local w = hint_until - now
  if in_flight > 0 then w = math.min(w, tonumber(ARGV[4])) end
  wait = math.max(wait, w)
end
if wait > 0 then return {wait, now, 0, 0} end
seq = redis.call('HINCRBY', state, 'seq', 1)
redis.call('ZADD', flight, now, ARGV[1])
local ttl = math.ceil((stale + longest) / 1000) + 1
redis.call('PEXPIRE', flight, ttl)
if redis.call('PTTL', state) < ttl then redis.call('PEXPIRE', state, ttl) end
return {0, now, 0, seq}
"""

_COMPLETE = """
-- KEYS[1] in flight, KEYS[2] completions, KEYS[3] state
-- ARGV[1] member, ARGV[2] longest window us (margin included), ARGV[3] ticket seq,
-- ARGV[4] highest admission the server's budget allows (-1: no observation), ARGV[5] reset us,
-- ARGV[6] reset granularity us. The hint is merged as `merge_hint` does it.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then -- else: already counted as lost
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[2]) / 1000) + 1)
end
local max_seq = tonumber(ARGV[4])
if max_seq < 0 then return 0 end
local seq, untl = tonumber(ARGV[3]), now + tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[3], 'hint_seq', 'hint_until')
local old_seq, old_until = tonumber(h[1]), tonumber(h[2])
if old_until and now < old_until then
  if seq < old_seq then return 0 end
  if untl < old_until + tonumber(ARGV[6]) then untl = math.min(untl, old_until) end
end
redis.call('HSET', KEYS[3], 'hint_seq', seq, 'hint_max', max_seq, 'hint_until', untl)
local ttl = math.ceil((untl - now) / 1000) + 1
if redis.call('PTTL', KEYS[3]) < ttl then redis.call('PEXPIRE', KEYS[3], ttl) end
return 0
"""

_PAUSE = """
-- KEYS[1] pause; ARGV[1] seconds in us. Only ever extends the pause.
local deadline = now + tonumber(ARGV[1])
if deadline > tonumber(redis.call('GET', KEYS[1]) or 0) then
  redis.call('SET', KEYS[1], deadline, 'PX', math.ceil((deadline - now) / 1000) + 1)
end
"""


class RedisRateLimiter:
    """The in-flight-counting limiter of `MemoryRateLimiter`, shared through Redis by processes
    and hosts; one round trip to admit a request and one to complete it.

    Pass `redis_url` (e.g. "redis://localhost:6379/0") or a ready redis-py `client` (its
    connection pool is thread-safe and survives fork). A client made from `redis_url` gives up
    on a Redis round trip after `socket_timeout` seconds (redis-py's default is never);
    `?socket_timeout=…` in the URL overrides it, and a ready `client` keeps its own settings.
    Redis errors propagate from `try_acquire`: failing closed is the caller's choice to make. A
    child process forked from one holding this limiter keeps sharing the same budget.

    Admission and completion are stamped with the Redis server's clock, so clock skew between
    client hosts cannot stretch or shrink a window. A request whose process died before
    completing it counts as completed `stale_after` seconds after its admission.

    RateLimit-* figures reach the shared budget hint with the completion (see `budget_hint`),
    so every process on the account slows down, not only the one that saw the headers.

    In async code each call is a short blocking round trip (about 0.1 ms on loopback), made in
    a worker thread.
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
        stale_after: float = 600.0,
        socket_timeout: float = 5.0,
    ) -> None:
        if (redis_url is None) == (client is None):
            raise ConfigurationError("pass exactly one of redis_url or client")
        self._margin_us = round(checked_seconds(margin, "margin", zero=True) * 1_000_000)
        self._stale_us = round(checked_seconds(stale_after, "stale_after") * 1_000_000)
        checked_seconds(socket_timeout, "socket_timeout")
        if client is None:
            try:
                import redis
            except ImportError as exc:
                raise RedisNotInstalledError(
                    "RedisRateLimiter needs redis-py: pip install 'klaviyo-catalog-jobs[redis]'"
                ) from exc
            assert redis_url is not None
            # redis-py waits forever by default: a Redis that accepts and never answers would
            # hold every thread that shares the budget. Options in the URL's query win.
            try:
                client = redis.Redis.from_url(
                    redis_url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
                )
            except ValueError as exc:  # redis-py's word for a URL it cannot read
                # Never the URL itself: it may carry a password.
                raise ConfigurationError(
                    f"redis_url is not a Redis URL (redis://, rediss:// or unix://): {exc!s:.80}"
                ) from None
        self._client = client
        self._prefix = prefix
        self._acquire: Script = client.register_script(_NOW + _ACQUIRE)
        self._complete: Script = client.register_script(_NOW + _COMPLETE)
        self._pause: Script = client.register_script(_NOW + _PAUSE)
        # Members must be unique among a key's requests across processes and threads.
        self._token = os.urandom(6).hex()
        self._seq = itertools.count()

    @property
    def client(self) -> Redis:
        """The redis-py client."""
        return self._client

    def try_acquire(self, account: str, operation: str, rates: Sequence[Rate]) -> Ticket | Wait:
        """See `RateLimiter.try_acquire`; the ticket's `admitted_at` is the Redis server's
        time (epoch seconds), the admission's timestamp in the shared log."""
        check_rates(rates)
        windows = sorted((round(r.per_seconds * 1_000_000), r.count) for r in rates)
        # The pid keeps members unique when an instance is inherited through fork.
        member = f"{os.getpid()}:{self._token}:{next(self._seq)}"
        args: list[int | str] = [member, self._margin_us, self._stale_us, round(HINT_RECHECK * 1e6)]
        for window_us, count in windows:
            args += [count, window_us]
        keys = [f"{self._prefix}:{{{account}}}:pause", *self._keys(account, operation)]
        reply: Any = self._acquire(keys=keys, args=args)
        wait_us, now_us, paused, seq = (int(x) for x in reply)
        if wait_us > 0:
            return Wait(wait_us / 1_000_000, paused=bool(paused))
        # The token is opaque to callers: the member, and the longest window for `complete`.
        longest_us = windows[-1][0] + self._margin_us
        return Ticket(account, operation, seq, now_us / 1_000_000, f"{member}|{longest_us}")

    def complete(self, ticket: Ticket, observation: Observation | None = None) -> None:
        """See `RateLimiter.complete`."""
        member, _, longest_us = ticket.token.rpartition("|")
        # Bounded by budget_hint (MAX_WAIT at most), so the µs stay exact in Lua and the state
        # key's TTL is as long as the hint, never decades; garbage is no hint, never an error.
        hint = budget_hint(ticket, observation) if observation is not None else None
        max_seq, reset_us = (-1, 0) if hint is None else (hint[0], round(hint[1] * 1e6))
        args: list[int | str] = [member, int(longest_us or 0), ticket.seq, max_seq]
        args += [reset_us, round(RESET_GRANULARITY * 1e6)]
        self._complete(keys=self._keys(ticket.account, ticket.operation), args=args)

    def pause(self, account: str, seconds: float) -> None:
        """See `RateLimiter.pause`."""
        seconds = pause_seconds(seconds)
        key = f"{self._prefix}:{{{account}}}:pause"
        self._pause(keys=[key], args=[math.ceil(seconds * 1_000_000)])

    def _keys(self, account: str, operation: str) -> list[str]:
        """The keys of one (account, operation): its requests in flight, its completions, its
        state."""
        base = f"{self._prefix}:{{{account}}}:{operation}"
        return [f"{base}:flight", f"{base}:done", f"{base}:state"]
