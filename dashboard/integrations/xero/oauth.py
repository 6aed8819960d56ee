"""Xero's OAuth 2.0 (identity.xero.com) and its tenant connections, on Authlib's ``OAuth2Session``.

Xero's tokens belong to the grant (user × app), not to an organisation: one consent may
connect several tenants, and ``/connections`` lists every tenant of the user, from earlier
consents too. Refresh tokens are single-use and rotate; when a refresh answer is lost, the
old token may be sent again for 30 minutes and yields the current tokens.

Not registered in the integration registry yet: the callback must first learn to store
several tenants (see ``connections``), so ``account_id_from_callback`` has nothing to give.
"""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

import requests
from authlib.integrations.requests_client import OAuth2Session

from ...config import XERO_DEFAULT_SCOPES
from ...sync.errors import SyncError
from ..base import OAuthClientConfig, OAuthIntegration, TokenSet
from ..errors import ProviderRejected, ProviderUnavailable
from ..token_endpoint import call, token_set
from .dates import parse_date
from .faults import classify

log = logging.getLogger(__name__)

PROVIDER = "Xero"
# Unused refresh tokens die after 60 days; Xero's answer does not say so itself.
REFRESH_TOKEN_LIFETIME = timedelta(days=60)
# How long a rotated-away refresh token may be sent again after its answer was lost.
REFRESH_RETRY_GRACE = timedelta(minutes=30)
ORGANISATION = "ORGANISATION"  # the only tenant type the Accounting API serves


@dataclass(frozen=True)
class Connection:
    """One tenant connected to this app: ``id`` is the connection (for DELETE), ``tenant_id``
    the organisation (for ``Xero-Tenant-Id``)."""

    id: str
    tenant_id: str
    tenant_name: str
    tenant_type: str
    auth_event_id: str | None
    created_at: datetime | None
    updated_at: datetime | None


def access_token_claims(access_token: str) -> dict[str, Any]:
    """Read the claims of Xero's access token (a JWT) without checking its signature.

    Safe here because we never trust them for a decision Xero does not check again: the
    token came straight from Xero's token endpoint over our own client-authenticated TLS
    request, and the only claim used (``authentication_event_id``) narrows a ``/connections``
    list that Xero itself authorises with this same token. Verifying would need Xero's JWKS
    and clock checks that add nothing to that. An unreadable token gives ``{}``.
    """
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


