"""Model Xero's identity server: consents, connections (tenants), grants and token rotation.

One *grant* (a user x this app, created by one consent) owns the token set; it covers every
tenant the user has connected to the app, whichever consent connected it. Refresh tokens
rotate on every use; a rotated-away token may be retried for ``refresh_grace`` seconds and
then answers ``invalid_grant``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..clock import SimClock
from ..oauth import OAuthError
from .config import XeroConfig
from .dates import identity_time

ISSUER = "https://identity.xero.com"
DEFAULT_USER = "xero-user-1"


@dataclass
class Consent:
    """One authorization code and what its consent granted."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    auth_event_id: str
    expires_at: float
    code_challenge: str | None = None
    used: bool = False


@dataclass
class Connection:
    """A tenant connected by a user to this app (an entry of GET /connections)."""

    id: str
    tenant_id: str
    tenant_name: str
    user: str
    auth_event_id: str
    created: float
    updated: float

    def to_json(self) -> dict[str, Any]:
        """Render as /connections does (7-digit timestamps without Z)."""
        return {"id": self.id, "authEventId": self.auth_event_id, "tenantId": self.tenant_id,
                "tenantType": "ORGANISATION", "tenantName": self.tenant_name,
                "createdDateUtc": identity_time(self.created), "updatedDateUtc": identity_time(self.updated)}


@dataclass
class Grant:
    """A token set: one refresh token at a time, the access tokens issued from it."""

    id: str
    user: str
    client_id: str
    scope: str
    auth_event_id: str
    refresh_token: str | None
    refresh_expires_at: float
    public: bool = False  # a PKCE client: refreshes with its client id alone
    revoked: bool = False
    previous: dict[str, float] = field(default_factory=dict)  # rotated-away refresh token -> when
    access: dict[str, float] = field(default_factory=dict)  # access token -> expires_at
    requests: Counter = field(default_factory=Counter)

    @property
    def scopes(self) -> set[str]:
        """Return the granted scopes as a set."""
        return set(self.scope.split())


