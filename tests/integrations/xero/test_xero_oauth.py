"""Xero's OAuth edge over real HTTP: consent with two tenants, connections of this consent,
rotation with the 30-minute grace, a lost refresh answer, revoke, disconnect."""
from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from dashboard.config import ConfigError, load_config
from dashboard.integrations.errors import InvalidGrant, ProviderRejected, ProviderUnavailable
from dashboard.integrations.xero.oauth import XeroIntegration, access_token_claims
from dashboard.sync.errors import ReconnectRequired, TokenRejected
from tests.conftest import ENV

from .conftest import Tokens, client_for, connect, consent, utcnow, with_timeout

GRANULAR = {"offline_access", "accounting.contacts.read", "accounting.settings.read", "accounting.invoices.read",
            "accounting.payments.read", "accounting.banktransactions.read", "accounting.manualjournals.read"}


def test_authorization_url_asks_for_the_granular_scopes_of_the_setting(xero: XeroIntegration, sim, tmp_path) -> None:
    query = parse_qs(urlsplit(xero.authorization_url("s-1")).query)
    assert set(query["scope"][0].split()) == GRANULAR
    assert (query["client_id"], query["redirect_uri"], query["state"], query["response_type"]) == (
        ["xero-sandbox-client-id"], ["http://localhost:3000/v1/oauth/callback/xero"], ["s-1"], ["code"])
    # An app created after March 2026 that asks for a broad scope is refused at Xero's page.
    broad = load_config({**ENV, "XERO_SCOPES": "offline_access accounting.transactions.read",
                         "XERO_AUTHORIZE_URL": xero.config.authorize_url}, tmp_path)
    page = requests.get(XeroIntegration.from_settings(broad).authorization_url("s-2"))
    assert page.status_code == 400 and "Invalid scope for client" in page.text
    with pytest.raises(ConfigError, match="offline_access"):
        load_config({**ENV, "XERO_SCOPES": "accounting.contacts.read"}, tmp_path)


def test_one_consent_two_tenants_and_only_this_consents_connections(xero: XeroIntegration, sim, settings) -> None:
    t1, t2, t3 = sim.tenants()
    earlier = connect(xero, [t3])  # an earlier consent of the same user
    code, now = consent(xero, [t1, t2]), utcnow()
    tokens = xero.exchange_code(code, now)
    assert tokens.access_token_expires_at - now == timedelta(seconds=1800)  # Xero's expires_in
    assert tokens.refresh_token_expires_at - now == timedelta(days=60)  # Xero's documented idle expiry
    assert len(sim.connections()) == 3  # /connections itself lists every consent's tenants
    found = xero.connections(tokens.access_token)
    assert sorted(c.tenant_id for c in found) == sorted([t1, t2])
    event = access_token_claims(tokens.access_token)["authentication_event_id"]
    assert {c.auth_event_id for c in found} == {event}
    assert all(c.id and c.tenant_type == "ORGANISATION" and c.tenant_name and c.created_at for c in found)
    assert [c.tenant_id for c in xero.connections(tokens.access_token, auth_event_id=
                                                  access_token_claims(earlier.access_token)["authentication_event_id"])
            ] == [t3]
    # The tenants of the consent open with its token through the API client.
    holder = Tokens(xero, tokens)
    assert all(client_for(settings, holder, t).get_page("Accounts").records for t in (t1, t2))


def test_a_second_code_exchange_is_invalid_grant(xero: XeroIntegration, sim) -> None:
    code = consent(xero, sim.tenants()[:1])
    xero.exchange_code(code, utcnow())
    with pytest.raises(InvalidGrant):
        xero.exchange_code(code, utcnow())
    wrong = XeroIntegration(dataclasses.replace(xero.config, client_secret="wrong"), xero.connections_url,
                            xero.scope)
    with pytest.raises(ProviderRejected, match="invalid_client"):
        wrong.exchange_code(consent(xero, sim.tenants()[:1]), utcnow())


def test_refresh_rotates_and_the_old_token_dies_after_the_grace(xero: XeroIntegration, sim) -> None:
    first = connect(xero, sim.tenants()[:2])
    second = xero.refresh(first.refresh_token, utcnow())
    assert second.refresh_token != first.refresh_token and second.access_token != first.access_token
    # Within 30 minutes the old token still answers, with the current refresh token.
    sim.advance_clock(29 * 60)
    assert xero.refresh(first.refresh_token, utcnow()).refresh_token == second.refresh_token
    sim.advance_clock(61)
    with pytest.raises(InvalidGrant):
        xero.refresh(first.refresh_token, utcnow())
    third = xero.refresh(second.refresh_token, utcnow())
    assert third.refresh_token not in (first.refresh_token, second.refresh_token)
    assert len(xero.connections(third.access_token)) == 2


def test_a_lost_refresh_answer_is_retried_with_the_same_token(xero: XeroIntegration, sim) -> None:
    first = connect(xero, sim.tenants()[:1])
    impatient = with_timeout(xero, 0.5)
    # Xero rotates, but the answer comes after our timeout: the same token is sent again at once.
    sim.inject_fault("slow", target="token", count=1, delay=1.5)
    got = impatient.refresh(first.refresh_token, utcnow())
    # The slow request finishes at the server later; whichever of the two came first
    # rotated, the other was a grace retry of the same token.
    deadline = time.monotonic() + 10
    while sim.token_requests()["requests"].get("refresh_token_grace") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    counts = sim.token_requests()["requests"]
    # Two refresh requests, one of them a grace retry (the simulator counts both as refresh_token).
    assert counts.get("refresh_token") == 2 and counts.get("refresh_token_grace") == 1
    assert got.refresh_token != first.refresh_token
    assert xero.refresh(got.refresh_token, utcnow()).refresh_token != got.refresh_token
    # Two answers lost: the caller is told to try later (the old token stays usable 30 minutes).
    sim.inject_fault("500", target="token", count=2)
    with pytest.raises(ProviderUnavailable):
        xero.refresh(got.refresh_token, utcnow())


def test_revoke_kills_the_grant_and_every_connection(xero: XeroIntegration, sim) -> None:
    tokens = connect(xero, sim.tenants()[:2])
    xero.revoke(tokens.refresh_token)
    assert sim.connections() == []
    with pytest.raises(InvalidGrant):
        xero.refresh(tokens.refresh_token, utcnow())
    with pytest.raises(TokenRejected):
        xero.connections(tokens.access_token)


def test_disconnecting_one_tenant_keeps_the_other(xero: XeroIntegration, sim, settings) -> None:
    t1, t2, _ = sim.tenants()
    tokens = connect(xero, [t1, t2])
    gone = next(c for c in xero.connections(tokens.access_token) if c.tenant_id == t1)
    xero.disconnect(tokens.access_token, gone.id)
    assert [c.tenant_id for c in xero.connections(tokens.access_token)] == [t2]
    xero.disconnect(tokens.access_token, gone.id)  # already gone (404) counts as done
    holder = Tokens(xero, tokens)
    with pytest.raises(ReconnectRequired, match="HTTP 403"):
        client_for(settings, holder, t1).get_page("Accounts")
    assert client_for(settings, holder, t2).get_page("Accounts").records
    # The grant lives on for the other tenant: a refresh still works.
    assert xero.refresh(tokens.refresh_token, utcnow()).access_token