class XeroIntegration(OAuthIntegration):
    name = "xero"
    display_name = "Xero"
    scope = XERO_DEFAULT_SCOPES  # a deployment's XERO_SCOPES replace it (see from_settings)

    def __init__(self, config: OAuthClientConfig, connections_url: str, scope: str) -> None:
        super().__init__(config)
        self.connections_url = connections_url.rstrip("/")
        self.scope = scope

    @classmethod
    def from_settings(cls, settings: Any) -> "XeroIntegration":
        return cls(OAuthClientConfig(
            client_id=settings.xero_client_id,
            client_secret=settings.xero_client_secret,
            redirect_uri=settings.xero_redirect_uri,
            authorize_url=settings.xero_authorize_url,
            token_url=settings.xero_token_url,
            revoke_url=settings.xero_revoke_url,
            api_base_url=settings.xero_api_base_url,
        ), connections_url=settings.xero_connections_url, scope=settings.xero_scopes)

    def _session(self) -> OAuth2Session:
        session = OAuth2Session(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            token_endpoint_auth_method="client_secret_basic",
            revocation_endpoint_auth_method="client_secret_basic",
            scope=self.scope,
            redirect_uri=self.config.redirect_uri,
            default_timeout=self.config.http_timeout,
        )
        session.headers["Accept"] = "application/json"
        return session

    def authorization_url(self, state: str) -> str:
        with self._session() as session:
            url, _ = session.create_authorization_url(self.config.authorize_url, state=state)
        return url

    def account_id_from_callback(self, args: Mapping[str, str]) -> str | None:
        """Xero's callback names no organisation: the tenants come from ``connections``."""
        return None

    def exchange_code(self, code: str, now: datetime) -> TokenSet:
        with self._session() as session:
            answer = call(PROVIDER, "code exchange", lambda: session.fetch_token(
                self.config.token_url, grant_type="authorization_code", code=code,
                redirect_uri=self.config.redirect_uri, timeout=self.config.http_timeout))
        return token_set(PROVIDER, answer, now, None, REFRESH_TOKEN_LIFETIME)

    def refresh(self, refresh_token: str, now: datetime) -> TokenSet:
        """Spend ``refresh_token`` (single use) for a new token set.

        When the answer is lost (timeout, dropped connection, 5xx) Xero may already have
        rotated the token; it accepts the old one again for 30 minutes and then answers with
        the current tokens, so the request is sent once more at once. A second loss raises
        ProviderUnavailable: the caller keeps the old token and may retry it within
        ``REFRESH_RETRY_GRACE``; after that it is dead (``invalid_grant``).
        """
        try:
            return self._refresh_once(refresh_token, now)
        except ProviderUnavailable as lost:
            log.warning("Xero's refresh answer was lost (%s); sending the same refresh token again", lost)
            return self._refresh_once(refresh_token, now)

    def _refresh_once(self, refresh_token: str, now: datetime) -> TokenSet:
        with self._session() as session:
            answer = call(PROVIDER, "token refresh", lambda: session.refresh_token(
                self.config.token_url, refresh_token=refresh_token, timeout=self.config.http_timeout))
        return token_set(PROVIDER, answer, now, refresh_token, REFRESH_TOKEN_LIFETIME)

    def revoke(self, token: str) -> None:
        """Revoke the grant of a refresh token: Xero removes every connection of it."""
        with self._session() as session:
            response = call(PROVIDER, "revocation", lambda: session.revoke_token(
                self.config.revoke_url, token=token, timeout=self.config.http_timeout))
        if response.status_code >= 500:
            raise ProviderUnavailable(f"Xero's revocation endpoint answered HTTP {response.status_code}.")
        if response.status_code >= 400:
            raise ProviderRejected(f"Xero refused the revocation (HTTP {response.status_code}).")

    def api_session(self, access_token: str) -> requests.Session:
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
        return session

    # -- Xero only: tenants of a grant ------------------------------------------------
    def connections(self, access_token: str, auth_event_id: str | None = None) -> list[Connection]:
        """Return the organisations connected by this consent (oldest first).

        ``/connections`` lists the user's tenants from every consent; the consent's
        ``authentication_event_id`` (from the access token when not given) keeps those the
        user just chose. Tenants other than organisations (practices) are left out: the
        Accounting API does not serve them. Errors are the sync's (``TokenRejected`` on
        401, ``ReconnectRequired`` on 403, ``LedgerServerError`` on 5xx; ``ProviderUnavailable``
        when no answer came).
        """
        event = auth_event_id or access_token_claims(access_token).get("authentication_event_id")
        params = {"authEventId": event} if isinstance(event, str) and event else {}
        response = self._identity_call("GET", self.connections_url, access_token, params=params)
        try:
            rows = response.json()
        except ValueError:
            rows = None
        if not isinstance(rows, list):
            raise ProviderRejected("Xero's /connections answer is not a list.")
        found = []
        for row in rows:
            if not isinstance(row, Mapping) or not row.get("id") or not row.get("tenantId"):
                continue
            if (params and row.get("authEventId") != event) or row.get("tenantType") != ORGANISATION:
                continue
            found.append(Connection(
                id=str(row["id"]), tenant_id=str(row["tenantId"]), tenant_name=str(row.get("tenantName") or ""),
                tenant_type=str(row["tenantType"]), auth_event_id=row.get("authEventId"),
                created_at=parse_date(row.get("createdDateUtc")), updated_at=parse_date(row.get("updatedDateUtc"))))
        return found

    def disconnect(self, access_token: str, connection_id: str) -> None:
        """Remove one connection (its ``id``, not the tenant id); the grant keeps the others.

        A connection already gone (404) counts as removed.
        """
        if not connection_id or "/" in connection_id:
            raise ValueError("a Xero connection id is required")
        self._identity_call("DELETE", f"{self.connections_url}/{connection_id}", access_token, ok=(404,))

    def _identity_call(self, method: str, url: str, access_token: str, params: Mapping[str, str] | None = None,
                       ok: tuple[int, ...] = ()) -> requests.Response:
        try:
            with self.api_session(access_token) as session:
                response = session.request(method, url, params=params, timeout=self.config.http_timeout)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise ProviderUnavailable(f"Xero's /connections did not answer ({type(exc).__name__}).") from None
        if response.status_code in ok:
            return response
        error: SyncError | None = classify(response.status_code, response.text, response.headers)
        if error is not None:
            raise error
        return response
