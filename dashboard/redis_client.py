"""One Redis client per URL and process, with one set of timeouts for every use.

The queue, the locks, the rate limiter and the token cache all take their client
here. Short timeouts: a dead or slow Redis fails health checks and token-cache reads
fast instead of hanging a worker (Huey's blocking reads wait 1 s, well inside them).
redis-py's pool reconnects after a fork on its own.
"""
from __future__ import annotations

import functools

import redis

CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 10.0


@functools.lru_cache(maxsize=8)
def redis_client(url: str) -> redis.Redis:
    """Return the shared client for ``url``."""
    pool = redis.ConnectionPool.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT,
                                         socket_timeout=SOCKET_TIMEOUT, health_check_interval=30)
    return redis.Redis(connection_pool=pool)
