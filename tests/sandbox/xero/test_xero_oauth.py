"""Xero OAuth over HTTP: multi-tenant consent, /connections, rotation with grace, revoke, disconnect."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from xero_client import SCOPE, XeroClient, claims, xero, xserver  # noqa: F401 (fixtures)

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$")


def test_one_consent_two_tenants_then_a_second_consent(xero: XeroClient) -> None:
    t1, t2, t3 = xero.sim.tenants()
    page = xero.http.get(xero.urls["XERO_AUTHORIZE_URL"], params={
        "response_type": "code", "client_id": xero.auth[0], "redirect_uri": xero.redirect_uri, "scope": SCOPE,
        "state": "s"})
    assert page.text.count('type="checkbox" name="tenant"') == 3
    tokens = xero.connect([t1, t2])
    assert tokens["expires_in"] == 1800 and tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"] and tokens["id_token"] and tokens["scope"] == SCOPE
    event = claims(tokens["access_token"])["authentication_event_id"]
    conns = xero.connections().json()
    assert sorted(c["tenantId"] for c in conns) == sorted([t1, t2])
    assert {c["authEventId"] for c in conns} == {event}
    assert all(STAMP.match(c["createdDateUtc"]) and c["tenantType"] == "ORGANISATION" for c in conns)
    assert xero.get("Contacts", t1).status_code == 200 and xero.get("Contacts", t2).status_code == 200
    third = xero.get("Contacts", t3)
    assert third.status_code == 403 and third.json()["Detail"] == "AuthenticationUnsuccessful"
    assert xero.get("Contacts", "").status_code == 403

    # A later consent for t3: /connections lists the earlier tenants too; authEventId tells them apart.
    later = xero.connect([t3])
    event3 = claims(later["access_token"])["authentication_event_id"]
    assert event3 != event
    assert len(xero.connections().json()) == 3
    assert [c["tenantId"] for c in xero.connections(authEventId=event3).json()] == [t3]
    assert xero.http.get(xero.urls["XERO_CONNECTIONS_URL"].replace("connections", "Connections"),
                         headers={"Authorization": f"Bearer {xero.access}"}).status_code == 200

    # Re-consenting t1 keeps its connection (and createdDateUtc), moving updatedDateUtc and authEventId.
    before = next(c for c in conns if c["tenantId"] == t1)
    xero.sim.advance_clock(5)
    again = claims(xero.connect([t1])["access_token"])["authentication_event_id"]
    after = next(c for c in xero.connections().json() if c["tenantId"] == t1)
    assert (after["id"], after["createdDateUtc"]) == (before["id"], before["createdDateUtc"])
    assert after["updatedDateUtc"] > before["updatedDateUtc"] and after["authEventId"] == again != event


def test_code_is_single_use_and_client_auth_styles(xero: XeroClient) -> None:
    resp = xero.consent(xero.sim.tenants()[:1])
    code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    assert parse_qs(urlsplit(resp.headers["Location"]).query)["state"] == ["st-1"]
    body_auth = xero.http.post(xero.urls["XERO_TOKEN_URL"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": xero.redirect_uri,
        "client_id": xero.auth[0], "client_secret": xero.auth[1]})
    assert body_auth.status_code == 200
    again = xero.token(grant_type="authorization_code", code=code, redirect_uri=xero.redirect_uri)
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})
    bad = xero.http.post(xero.urls["XERO_TOKEN_URL"], data={"grant_type": "refresh_token", "refresh_token": "x"},
                         auth=(xero.auth[0], "wrong"))
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid_client"})
    assert xero.token(grant_type="password").json() == {"error": "unsupported_grant_type"}


def test_refresh_rotates_single_use_with_30_minute_grace(xero: XeroClient) -> None:
    first = xero.connect(xero.sim.tenants()[:2])
    r1 = first["refresh_token"]
    second = xero.refresh(r1)
    assert second.status_code == 200
    r2 = second.json()["refresh_token"]
    assert r2 != r1
    # The answer was "lost": the old token is retried within 30 minutes and yields the current one.
    xero.sim.advance_clock(29 * 60)
    retry = xero.refresh(r1)
    assert retry.status_code == 200 and retry.json()["refresh_token"] == r2
    xero.sim.advance_clock(61)
    late = xero.refresh(r1)
    assert (late.status_code, late.json()) == (400, {"error": "invalid_grant"})
    third = xero.refresh(r2)
    assert third.status_code == 200 and third.json()["refresh_token"] not in (r1, r2)
    assert xero.get("Invoices", xero.sim.tenants()[0]).status_code == 200
    counts = xero.sim.token_requests()["requests"]
    assert counts["refresh_token"] == 4 and counts["refresh_token_grace"] == 1 and counts["refresh_token_failed"] == 1


def test_access_token_expires_after_1800_seconds(xero: XeroClient) -> None:
    tokens = xero.connect(xero.sim.tenants()[:1])
    xero.sim.advance_clock(1800)
    resp = xero.get("Contacts", xero.sim.tenants()[0])
    assert resp.status_code == 401 and resp.json()["Detail"].startswith("TokenExpired: token expired at ")
    assert xero.refresh(tokens["refresh_token"]).status_code == 200
    assert xero.get("Contacts", xero.sim.tenants()[0]).status_code == 200


def test_revocation_kills_the_grant_and_every_connection(xero: XeroClient) -> None:
    tokens = xero.connect(xero.sim.tenants()[:2])
    resp = xero.http.post(xero.urls["XERO_REVOKE_URL"], data={"token": tokens["refresh_token"]}, auth=xero.auth)
    assert resp.status_code == 200
    assert xero.refresh(tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    assert xero.connections().status_code == 401
    assert xero.sim.connections() == []


def test_disconnect_one_tenant_keeps_the_others(xero: XeroClient) -> None:
    t1, t2, _ = xero.sim.tenants()
    xero.connect([t1, t2])
    conns = {c["tenantId"]: c["id"] for c in xero.connections().json()}
    url = xero.urls["XERO_CONNECTIONS_URL"]
    bearer = {"Authorization": f"Bearer {xero.access}"}
    assert xero.http.delete(f"{url}/{t1}", headers=bearer).status_code == 403  # a tenant id, not a connection id
    assert xero.http.delete(f"{url}/{conns[t1]}", headers=bearer).status_code == 204
    assert xero.http.delete(f"{url}/{conns[t1]}", headers=bearer).status_code == 404
    assert xero.get("Contacts", t1).status_code == 403
    assert xero.get("Contacts", t2).status_code == 200
    assert [c["tenantId"] for c in xero.connections().json()] == [t2]


def test_scopes_granular_only_and_enforced_per_endpoint(xero: XeroClient) -> None:
    tenant = xero.sim.tenants()[0]
    broad = xero.consent([tenant], scope="offline_access accounting.transactions.read accounting.contacts.read")
    assert broad.status_code == 400 and "Invalid scope for client" in broad.text and "Location" not in broad.headers
    assert xero.consent([tenant], scope="offline_access accounting.nonsense").status_code == 400
    xero.connect([tenant], scope="offline_access accounting.contacts.read")
    assert xero.get("Contacts", tenant).status_code == 200
    denied = xero.get("Invoices", tenant)
    assert denied.status_code == 401 and denied.json()["Detail"] == "AuthorizationUnsuccessful"
    xero.sim.configure(granular_scopes_only=False)
    xero.connect([tenant], scope="offline_access accounting.transactions.read")
    assert xero.get("Invoices", tenant).status_code == 200


def test_cancel_redirects_with_access_denied(xero: XeroClient) -> None:
    params = {"response_type": "code", "client_id": xero.auth[0], "redirect_uri": xero.redirect_uri,
              "scope": SCOPE, "state": "s9", "action": "cancel"}
    resp = xero.http.post(xero.urls["XERO_AUTHORIZE_URL"], data=params, allow_redirects=False)
    assert parse_qs(urlsplit(resp.headers["Location"]).query) == {"error": ["access_denied"], "state": ["s9"]}
    bad = xero.http.get(xero.urls["XERO_AUTHORIZE_URL"], params={**params, "redirect_uri": "http://evil/cb"})
    assert bad.status_code == 400 and "Location" not in bad.headers


def test_pkce_client_without_secret(xero: XeroClient) -> None:
    import base64
    import hashlib
    verifier = "v" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": xero.auth[0], "redirect_uri": xero.redirect_uri, "scope": SCOPE,
              "state": "p", "code_challenge": challenge, "code_challenge_method": "S256",
              "tenant": xero.sim.tenants()[0], "action": "allow"}
    redirect = xero.http.post(xero.urls["XERO_AUTHORIZE_URL"], data=params, allow_redirects=False)
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": xero.redirect_uri,
            "client_id": xero.auth[0]}
    wrong = xero.http.post(xero.urls["XERO_TOKEN_URL"], data={**form, "code_verifier": "x" * 43})
    assert wrong.json() == {"error": "invalid_grant"}
    redirect = xero.http.post(xero.urls["XERO_AUTHORIZE_URL"], data=params, allow_redirects=False)
    form["code"] = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    tokens = xero.http.post(xero.urls["XERO_TOKEN_URL"], data={**form, "code_verifier": verifier})
    assert tokens.status_code == 200
    refreshed = xero.http.post(xero.urls["XERO_TOKEN_URL"], data={
        "grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"], "client_id": xero.auth[0]})
    assert refreshed.status_code == 200
