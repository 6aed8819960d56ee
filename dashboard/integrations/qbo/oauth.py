"""Intuit's OAuth 2.0 for QuickBooks Online, on Authlib's requests ``OAuth2Session``.

Intuit authenticates clients with HTTP Basic (client_secret_basic), advertises no PKCE
(``state`` carries the CSRF protection), returns the company id as ``realmId`` on the
callback, and revokes with a JSON body ``{"token": ...}``.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any, Mapping

import requests
from authlib.integrations.requests_client import OAuth2Session

from .. import register
from ..base import OAuthClientConfig, OAuthIntegration, TokenSet
from ..errors import AccountMismatch, ProviderRejected, ProviderUnavailable
from ..token_endpoint import call, token_set

PROVIDER = "Intuit"

log = logging.getLogger(__name__)

SCOPE = "com.intuit.quickbooks.accounting"
# Intuit's realm ids are decimal numbers (16 digits and up in practice).
REALM_ID = re.compile(r"[0-9]{1,32}")
MINOR_VERSION = "75"  # the one dashboard.qbo.client sends
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"


@register
class QuickBooksIntegration(OAuthIntegration):
    name = "qbo"
    display_name = "QuickBooks Online"
    scope = SCOPE

    @classmethod
    def from_settings(cls, settings: Any) -> "QuickBooksIntegration":
        return cls(OAuthClientConfig(
            client_id=settings.qbo_client_id,
            client_secret=settings.qbo_client_secret,
            redirect_uri=settings.qbo_redirect_uri,
            authorize_url=settings.qbo_authorize_url,
            token_url=settings.qbo_token_url,
            revoke_url=settings.qbo_revoke_url,
            api_base_url=settings.qbo_api_base_url,
        ))

    def _session(self, token: Mapping[str, Any] | None = None) -> OAuth2Session:
        session = OAuth2Session(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            token_endpoint_auth_method="client_secret_basic",
            revocation_endpoint_auth_method="client_secret_basic",
            scope=self.scope,
            redirect_uri=self.config.redirect_uri,
            token=dict(token) if token else None,
            default_timeout=self.config.http_timeout,
        )
        session.headers["Accept"] = "application/json"
        # Ask the token endpoint for the grant's 5-year cap (x_refresh_token_hard_expires_in).
        session.headers[HARD_EXPIRY_HEADER] = "true"
        return session

    def authorization_url(self, state: str) -> str:
        with self._session() as session:
            url, _ = session.create_authorization_url(self.config.authorize_url, state=state)
        return url

    def account_id_from_callback(self, args: Mapping[str, str]) -> str | None:
        realm = (args.get("realmId") or "").strip()
        return realm if REALM_ID.fullmatch(realm) else None

    def exchange_code(self, code: str, now: datetime) -> TokenSet:
        with self._session() as session:
            answer = call(PROVIDER, "code exchange", lambda: session.fetch_token(
                self.config.token_url, grant_type="authorization_code", code=code,
                redirect_uri=self.config.redirect_uri, timeout=self.config.http_timeout))
        return token_set(PROVIDER, answer, now, previous_refresh_token=None)

    def refresh(self, refresh_token: str, now: datetime) -> TokenSet:
        with self._session() as session:
            answer = call(PROVIDER, "token refresh", lambda: session.refresh_token(
                self.config.token_url, refresh_token=refresh_token, timeout=self.config.http_timeout))
        return token_set(PROVIDER, answer, now, previous_refresh_token=refresh_token)

    def revoke(self, token: str) -> None:
        # Intuit takes a JSON body, not RFC 7009's form, so Authlib's revoke_token() does not fit.
        with self._session() as session:
            response = call(PROVIDER, "revocation", lambda: session.post(
                self.config.revoke_url, json={"token": token}, withhold_token=True,
                auth=session.client_auth("client_secret_basic"), timeout=self.config.http_timeout))
        if response.status_code >= 500:
            raise ProviderUnavailable(f"Intuit's revoke endpoint answered HTTP {response.status_code}.")
        if response.status_code >= 400:
            raise ProviderRejected(f"Intuit refused the revocation (HTTP {response.status_code}).")

    def api_session(self, access_token: str) -> requests.Session:
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
        return session

    def account_name(self, account_id: str, access_token: str) -> str | None:
        """Read the realm's CompanyInfo with the new token: the callback's ``realmId`` is a
        query parameter anyone can edit, and only Intuit knows which company the token opens.

        401/403 → AccountMismatch. A network error, 429/5xx or odd body returns None (with a
        warning): a passing Intuit hiccup must not block connecting, the name is a nicety.
        One plain GET, no retries or refresh: QboClient's 401 handling would hide a mismatch.
        """
        url = f"{self.config.api_base_url.rstrip('/')}/v3/company/{account_id}/companyinfo/{account_id}"
        try:
            with self.api_session(access_token) as session:
                response = session.get(url, params={"minorversion": MINOR_VERSION},
                                       timeout=self.config.http_timeout)
        except requests.RequestException as exc:
            log.warning("CompanyInfo of realm %s could not be read (%s); connecting without a name",
                        account_id, type(exc).__name__)
            return None
        tid = response.headers.get("intuit_tid")
        if response.status_code in (401, 403):
            raise AccountMismatch(f"Intuit refused CompanyInfo of realm {account_id} to the token issued "
                                  f"for it (HTTP {response.status_code}, intuit_tid={tid}).")
        try:
            name = response.json()["CompanyInfo"]["CompanyName"] if response.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            name = None
        if not isinstance(name, str) or not name.strip():
            log.warning("CompanyInfo of realm %s gave no company name (HTTP %s, intuit_tid=%s); "
                        "connecting without a name", account_id, response.status_code, tid)
            return None
        return name.strip()[:255]  # company.name is VARCHAR(255)
