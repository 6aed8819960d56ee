"""OAuth 2.0: consent, code exchange, expiry, rotation, grace, revoke."""
from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox import Simulator, create_app
from sandbox.testing import SandboxServer

REDIRECT = "http://localhost:3000/v1/oauth/callback/qbo"
BASIC = "Basic " + base64.b64encode(b"sandbox-client-id:sandbox-client-secret").decode()


@pytest.fixture
def env() -> Any:
    sim = Simulator(companies=2, customers=5, invoices=5, rate_limits_enabled=False)
    client = create_app(sim).test_client()
    yield sim, client
    sim.close()


def _code(sim: Simulator, realm: str | None = None) -> str:
    url = sim.authorize(realm or sim.realms()[0], "st", REDIRECT)
    return parse_qs(urlsplit(url).query)["code"][0]


def _exchange(client: Any, code: str, redirect: str = REDIRECT, auth: str | None = BASIC, **extra: str) -> Any:
    headers = {"Authorization": auth} if auth else {}
    return client.post("/oauth2/v1/tokens/bearer", headers={**headers, "Accept": "application/json"},
                       data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect, **extra})


def _refresh(client: Any, token: str) -> Any:
    return client.post("/oauth2/v1/tokens/bearer", headers={"Authorization": BASIC},
                       data={"grant_type": "refresh_token", "refresh_token": token})


def _api(client: Any, realm: str, access: str) -> Any:
    return client.get(f"/v3/company/{realm}/query", query_string={"query": "select count(*) from Customer"},
                      headers={"Authorization": f"Bearer {access}"})


def test_consent_page_and_redirects(env: Any) -> None:
    sim, client = env
    params = {"client_id": "sandbox-client-id", "response_type": "code", "redirect_uri": REDIRECT,
              "scope": "com.intuit.quickbooks.accounting", "state": "xyz"}
    page = client.get("/connect/oauth2", query_string=params)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Connect" in html and "Cancel" in html and 'lang="en"' in html
    assert "http" not in html.split("<body>")[0].replace(REDIRECT, "")  # no external resources
    for realm in sim.realms():
        assert realm in html
    ok = client.post("/connect/oauth2", data={**params, "action": "connect", "realmId": sim.realms()[1]})
    assert ok.status_code == 302
    loc = urlsplit(ok.headers["Location"])
    q = parse_qs(loc.query)
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == REDIRECT
    assert q["state"] == ["xyz"] and q["realmId"] == [sim.realms()[1]] and q["code"][0]
    cancel = client.post("/connect/oauth2", data={**params, "action": "cancel"})
    assert parse_qs(urlsplit(cancel.headers["Location"]).query) == {"error": ["access_denied"], "state": ["xyz"]}
    bad = client.get("/connect/oauth2", query_string={**params, "redirect_uri": REDIRECT + "/"})
    assert bad.status_code == 400 and "Location" not in bad.headers
    assert page.headers["intuit_tid"]


def test_code_exchange_basic_and_form_auth(env: Any) -> None:
    sim, client = env
    r = _exchange(client, _code(sim))
    assert r.status_code == 200 and r.headers["intuit_tid"]
    body = r.get_json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["x_refresh_token_expires_in"] == 100 * 86400 and body["refresh_token"] and body["access_token"]
    form = _exchange(client, _code(sim), auth=None, client_id="sandbox-client-id",
                     client_secret="sandbox-client-secret")
    assert form.status_code == 200
    bad = _exchange(client, _code(sim), auth="Basic " + base64.b64encode(b"sandbox-client-id:nope").decode())
    assert bad.status_code == 401 and bad.get_json() == {"error": "invalid_client"}


def test_redirect_uri_must_match_exactly(env: Any) -> None:
    sim, client = env
    r = _exchange(client, _code(sim), redirect="http://127.0.0.1:3000/v1/oauth/callback/qbo")
    assert r.status_code == 400 and r.get_json() == {"error": "invalid_grant"}


def test_code_reuse_revokes_tokens(env: Any) -> None:
    sim, client = env
    realm = sim.realms()[0]
    code = _code(sim)
    first = _exchange(client, code).get_json()
    assert _api(client, realm, first["access_token"]).status_code == 200
    again = _exchange(client, code)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert _api(client, realm, first["access_token"]).status_code == 401
    assert _refresh(client, first["refresh_token"]).get_json() == {"error": "invalid_grant"}


def test_code_expires(env: Any) -> None:
    sim, client = env
    code = _code(sim)
    sim.advance_clock(601)
    assert _exchange(client, code).get_json() == {"error": "invalid_grant"}


def test_access_token_expiry_and_401_body(env: Any) -> None:
    sim, client = env
    realm = sim.realms()[0]
    tok = _exchange(client, _code(sim)).get_json()
    assert _api(client, realm, tok["access_token"]).status_code == 200
    sim.advance_clock(3601)
    r = _api(client, realm, tok["access_token"])
    assert r.status_code == 401 and r.headers["intuit_tid"]
    err = r.get_json()["fault"]["error"][0]
    assert err["code"] == "3200" and "AuthenticationFailed" in err["message"]
    assert r.get_json()["fault"]["type"] == "AUTHENTICATION"
    assert tok["access_token"] not in r.get_data(as_text=True)
    assert _api(client, realm, "").status_code == 401
    assert client.get(f"/v3/company/{realm}/query?query=select%20*%20from%20Customer").status_code == 401


