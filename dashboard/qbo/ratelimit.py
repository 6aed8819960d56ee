"""Intuit's per-realm limits, counted across every worker: moving windows plus a concurrency cap.

Production uses Redis (one sorted set of request stamps per realm for both windows,
and one sorted set of owner tokens with expiry for the concurrency semaphore, checked
and updated atomically by one Lua script on Redis' clock). A holder renews its slot while
its request runs, so the expiry can be short: a worker killed mid-request gives its slots
back within ``slot_ttl`` seconds instead of starving the realm. The embedded backend runs
one worker process, so ``LocalRateLimiter`` keeps the same windows in memory.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    per_minute: int = 500
    per_second: int = 10
    concurrent: int = 10
    # Windows are padded: a request admitted here reaches Intuit a little later, and
    # network jitter must not squeeze 11 arrivals into Intuit's 1-second window.
    minute_window: float = 61.0
    # 1.2 s: 10 per 1.2 s is still above the 500/min that binds a long read (8.3/s).
    second_window: float = 1.2
    slot_ttl: float = 15.0  # a crashed holder's concurrency slot frees after this (live ones renew)


class RateLimiter(Protocol):
    def slot(self, realm: str, weight: int = 1) -> contextlib.AbstractContextManager[None]:
        """Hold one concurrency slot while ``weight`` requests' worth of the windows is
        stamped at once (a batch of 10 queries counts 10 where Intuit may count each item)."""


class LimitWaitTimeout(Exception):
    """No request slot became free in time."""


def _admissible(weight: int, limits: Limits) -> int:
    """A weight the windows can ever admit at once (a batch never waits forever)."""
    return max(1, min(int(weight), limits.per_second, limits.per_minute))


class LocalRateLimiter:
    """In-process moving windows and semaphore (the embedded single-process worker).

    ``clock`` tells seconds on a monotonic scale; tests pass one they move by hand.
    """

    def __init__(self, limits: Limits = Limits(), max_wait: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.max_wait = max_wait
        self.clock = clock
        self._cond = threading.Condition()
        self._stamps: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._active: dict[str, int] = collections.defaultdict(int)

    def _try(self, realm: str, now: float, weight: int) -> float:
        stamps = self._stamps[realm]
        while stamps and stamps[0] <= now - self.limits.minute_window:
            stamps.popleft()
        over = len(stamps) + weight - self.limits.per_minute
        if over > 0:  # wait until enough of the oldest stamps leave the minute
            return stamps[over - 1] + self.limits.minute_window - now
        recent = [s for s in stamps if s > now - self.limits.second_window]
        over = len(recent) + weight - self.limits.per_second
        if over > 0:
            return recent[over - 1] + self.limits.second_window - now
        if self._active[realm] >= self.limits.concurrent:
            return 0.05
        stamps.extend([now] * weight)
        self._active[realm] += 1
        return 0.0

    @contextlib.contextmanager
    def slot(self, realm: str, weight: int = 1) -> Iterator[None]:
        weight = _admissible(weight, self.limits)
        deadline = self.clock() + self.max_wait
        with self._cond:
            while True:
                now = self.clock()
                wait = self._try(realm, now, weight)
                if wait <= 0:
                    break
                if now + wait > deadline:
                    raise LimitWaitTimeout(f"no request slot for realm {realm} within {self.max_wait:.0f} s")
                self._cond.wait(max(wait, 0.001))
        try:
            yield
        finally:
            with self._cond:
                self._active[realm] -= 1
                self._cond.notify_all()


_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wk, ck = KEYS[1], KEYS[2]
local token = ARGV[1]
local per_minute, minute_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local per_second, second_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local concurrent, ttl_ms = tonumber(ARGV[6]), tonumber(ARGV[7])
local weight = tonumber(ARGV[8])
redis.call('ZREMRANGEBYSCORE', wk, '-inf', now - minute_ms)
local over = redis.call('ZCARD', wk) + weight - per_minute
if over > 0 then
  local oldest = redis.call('ZRANGE', wk, over - 1, over - 1, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + minute_ms - now}
end
local recent = redis.call('ZRANGEBYSCORE', wk, now - second_ms + 1, '+inf', 'WITHSCORES')
over = #recent / 2 + weight - per_second
if over > 0 then
  return {0, tonumber(recent[2 * over]) + second_ms - now}
end
redis.call('ZREMRANGEBYSCORE', ck, '-inf', now)
if redis.call('ZCARD', ck) >= concurrent then
  return {0, 20}
end
redis.call('ZADD', ck, now + ttl_ms, token)
redis.call('PEXPIRE', ck, ttl_ms)
for i = 1, weight do
  redis.call('ZADD', wk, now, token .. ':' .. i)
end
redis.call('PEXPIRE', wk, minute_ms + 1000)
return {1, 0}
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl_ms = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', now + ttl_ms, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl_ms)
"""


class RedisRateLimiter:
    """Moving windows and a concurrency semaphore in Redis, shared by every process."""

    def __init__(self, client, prefix: str = "qbosync:limits:", limits: Limits = Limits(),
                 max_wait: float = 300.0) -> None:
        self.client = client
        self.prefix = prefix
        self.limits = limits
        self.max_wait = max_wait
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)

    @contextlib.contextmanager
    def slot(self, realm: str, weight: int = 1) -> Iterator[None]:
        weight = _admissible(weight, self.limits)
        token = secrets.token_hex(12)
        window_key, slots_key = f"{self.prefix}{realm}:window", f"{self.prefix}{realm}:slots"
        deadline = time.monotonic() + self.max_wait
        lim = self.limits
        while True:
            granted, wait_ms = self._acquire(
                keys=[window_key, slots_key],
                args=[token, lim.per_minute, int(lim.minute_window * 1000), lim.per_second,
                      int(lim.second_window * 1000), lim.concurrent, int(lim.slot_ttl * 1000), weight])
            if granted:
                break
            wait = max(int(wait_ms), 5) / 1000
            if time.monotonic() + wait > deadline:
                raise LimitWaitTimeout(f"no request slot for realm {realm} within {self.max_wait:.0f} s")
            time.sleep(wait)
        done = threading.Event()
        threading.Thread(target=self._keep, args=(slots_key, token, done), daemon=True,
                         name=f"slot-keeper-{realm}").start()
        try:
            yield
        finally:
            done.set()
            self.client.zrem(slots_key, token)

    def _keep(self, slots_key: str, token: str, done: threading.Event) -> None:
        """Renew a held slot until its request ends (most end long before the first renewal)."""
        ttl_ms = int(self.limits.slot_ttl * 1000)
        while not done.wait(self.limits.slot_ttl / 3):
            try:
                self._renew(keys=[slots_key], args=[token, ttl_ms])
            except Exception:  # noqa: BLE001 - Redis away: the slot may lapse early, no worse
                log.warning("could not renew a concurrency slot of %s", slots_key, exc_info=True)
