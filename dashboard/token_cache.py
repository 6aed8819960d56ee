"""A shared cache of access tokens in Redis, so most calls skip the database.

Entries are vault ciphertexts (never plain tokens) that live until five minutes before
the token expires. The cache is an optimisation only: when Redis is not configured or
fails, callers fall back to the database, which stays the source of truth.
"""
from __future__ import annotations

import logging
from datetime import datetime

import redis

log = logging.getLogger(__name__)


class TokenCache:
    """Access-token ciphertexts keyed by company (realm ids are unique across integrations
    here: ``company.source_id`` is). Without a client (no Redis) every read misses."""

    def __init__(self, client: redis.Redis | None, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def key(self, realm: str) -> str:
        return f"{self.prefix}:{realm}"

    def get(self, realm: str) -> str | None:
        if self.client is None:
            return None
        try:
            value = self.client.get(self.key(realm))
        except redis.RedisError as exc:
            log.warning("Token cache read failed (%s); using the database", type(exc).__name__)
            return None
        return value.decode("ascii") if value else None

    def put(self, realm: str, ciphertext: str, fresh_until: datetime, now: datetime) -> None:
        """Keep ``ciphertext`` until ``fresh_until`` (expiry minus the safety margin)."""
        ttl = int((fresh_until - now).total_seconds())
        if self.client is None or ttl <= 0:
            return
        try:
            self.client.set(self.key(realm), ciphertext, ex=ttl)
        except redis.RedisError as exc:
            log.warning("Token cache write failed (%s)", type(exc).__name__)

    def forget(self, realm: str) -> None:
        """Drop a company's entry (refresh, disconnect, reconnect-required)."""
        if self.client is None:
            return
        try:
            self.client.delete(self.key(realm))
        except redis.RedisError as exc:
            # A stale entry would outlive a disconnect: say so loudly.
            log.error("Token cache delete failed for company %s (%s); a cached token may be used "
                      "until it expires", realm, type(exc).__name__)
