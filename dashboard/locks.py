"""Expiring named locks shared by every process: Redis in production, the database otherwise.

A lock has an owner token (only its owner may renew or release it) and a TTL, so a
worker killed while holding one blocks others for at most the TTL. With ``REDIS_URL``
a lock is redis-py's ``Lock`` (``SET NX PX``, renewed and deleted by Lua scripts that
act only for the owner's token); the embedded backend keeps locks in the ``app_lock``
table, one short transaction per call.
"""
from __future__ import annotations

import contextlib
import secrets
import time
from datetime import timedelta
from typing import Iterator, Protocol

import redis
from flask import current_app
from redis.exceptions import LockError
from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .models import AppLock, utcnow
from .redis_client import redis_client

# A waiting acquire tries again this often.
POLL_SECONDS = 0.05


class LockBusy(Exception):
    """Another owner holds the lock."""


class OwnedLock(Protocol):
    """One owner's handle on a named lock, as a backend hands it out."""

    def acquire(self, wait: float) -> bool: ...
    def renew(self) -> bool: ...
    def release(self) -> None: ...


class LockBackend(Protocol):
    def lock(self, name: str, ttl: float) -> OwnedLock: ...


class RedisLocks:
    """Locks as Redis keys under ``prefix``, held through redis-py's ``Lock``."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    def lock(self, name: str, ttl: float) -> OwnedLock:
        # Not thread-local: a run's heartbeat thread renews the lock the run's thread took.
        return _RedisLock(self.client.lock(f"{self.prefix}:{name}", timeout=ttl, sleep=POLL_SECONDS,
                                           thread_local=False))


class _RedisLock:
    """redis-py's ``Lock`` with this module's answers: False or silence, not LockError."""

    def __init__(self, lock: redis.lock.Lock) -> None:
        self._lock = lock

    def acquire(self, wait: float) -> bool:
        return self._lock.acquire(blocking=True, blocking_timeout=wait)

    def renew(self) -> bool:
        try:
            return self._lock.reacquire()  # back to the full TTL, only while the token is ours
        except LockError:
            return False

    def release(self) -> None:
        try:
            self._lock.release()
        except LockError:  # it expired (someone else may hold it now): not ours to delete
            pass


class DatabaseLocks:
    """Locks as ``app_lock`` rows, for the embedded backend."""

    def lock(self, name: str, ttl: float) -> OwnedLock:
        return _DatabaseLock(name, ttl)


class _DatabaseLock:
    def __init__(self, name: str, ttl: float) -> None:
        self.name, self.ttl = name, ttl
        self.owner = secrets.token_hex(16)

    def acquire(self, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while not self._take():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    def _take(self) -> bool:
        now = utcnow()
        with db.engine.begin() as conn:
            conn.execute(delete(AppLock).where(AppLock.name == self.name, AppLock.expires_at <= now))
        try:
            with db.engine.begin() as conn:
                conn.execute(insert(AppLock).values(name=self.name, owner=self.owner,
                                                    expires_at=now + timedelta(seconds=self.ttl)))
        except IntegrityError:
            return False
        return True

    def renew(self) -> bool:
        with db.engine.begin() as conn:
            result = conn.execute(update(AppLock).where(AppLock.name == self.name, AppLock.owner == self.owner)
                                  .values(expires_at=utcnow() + timedelta(seconds=self.ttl)))
        return result.rowcount == 1

    def release(self) -> None:
        with db.engine.begin() as conn:
            conn.execute(delete(AppLock).where(AppLock.name == self.name, AppLock.owner == self.owner))


def backend() -> LockBackend:
    """Pick the lock store for the configured deployment."""
    settings = current_app.config["SETTINGS"]
    if settings.redis_url:
        return RedisLocks(redis_client(settings.redis_url), settings.redis_key("lock"))
    return DatabaseLocks()


class Lock:
    """A lock of one owner: acquire it, renew it while working, release it when done."""

    def __init__(self, store: LockBackend, name: str, ttl: float) -> None:
        self.name, self.ttl = name, ttl
        self._owned = store.lock(name, ttl)

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock, waiting up to ``wait`` seconds for its holder to let go."""
        return self._owned.acquire(wait)

    def renew(self) -> bool:
        """Extend the TTL; False means the lock expired and someone else may hold it."""
        return self._owned.renew()

    def release(self) -> None:
        """Let go; a lock that expired meanwhile is left to whoever holds it now."""
        self._owned.release()


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