def test_refresh_rotates_and_grace(env: Any) -> None:
    sim, client = env
    realm = sim.realms()[0]
    tok = _exchange(client, _code(sim)).get_json()
    r1 = _refresh(client, tok["refresh_token"]).get_json()
    assert r1["refresh_token"] != tok["refresh_token"] and r1["access_token"] != tok["access_token"]
    assert _api(client, realm, r1["access_token"]).status_code == 200
    # Within the 24 h grace the old token still works and hands back the current one.
    sim.advance_clock(3600)
    old = _refresh(client, tok["refresh_token"])
    assert old.status_code == 200 and old.get_json()["refresh_token"] == r1["refresh_token"]
    sim.advance_clock(86400)
    late = _refresh(client, tok["refresh_token"])
    assert late.status_code == 400 and late.get_json() == {"error": "invalid_grant"}
    r2 = _refresh(client, r1["refresh_token"]).get_json()
    assert r2["x_refresh_token_expires_in"] == 100 * 86400  # rolling window
    stats = sim.token_requests(realm)
    assert stats["requests"]["authorization_code"] == 1 and stats["requests"]["refresh_token"] == 4


def test_strict_single_use_refresh(env: Any) -> None:
    sim, client = env
    sim.set_refresh_grace(0)
    tok = _exchange(client, _code(sim)).get_json()
    assert _refresh(client, tok["refresh_token"]).status_code == 200
    assert _refresh(client, tok["refresh_token"]).get_json() == {"error": "invalid_grant"}


def test_refresh_token_window_expires(env: Any) -> None:
    sim, client = env
    tok = _exchange(client, _code(sim)).get_json()
    sim.advance_clock(100 * 86400 + 1)
    assert _refresh(client, tok["refresh_token"]).get_json() == {"error": "invalid_grant"}


def test_revoke_endpoint_kills_grant(env: Any) -> None:
    sim, client = env
    realm = sim.realms()[0]
    tok = _exchange(client, _code(sim)).get_json()
    r = client.post("/v2/oauth2/tokens/revoke", json={"token": tok["refresh_token"]},
                    headers={"Authorization": BASIC, "Accept": "application/json"})
    assert r.status_code == 200 and r.headers["intuit_tid"]
    assert _api(client, realm, tok["access_token"]).status_code == 401
    assert _refresh(client, tok["refresh_token"]).get_json() == {"error": "invalid_grant"}
    assert client.post("/v2/oauth2/tokens/revoke", json={"token": "x"}).status_code == 401


def test_control_expire_and_revoke(env: Any) -> None:
    sim, client = env
    realm = sim.realms()[0]
    tok = sim.issue_tokens(realm)
    sim.expire_access_tokens(realm)
    assert _api(client, realm, tok["access_token"]).status_code == 401
    fresh = _refresh(client, tok["refresh_token"]).get_json()
    assert _api(client, realm, fresh["access_token"]).status_code == 200
    sim.revoke_grant(realm)
    assert _api(client, realm, fresh["access_token"]).status_code == 401


def test_token_for_other_realm_is_refused(env: Any) -> None:
    sim, client = env
    a, b = sim.realms()
    tok = sim.issue_tokens(a)
    assert _api(client, b, tok["access_token"]).status_code == 403


def test_unsupported_grant_and_missing_params(env: Any) -> None:
    _, client = env
    r = client.post("/oauth2/v1/tokens/bearer", headers={"Authorization": BASIC}, data={"grant_type": "password"})
    assert r.get_json() == {"error": "unsupported_grant_type"}
    r = client.post("/oauth2/v1/tokens/bearer", headers={"Authorization": BASIC}, data={})
    assert r.get_json() == {"error": "invalid_request"}


def test_full_flow_over_http() -> None:
    with SandboxServer(companies=1, customers=3, invoices=3) as srv:
        params = {"client_id": "sandbox-client-id", "response_type": "code", "redirect_uri": REDIRECT,
                  "scope": "com.intuit.quickbooks.accounting", "state": "s1"}
        assert requests.get(srv.url + "/connect/oauth2", params=params, timeout=5).status_code == 200
        r = requests.post(srv.url + "/connect/oauth2", data={**params, "action": "connect",
                                                             "realmId": srv.sim.realms()[0]},
                          allow_redirects=False, timeout=5)
        q = parse_qs(urlsplit(r.headers["Location"]).query)
        tok = requests.post(srv.url + "/oauth2/v1/tokens/bearer", auth=("sandbox-client-id", "sandbox-client-secret"),
                            data={"grant_type": "authorization_code", "code": q["code"][0], "redirect_uri": REDIRECT},
                            headers={"Accept": "application/json"}, timeout=5).json()
        resp = requests.get(f"{srv.url}/v3/company/{q['realmId'][0]}/query",
                            params={"query": "select * from Customer"},
                            headers={"Authorization": f"Bearer {tok['access_token']}", "Accept": "application/json"},
                            timeout=5)
        assert resp.status_code == 200 and resp.json()["QueryResponse"]["Customer"]
