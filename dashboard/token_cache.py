"""A shared cache of access tokens in Redis, so most calls skip the database.

Entries are vault ciphertexts (never plain tokens) that live until five minutes before
the token expires. The cache is an optimisation only: when Redis is not configured or
fails, callers fall back to the database, which stays the source of truth.
"""
from __future__ import annotations

import functools
import logging
from datetime import datetime

import redis

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # Short timeouts: a slow Redis must not hold up a sync more than the database would.
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


class TokenCache:
    """Access-token ciphertexts keyed by company (realm ids are unique across integrations
    here: ``company.source_id`` is)."""

    def __init__(self, redis_url: str | None, prefix: str) -> None:
        self.redis_url = redis_url
        self.prefix = prefix

    @property
    def enabled(self) -> bool:
        return self.redis_url is not None

    def key(self, realm: str) -> str:
        return f"{self.prefix}:access-token:{realm}"

    def get(self, realm: str) -> str | None:
        if not self.redis_url:
            return None
        try:
            value = _client(self.redis_url).get(self.key(realm))
        except redis.RedisError as exc:
            log.warning("Token cache read failed (%s); using the database", type(exc).__name__)
            return None
        return value.decode("ascii") if value else None

    def put(self, realm: str, ciphertext: str, fresh_until: datetime, now: datetime) -> None:
        """Keep ``ciphertext`` until ``fresh_until`` (expiry minus the safety margin)."""
        ttl = int((fresh_until - now).total_seconds())
        if not self.redis_url or ttl <= 0:
            return
        try:
            _client(self.redis_url).set(self.key(realm), ciphertext, ex=ttl)
        except redis.RedisError as exc:
            log.warning("Token cache write failed (%s)", type(exc).__name__)

    def forget(self, realm: str) -> None:
        """Drop a company's entry (refresh, disconnect, reconnect-required)."""
        if not self.redis_url:
            return
        try:
            _client(self.redis_url).delete(self.key(realm))
        except redis.RedisError as exc:
            # A stale entry would outlive a disconnect: say so loudly.
            log.error("Token cache delete failed for company %s (%s); a cached token may be used "
                      "until it expires", realm, type(exc).__name__)
