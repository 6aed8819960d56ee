"""Expiring named locks shared by every process: Redis in production, the database otherwise.

A lock has an owner token (only its owner may renew or release it) and a TTL, so a
worker killed while holding one blocks others for at most the TTL. The embedded
backend keeps them in the ``app_lock`` table; with ``REDIS_URL`` they are Redis keys.
"""
from __future__ import annotations

import contextlib
import secrets
import time
from datetime import timedelta
from typing import Iterator, Protocol

from flask import current_app
from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .models import AppLock, utcnow

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LockBusy(Exception):
    """Another owner holds the lock."""


class LockBackend(Protocol):
    def acquire(self, name: str, owner: str, ttl: float) -> bool: ...
    def renew(self, name: str, owner: str, ttl: float) -> bool: ...
    def release(self, name: str, owner: str) -> None: ...


class RedisLocks:
    """Locks as Redis keys (``SET NX PX``), renewed and released only by their owner."""

    def __init__(self, client, prefix: str = "qbosync:lock:") -> None:
        self.client = client
        self.prefix = prefix
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        return bool(self.client.set(self.prefix + name, owner, nx=True, px=int(ttl * 1000)))

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        return bool(self._renew(keys=[self.prefix + name], args=[owner, int(ttl * 1000)]))

    def release(self, name: str, owner: str) -> None:
        self._release(keys=[self.prefix + name], args=[owner])


class DatabaseLocks:
    """Locks as ``app_lock`` rows; each call is its own short transaction."""

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        now = utcnow()
        with db.engine.begin() as conn:
            conn.execute(delete(AppLock).where(AppLock.name == name, AppLock.expires_at <= now))
        try:
            with db.engine.begin() as conn:
                conn.execute(insert(AppLock).values(name=name, owner=owner,
                                                    expires_at=now + timedelta(seconds=ttl)))
        except IntegrityError:
            return False
        return True

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        with db.engine.begin() as conn:
            result = conn.execute(update(AppLock).where(AppLock.name == name, AppLock.owner == owner)
                                  .values(expires_at=utcnow() + timedelta(seconds=ttl)))
        return result.rowcount == 1

    def release(self, name: str, owner: str) -> None:
        with db.engine.begin() as conn:
            conn.execute(delete(AppLock).where(AppLock.name == name, AppLock.owner == owner))


_redis_clients: dict[str, object] = {}


def redis_client(url: str):
    """Return one shared Redis client per URL (connection pools are per process)."""
    client = _redis_clients.get(url)
    if client is None:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        _redis_clients[url] = client
    return client


def backend() -> LockBackend:
    """Pick the lock store for the configured deployment."""
    settings = current_app.config["SETTINGS"]
    if settings.redis_url:
        namespace = current_app.config.get("LOCK_NAMESPACE") or f"qbosync:{_huey_name()}:lock:"
        return RedisLocks(redis_client(settings.redis_url), namespace)
    return DatabaseLocks()


def _huey_name() -> str:
    from .queue import huey

    return huey.name


class Lock:
    """A held lock: renew it while working, release it when done."""

    def __init__(self, store: LockBackend, name: str, ttl: float) -> None:
        self.store, self.name, self.ttl = store, name, ttl
        self.owner = secrets.token_hex(16)

    def acquire(self, wait: float = 0.0, poll: float = 0.05) -> bool:
        deadline = time.monotonic() + wait
        while True:
            if self.store.acquire(self.name, self.owner, self.ttl):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)

    def renew(self) -> bool:
        """Extend the TTL; False means the lock expired and someone else may hold it."""
        return self.store.renew(self.name, self.owner, self.ttl)

    def release(self) -> None:
        self.store.release(self.name, self.owner)


@contextlib.contextmanager
def hold(name: str, ttl: float = 30.0, wait: float = 0.0) -> Iterator[Lock]:
    """Hold lock ``name`` for the block; raise LockBusy if it cannot be had within ``wait``."""
    lock = Lock(backend(), name, ttl)
    if not lock.acquire(wait):
        raise LockBusy(name)
    try:
        yield lock
    finally:
        lock.release()
