"""Model Intuit's OAuth 2.0 server state: codes, grants, token rotation."""
from __future__ import annotations

import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from .clock import SimClock
from .config import SandboxConfig


class OAuthError(Exception):
    """Carry an RFC 6749 error answer: HTTP status and `error` value."""

    def __init__(self, error: str, status: int = 400, description: str | None = None) -> None:
        super().__init__(error)
        self.error, self.status, self.description = error, status, description

    def body(self) -> dict[str, str]:
        """Return the JSON body Intuit sends (no description for invalid_grant)."""
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


@dataclass
class AuthCode:
    """Remember one issued authorization code."""

    code: str
    client_id: str
    redirect_uri: str
    realm: str
    scope: str
    expires_at: float
    used: bool = False
    grant_id: str | None = None


@dataclass
class Grant:
    """Represent one connection (app x company) and all tokens issued for it."""

    id: str
    realm: str
    client_id: str
    scope: str
    refresh_token: str
    refresh_expires_at: float
    created_at: float
    hard_expires_at: float = float("inf")  # the 5-year cap: no refresh works past it
    revoked: bool = False
    previous: dict[str, float] = field(default_factory=dict)  # superseded refresh token -> when
    access: dict[str, float] = field(default_factory=dict)  # access token -> expires_at
    requests: Counter = field(default_factory=Counter)  # token-endpoint requests by outcome