class XeroOAuth:
    """Issue and check codes, tokens and connections under one lock."""

    def __init__(self, config: XeroConfig, clock: SimClock) -> None:
        self.config, self.clock = config, clock
        self.lock = threading.RLock()
        self.signing_key = secrets.token_bytes(32)
        self.codes: dict[str, Consent] = {}
        self.grants: dict[str, Grant] = {}
        self.connections: dict[str, Connection] = {}
        self.by_refresh: dict[str, str] = {}
        self.by_access: dict[str, str] = {}
        self.unmatched: Counter = Counter()

    # ---- client authentication --------------------------------------------------
    def check_client(self, client_id: str | None, client_secret: str | None, public_ok: bool = False) -> str:
        """Verify the client; PKCE exchanges may send the client id alone."""
        ok_id = secrets.compare_digest(client_id or "", self.config.client_id)
        ok_secret = secrets.compare_digest(client_secret or "", self.config.client_secret)
        if not (client_id and ok_id and (ok_secret or (public_ok and client_secret is None))):
            raise OAuthError("invalid_client", 400)
        return client_id

    # ---- consent ----------------------------------------------------------------
    def consent(self, client_id: str, redirect_uri: str, scope: str, tenants: list[tuple[str, str]],
                user: str = DEFAULT_USER, code_challenge: str | None = None) -> Consent:
        """Record a consent: connect the chosen tenants (one auth event) and issue a code."""
        now = self.clock.now()
        event = str(uuid.uuid4())
        with self.lock:
            for tenant_id, name in tenants:
                conn = self._connection(user, tenant_id)
                if conn is None:
                    conn = Connection(str(uuid.uuid4()), tenant_id, name, user, event, now, now)
                    self.connections[conn.id] = conn
                else:  # re-connecting keeps createdDateUtc and moves updatedDateUtc
                    conn.auth_event_id, conn.updated = event, now
            c = Consent("xc-" + secrets.token_urlsafe(32), client_id, redirect_uri, scope, user, event,
                        now + self.config.code_ttl, code_challenge)
            self.codes[c.code] = c
        return c

    def exchange_code(self, client_id: str, code: str | None, redirect_uri: str | None,
                      verifier: str | None, authenticated: bool) -> tuple[Grant, str]:
        """Redeem a code once (PKCE: check the verifier; otherwise the secret was required)."""
        with self.lock:
            c = self.codes.get(code or "")
            if c is None or c.client_id != client_id:
                self.unmatched["authorization_code"] += 1
                raise OAuthError("invalid_grant")
            if c.used or self.clock.now() > c.expires_at or c.redirect_uri != redirect_uri:
                c.used = True
                raise OAuthError("invalid_grant")
            if c.code_challenge is not None:
                digest = base64.urlsafe_b64encode(hashlib.sha256((verifier or "").encode()).digest()).rstrip(b"=")
                if not secrets.compare_digest(digest.decode(), c.code_challenge):
                    raise OAuthError("invalid_grant")
            elif not authenticated:
                raise OAuthError("invalid_client")
            c.used = True
            now = self.clock.now()
            offline = "offline_access" in c.scope.split()
            g = Grant("xg-" + secrets.token_hex(8), c.user, client_id, c.scope, c.auth_event_id,
                      self._new_refresh() if offline else None, now + self.config.refresh_token_ttl,
                      public=not authenticated)
            self.grants[g.id] = g
            if g.refresh_token:
                self.by_refresh[g.refresh_token] = g.id
            g.requests["authorization_code"] += 1
            return g, self._new_access(g)

    # ---- refresh ----------------------------------------------------------------
    def refresh(self, client_id: str, token: str | None, authenticated: bool) -> tuple[Grant, str]:
        """Rotate the refresh token; a rotated-away one is honoured within the grace."""
        with self.lock:
            g = self.grants.get(self.by_refresh.get(token or "", ""))
            if g is None or g.client_id != client_id:
                self.unmatched["refresh_token"] += 1
                raise OAuthError("invalid_grant")
            if not (authenticated or g.public):
                raise OAuthError("invalid_client")
            g.requests["refresh_token"] += 1
            now = self.clock.now()
            if g.revoked or now > g.refresh_expires_at:
                g.requests["refresh_token_failed"] += 1
                raise OAuthError("invalid_grant")
            if token != g.refresh_token:
                if now - g.previous.get(token or "", float("-inf")) >= self.config.refresh_grace:
                    g.requests["refresh_token_failed"] += 1
                    raise OAuthError("invalid_grant")
                # A retry of a lost answer: it gets the current refresh token, no new rotation [I].
                g.requests["refresh_token_grace"] += 1
            else:
                g.previous[token] = now
                g.refresh_token = self._new_refresh()
                self.by_refresh[g.refresh_token] = g.id
            g.refresh_expires_at = now + self.config.refresh_token_ttl
            return g, self._new_access(g)

    def token_response(self, g: Grant, access: str) -> dict[str, Any]:
        """Build the token JSON: id_token only with openid, refresh_token only with offline_access."""
        body: dict[str, Any] = {}
        if "openid" in g.scopes:
            body["id_token"] = self._id_token(g)
        body.update({"access_token": access, "expires_in": int(self.config.access_token_ttl),
                     "token_type": "Bearer"})
        if g.refresh_token:
            body["refresh_token"] = g.refresh_token
        body["scope"] = g.scope
        return body

    # ---- checks and control -------------------------------------------------------
    def grant_for_access(self, token: str | None) -> tuple[Grant | None, str]:
        """Return (grant, "") or (None, "expired" | "invalid")."""
        with self.lock:
            g = self.grants.get(self.by_access.get(token or "", ""))
            if g is None or g.revoked:
                return None, "invalid"
            if self.clock.now() >= g.access.get(token or "", 0):
                return None, "expired"
            return g, ""

    def expiry_of(self, token: str | None) -> float:
        """Return when an access token expired (for the TokenExpired detail)."""
        with self.lock:
            g = self.grants.get(self.by_access.get(token or "", ""))
            return g.access.get(token or "", 0.0) if g else 0.0

    def list_connections(self, user: str, auth_event_id: str | None = None) -> list[Connection]:
        """Return a user's live connections, oldest first, optionally of one consent."""
        with self.lock:
            rows = [c for c in self.connections.values() if c.user == user]
        if auth_event_id:
            rows = [c for c in rows if c.auth_event_id == auth_event_id]
        return sorted(rows, key=lambda c: c.created)

    def is_connected(self, user: str, tenant_id: str) -> bool:
        """Tell whether a user has this tenant connected."""
        with self.lock:
            return self._connection(user, tenant_id) is not None

    def delete_connection(self, user: str, conn_id: str) -> int:
        """Disconnect one tenant: 204, 404 when unknown, 403 when given a tenant id instead."""
        with self.lock:
            conn = self.connections.get(conn_id)
            if conn is not None and conn.user == user:
                del self.connections[conn_id]
                return 204
            if self._connection(user, conn_id) is not None:
                return 403
            return 404

    def revoke(self, token: str) -> bool:
        """Revoke the grant owning a refresh token and remove all its user's connections."""
        with self.lock:
            g = self.grants.get(self.by_refresh.get(token, "") or self.by_access.get(token, ""))
            if g is None:
                return False
            g.revoked = True
            g.requests["revoked"] += 1
            for conn_id in [c.id for c in self.connections.values() if c.user == g.user]:
                del self.connections[conn_id]
            return True

    def expire_access(self, token: str | None = None) -> int:
        """Expire access tokens now (all, or one); refresh keeps working."""
        with self.lock:
            now, n = self.clock.now(), 0
            for g in self.grants.values():
                for t in g.access:
                    if token is None or t == token:
                        g.access[t] = min(g.access[t], now - 1)
                        n += 1
            return n

    def stats(self) -> dict[str, Any]:
        """Count token-endpoint requests per grant."""
        with self.lock:
            total: Counter = Counter()
            for g in self.grants.values():
                total.update(g.requests)
            return {"requests": dict(total), "unmatched": dict(self.unmatched),
                    "grants": [{"grant_id": g.id, "user": g.user, "auth_event_id": g.auth_event_id,
                                "revoked": g.revoked, "requests": dict(g.requests)} for g in self.grants.values()]}

    def reset_stats(self) -> None:
        """Zero the token-endpoint counters."""
        with self.lock:
            for g in self.grants.values():
                g.requests.clear()
            self.unmatched.clear()

    # ---- internals ----------------------------------------------------------------
    def _connection(self, user: str, tenant_id: str) -> Connection | None:
        return next((c for c in self.connections.values() if c.user == user and c.tenant_id == tenant_id), None)

    def _new_refresh(self) -> str:
        return secrets.token_hex(32)

    def _jwt(self, claims: dict[str, Any]) -> str:
        # Signed with a simulator-local HS256 key: clients read claims, they do not verify [I].
        def b64(obj: Any) -> bytes:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=")
        head = b64({"alg": "HS256", "typ": "JWT", "kid": "sandbox"}) + b"." + b64(claims)
        sig = base64.urlsafe_b64encode(hmac.new(self.signing_key, head, hashlib.sha256).digest()).rstrip(b"=")
        return (head + b"." + sig).decode()

    def _new_access(self, g: Grant) -> str:
        now = self.clock.now()
        exp = now + self.config.access_token_ttl
        token = self._jwt({"nbf": int(now), "exp": int(exp), "iss": ISSUER, "aud": f"{ISSUER}/resources",
                           "client_id": g.client_id, "sub": g.user, "auth_time": int(now), "xero_userid": g.user,
                           "global_session_id": g.id, "jti": secrets.token_hex(16),
                           "authentication_event_id": g.auth_event_id, "scope": g.scope.split(), "amr": ["pwd"]})
        g.access[token] = exp
        self.by_access[token] = g.id
        return token

    def _id_token(self, g: Grant) -> str:
        now = int(self.clock.now())
        return self._jwt({"nbf": now, "exp": now + 300, "iss": ISSUER, "aud": g.client_id, "iat": now,
                          "sub": g.user, "auth_time": now, "xero_userid": g.user, "global_session_id": g.id,
                          "preferred_username": f"{g.user}@example.com", "email": f"{g.user}@example.com",
                          "given_name": "Demo", "family_name": "User", "amr": ["pwd"]})
