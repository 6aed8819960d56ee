"""Helpers and fixtures of the Xero simulator tests.

Not a conftest.py: tests/sandbox's modules import their own ``conftest`` by name, and a
second conftest module would shadow it. Test modules import the fixtures from here.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.testing import SandboxServer
from sandbox.xero import XeroSimulator

SCOPE = ("offline_access openid profile email accounting.contacts.read accounting.settings.read "
         "accounting.invoices.read accounting.payments.read accounting.banktransactions.read "
         "accounting.manualjournals.read")


def claims(jwt: str) -> dict[str, Any]:
    """Decode a JWT's payload (no verification: the service treats tokens as opaque)."""
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class XeroClient:
    """Drive the simulator over HTTP as the service will: consent page, token endpoint, API."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.sim: XeroSimulator = server.xero  # type: ignore[assignment]
        self.urls = server.xero_urls()
        self.http = requests.Session()
        self.redirect_uri = self.sim.config.redirect_uris[0]
        self.auth = (self.sim.config.client_id, self.sim.config.client_secret)
        self.access: str | None = None

    def consent(self, tenants: list[str], scope: str = SCOPE, state: str = "st-1") -> requests.Response:
        """Show the consent page, then tick ``tenants`` and allow; return the redirect (or the error page)."""
        params = {"response_type": "code", "client_id": self.auth[0], "redirect_uri": self.redirect_uri,
                  "scope": scope, "state": state}
        page = self.http.get(self.urls["XERO_AUTHORIZE_URL"], params=params)
        if page.status_code != 200:
            return page
        return self.http.post(self.urls["XERO_AUTHORIZE_URL"], data={**params, "tenant": tenants, "action": "allow"},
                              allow_redirects=False)

    def connect(self, tenants: list[str], scope: str = SCOPE) -> dict[str, Any]:
        """Consent and exchange the code; keep the access token."""
        resp = self.consent(tenants, scope)
        assert resp.status_code == 302, resp.text
        code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
        tok = self.token(grant_type="authorization_code", code=code, redirect_uri=self.redirect_uri)
        assert tok.status_code == 200, tok.text
        body = tok.json()
        self.access = body["access_token"]
        return body

    def token(self, **form: str) -> requests.Response:
        """POST the token endpoint with HTTP Basic client auth."""
        return self.http.post(self.urls["XERO_TOKEN_URL"], data=form, auth=self.auth)

    def refresh(self, refresh_token: str) -> requests.Response:
        """Refresh; keep the new access token on success."""
        resp = self.token(grant_type="refresh_token", refresh_token=refresh_token)
        if resp.status_code == 200:
            self.access = resp.json()["access_token"]
        return resp

    def connections(self, **params: str) -> requests.Response:
        """GET /connections with the bearer only."""
        return self.http.get(self.urls["XERO_CONNECTIONS_URL"], params=params,
                             headers={"Authorization": f"Bearer {self.access}"})

    def get(self, resource: str, tenant: str, params: dict[str, Any] | None = None, accept_json: bool = True,
            **headers: str) -> requests.Response:
        """GET /api.xro/2.0/<resource> for a tenant."""
        hdrs = {"Authorization": f"Bearer {self.access}", "Xero-Tenant-Id": tenant, **headers}
        if accept_json:
            hdrs["Accept"] = "application/json"
        return self.http.get(f"{self.urls['XERO_API_BASE_URL']}/api.xro/2.0/{resource}", params=params or {},
                             headers=hdrs)


def install(server: SandboxServer, **options: Any) -> XeroClient:
    """Give the running server a fresh Xero simulator (3 organisations, limits off unless asked)."""
    old = server.xero
    if old is not None:
        old.close()
    server.app.extensions["xero"] = XeroSimulator(**{
        "organisations": 3, "contacts": 40, "invoices": 230, "breadth": 6, "seed": 5, "rate_limits_enabled": False,
        **options})
    return XeroClient(server)


@pytest.fixture(scope="module")
def xserver() -> Iterator[SandboxServer]:
    # One server per module (its shutdown waits out a poll interval); each test gets its own simulator.
    with SandboxServer(companies=1, customers=2, invoices=2, tie_size=1) as srv:
        yield srv


@pytest.fixture
def xero(xserver: SandboxServer) -> XeroClient:
    return install(xserver)