class OAuthState:
    """Issue and validate codes and tokens under one lock."""

    def __init__(self, config: SandboxConfig, clock: SimClock, on_change: Callable[[], None] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self.by_refresh: dict[str, str] = {}
        self.by_access: dict[str, str] = {}
        self.unmatched: Counter = Counter()  # token requests that matched no grant

    # ---- client authentication -------------------------------------------------
    def check_client(self, client_id: str | None, client_secret: str | None) -> str:
        """Verify client credentials or raise 401 invalid_client."""
        ok_id = secrets.compare_digest(client_id or "", self.config.client_id)
        ok_secret = secrets.compare_digest(client_secret or "", self.config.client_secret)
        if not (client_id and ok_id and ok_secret):
            raise OAuthError("invalid_client", 401)
        return client_id

    # ---- authorization ---------------------------------------------------------
    def issue_code(self, client_id: str, redirect_uri: str, realm: str, scope: str) -> str:
        """Create a single-use authorization code."""
        code = "AB11" + secrets.token_urlsafe(36)
        with self.lock:
            self.codes[code] = AuthCode(code, client_id, redirect_uri, realm, scope,
                                        self.clock.now() + self.config.code_ttl)
        return code

    def exchange_code(self, client_id: str, code: str | None, redirect_uri: str | None) -> tuple[Grant, str]:
        """Redeem a code once; a second redemption revokes what the first issued."""
        if not code or not redirect_uri:
            raise OAuthError("invalid_request")
        with self.lock:
            ac = self.codes.get(code)
            if ac is None or ac.client_id != client_id:
                self.unmatched["authorization_code"] += 1
                raise OAuthError("invalid_grant")
            if ac.used:
                # Intuit treats a replayed code as an attack and kills the resulting tokens.
                if ac.grant_id and ac.grant_id in self.grants:
                    g = self.grants[ac.grant_id]
                    g.requests["authorization_code_reused"] += 1
                    self._revoke(g)
                raise OAuthError("invalid_grant")
            if self.clock.now() > ac.expires_at or ac.redirect_uri != redirect_uri:
                ac.used = True
                raise OAuthError("invalid_grant")
            ac.used = True
            now = self.clock.now()
            hard = now + self.config.refresh_token_hard_ttl
            g = Grant("g-" + secrets.token_hex(8), ac.realm, client_id, ac.scope, self._new_refresh(),
                      min(now + self.config.refresh_token_ttl, hard), now, hard_expires_at=hard)
            self.grants[g.id] = g
            self.by_refresh[g.refresh_token] = g.id
            ac.grant_id = g.id
            g.requests["authorization_code"] += 1
            return g, self._new_access(g)

    # ---- refresh ---------------------------------------------------------------
    def refresh(self, client_id: str, token: str | None) -> tuple[Grant, str]:
        """Apply the refresh grant with rotation and the configurable grace."""
        if not token:
            raise OAuthError("invalid_request")
        with self.lock:
            gid = self.by_refresh.get(token)
            g = self.grants.get(gid) if gid else None
            if g is None or g.client_id != client_id:
                self.unmatched["refresh_token"] += 1
                raise OAuthError("invalid_grant")
            g.requests["refresh_token"] += 1
            now = self.clock.now()
            if g.revoked or now > g.refresh_expires_at or now >= g.hard_expires_at:
                g.requests["refresh_token_failed"] += 1
                raise OAuthError("invalid_grant")
            if token != g.refresh_token:
                superseded = g.previous.get(token, 0.0)
                if now - superseded >= self.config.refresh_grace:
                    g.requests["refresh_token_failed"] += 1
                    raise OAuthError("invalid_grant")
                # Within the grace the old token still works and yields the current one [I].
            elif self.config.rotate_refresh_tokens:
                new = self._new_refresh()
                g.previous[token] = now
                g.refresh_token = new
                self.by_refresh[new] = g.id
            # A rolling window, never past the grant's hard cap.
            g.refresh_expires_at = min(now + self.config.refresh_token_ttl, g.hard_expires_at)
            return g, self._new_access(g)

    # ---- validation and control -------------------------------------------------
    def grant_for_access(self, token: str) -> tuple[Grant | None, str]:
        """Return (grant, reason) for a bearer token; grant is None when invalid."""
        with self.lock:
            gid = self.by_access.get(token)
            g = self.grants.get(gid) if gid else None
            if g is None:
                return None, "Malformed bearer token or unknown token"
            if g.revoked:
                return None, "Token revoked"
            if self.clock.now() >= g.access.get(token, 0):
                return None, "Token expired"
            return g, ""

    def revoke_token(self, token: str) -> bool:
        """Revoke the whole grant owning a refresh or access token."""
        with self.lock:
            gid = self.by_refresh.get(token) or self.by_access.get(token)
            if gid is None or gid not in self.grants:
                return False
            self._revoke(self.grants[gid])
            return True

    def revoke_realm(self, realm: str) -> int:
        """Revoke every grant of a realm (simulates a disconnect)."""
        with self.lock:
            grants = [g for g in self.grants.values() if g.realm == realm and not g.revoked]
            for g in grants:
                self._revoke(g)
            return len(grants)

    def expire_access(self, realm: str | None = None, token: str | None = None) -> int:
        """Expire access tokens now (of a realm, or one token); refresh still works."""
        with self.lock:
            n = 0
            now = self.clock.now()
            for g in self.grants.values():
                if realm is not None and g.realm != realm:
                    continue
                for t in list(g.access):
                    if token is None or t == token:
                        g.access[t] = min(g.access[t], now - 1)
                        n += 1
            return n

    def set_hard_expiry(self, realm: str, seconds: float) -> int:
        """Move the hard cap of a realm's live grants to ``seconds`` from now (tests of the warning)."""
        with self.lock:
            n = 0
            now = self.clock.now()
            for g in self.grants.values():
                if g.realm == realm and not g.revoked:
                    g.hard_expires_at = now + seconds
                    g.refresh_expires_at = min(g.refresh_expires_at, g.hard_expires_at)
                    n += 1
            return n

    def stats(self, realm: str | None = None) -> dict[str, Any]:
        """Count token-endpoint requests, per realm, summed over its grants."""
        with self.lock:
            total: Counter = Counter()
            grants = []
            for g in self.grants.values():
                if realm is None or g.realm == realm:
                    total.update(g.requests)
                    grants.append({"grant_id": g.id, "realm": g.realm, "revoked": g.revoked,
                                   "requests": dict(g.requests)})
            return {"realm": realm, "requests": dict(total), "unmatched": dict(self.unmatched),
                    "token_requests": sum(v for k, v in total.items() if k in ("authorization_code", "refresh_token")),
                    "grants": grants}

    def reset_stats(self) -> None:
        """Zero the request counters."""
        with self.lock:
            for g in self.grants.values():
                g.requests.clear()
            self.unmatched.clear()

    def token_response(self, g: Grant, access: str, include_hard_expiry: bool = False) -> dict[str, Any]:
        """Build Intuit's bearer-token JSON; the hard cap only when the request asked for it
        (header ``x-include-refresh-token-hard-expires-in: true``)."""
        now = self.clock.now()
        body = {
            "token_type": "bearer",
            "access_token": access,
            "expires_in": int(self.config.access_token_ttl),
            "refresh_token": g.refresh_token,
            "x_refresh_token_expires_in": max(0, round(g.refresh_expires_at - now)),
        }
        if include_hard_expiry:
            body["x_refresh_token_hard_expires_in"] = max(0, round(g.hard_expires_at - now))
        return body

    # ---- internals -------------------------------------------------------------
    def _revoke(self, g: Grant) -> None:
        g.revoked = True

    def _new_refresh(self) -> str:
        return "RT1-" + secrets.token_hex(3) + "-H0-" + secrets.token_urlsafe(24)

    def _new_access(self, g: Grant) -> str:
        token = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.." + secrets.token_urlsafe(48)
        g.access[token] = self.clock.now() + self.config.access_token_ttl
        self.by_access[token] = g.id
        return token
