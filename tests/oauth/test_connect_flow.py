"""The connect flow end to end: signed-in client → authorize → simulator consent → callback."""
from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select, text, update

from dashboard.extensions import db
from dashboard.models import (
    AuditEvent, Company, ConnectionState, Customer, OAuthState, RunKind, RunStatus, SyncRun, utcnow,
)
from dashboard.queue import huey
from dashboard.vault import TokenVault
from tests.conftest import PASSWORD, csrf_token_from
from tests.oauth.conftest import REDIRECT_URI, connect, consent, issued_tokens, local_path


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _token_requests(sim) -> dict:
    return sim.token_requests()["requests"]


def test_authorize_redirects_to_intuit_with_exact_parameters(signed_in, qbo, db_session):
    response = signed_in.get("/v1/oauth/authorize/qbo")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{qbo.url}/connect/oauth2"
    params = {k: v for k, v in parse_qs(location.query).items()}
    assert params["scope"] == ["com.intuit.quickbooks.accounting"]
    assert params["redirect_uri"] == [REDIRECT_URI]
    assert params["response_type"] == ["code"] and params["client_id"] == ["sandbox-client-id"]
    state = params["state"][0]
    assert len(state) >= 40 and "code_challenge" not in params
    row = db_session.execute(select(OAuthState)).scalar_one()
    # Only a hash is stored, bound to the session, living 10 minutes.
    assert state not in (row.state_hash, row.session_binding)
    assert timedelta(minutes=9) < row.expires_at - row.created_at <= timedelta(minutes=10)
    assert row.consumed_at is None and row.integration == "qbo"


def test_states_are_random_per_attempt(signed_in, qbo):
    states = {parse_qs(urlsplit(signed_in.get("/v1/oauth/authorize/qbo").headers["Location"]).query)["state"][0]
              for _ in range(5)}
    assert len(states) == 5


def test_whole_connect_flow_stores_company_encrypted_and_queues_backfill(signed_in, qbo, db_session, app):
    realm = qbo.sim.realms()[0]
    response = connect(signed_in, realm)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/companies/{realm}")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    company = db_session.execute(select(Company).where(Company.source_id == realm)).scalar_one()
    assert company.connection_state is ConnectionState.CONNECTED and company.connected_at is not None
    assert company.token_version == 1
    assert company.access_token_expires_at - utcnow() > timedelta(minutes=55)
    assert company.refresh_token_expires_at - utcnow() > timedelta(days=99)
    # Tokens at rest are ciphertexts that open to what Intuit issued, bound to this realm.
    vault = TokenVault(app.config["SETTINGS"].token_encryption_keys)
    grant = next(g for g in qbo.sim.oauth.grants.values() if g.realm == realm)
    assert vault.open(realm, "refresh", company.refresh_token) == grant.refresh_token
    assert vault.open(realm, "access", company.access_token) in grant.access
    # One code exchange, and the initial backfill recorded and queued.
    assert _token_requests(qbo.sim) == {"authorization_code": 1}
    run = db_session.execute(select(SyncRun)).scalar_one()
    assert (run.kind, run.status, run.trigger) == (RunKind.BACKFILL, RunStatus.QUEUED, "connect")
    assert huey.pending_count() == 1
    page = signed_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "is connected" in page
    # The operator's connect is on record, and shown on the company page.
    assert db_session.execute(select(AuditEvent.actor, AuditEvent.action, AuditEvent.company_source_id)
                              .where(AuditEvent.action != "sign_in")).all() == [("alice", "connect", realm)]
    assert "Connected" in page[page.index('id="company-activity"'):]


def test_company_table_dump_holds_no_token_in_plain_text(signed_in, qbo, db_session):
    connect(signed_in, qbo.sim.realms()[0])
    connect(signed_in, qbo.sim.realms()[1])
    tokens = issued_tokens(qbo.sim)
    assert len(tokens) == 4
    dump = "\n".join(repr(tuple(row)) for row in db_session.execute(text("SELECT * FROM company")))
    assert dump.count("gAAAA") == 4  # four Fernet ciphertexts
    assert not [t for t in tokens if t in dump]
    companies = db_session.execute(select(Company)).scalars().all()
    assert not [t for t in tokens for c in companies if t in repr(c)]


def test_callback_twice_exchanges_the_code_once(signed_in, qbo, db_session):
    start = signed_in.get("/v1/oauth/authorize/qbo")
    callback = local_path(consent(start.headers["Location"], qbo.sim.realms()[0]))
    first = signed_in.get(callback)
    second = signed_in.get(callback)
    assert first.status_code == 302
    assert second.status_code == 400 and "already used" in second.get_data(as_text=True)
    assert _token_requests(qbo.sim) == {"authorization_code": 1}
    # The simulator revokes tokens on a second exchange: the connection must still be live.
    assert not any(g.revoked for g in qbo.sim.oauth.grants.values())


def test_concurrent_callbacks_with_one_state_exchange_once(app, signed_in, qbo, db_session):
    start = signed_in.get("/v1/oauth/authorize/qbo")
    callback = local_path(consent(start.headers["Location"], qbo.sim.realms()[0]))
    cookie = signed_in.get_cookie("session").value
    clients = []
    for _ in range(4):
        c = app.test_client()
        c.set_cookie("session", cookie)
        clients.append(c)
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def hit(c):
        barrier.wait()
        statuses.append(c.get(callback).status_code)

    threads = [threading.Thread(target=hit, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [302, 400, 400, 400]
    assert _token_requests(qbo.sim) == {"authorization_code": 1}
    assert _count(Company) == 1


def _assert_nothing_stored(sim=None):
    assert _count(Company) == 0 and _count(SyncRun) == 0
    assert huey.pending_count() == 0
    if sim is not None:
        assert sim.token_requests()["token_requests"] == 0 and not sim.token_requests()["unmatched"]


def _started(client, sim, realm=None):
    """Start a flow and consent; return the callback parameters."""
    url = consent(client.get("/v1/oauth/authorize/qbo").headers["Location"], realm or sim.realms()[0])
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.mark.parametrize("mutate, reason, status", [
    (lambda p: p.pop("state"), "missing_state", 400),
    (lambda p: p.update(state=""), "missing_state", 400),
    (lambda p: p.update(state="forged" + p["state"][6:]), "unknown_state", 400),
    (lambda p: p.pop("code"), "missing_code", 400),
    (lambda p: p.pop("realmId"), "missing_realm", 400),
    (lambda p: p.update(realmId="12x; DROP TABLE company"), "missing_realm", 400),
    (lambda p: p.update(state="x" * 5000), "oversized", 400),
])
def test_bad_callbacks_are_rejected_and_store_nothing(signed_in, qbo, db_session, mutate, reason, status):
    params = _started(signed_in, qbo.sim)
    mutate(params)
    response = signed_in.get("/v1/oauth/callback/qbo", query_string=params)
    body = response.get_data(as_text=True)
    assert response.status_code == status
    assert f'data-reason="{reason}"' in body and "again" in body
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in body.split("</head>")[1]  # no script in the page body
    _assert_nothing_stored(qbo.sim)


def test_expired_state_is_rejected(signed_in, qbo, db_session):
    params = _started(signed_in, qbo.sim)
    db_session.execute(update(OAuthState).values(expires_at=utcnow() - timedelta(seconds=1)))
    db_session.commit()
    response = signed_in.get("/v1/oauth/callback/qbo", query_string=params)
    assert response.status_code == 400 and 'data-reason="expired_state"' in response.get_data(as_text=True)
    _assert_nothing_stored(qbo.sim)


def test_state_from_another_browser_session_is_refused(app, signed_in, qbo, db_session, operator):
    params = _started(signed_in, qbo.sim)  # the attacker's own flow and consent...
    victim = app.test_client()  # ...delivered into another signed-in browser session
    page = victim.get("/sign-in").get_data(as_text=True)
    victim.post("/sign-in", data={"username": operator["username"], "password": PASSWORD,
                                  "csrf_token": csrf_token_from(page)})
    response = victim.get("/v1/oauth/callback/qbo", query_string=params)
    assert response.status_code == 403
    assert 'data-reason="other_session"' in response.get_data(as_text=True)
    anonymous = app.test_client().get("/v1/oauth/callback/qbo", query_string=params)
    assert anonymous.status_code == 403
    _assert_nothing_stored(qbo.sim)
    # The rightful session can still finish its own flow.
    assert signed_in.get("/v1/oauth/callback/qbo", query_string=params).status_code == 302


def test_access_denied_says_so_and_stores_nothing(signed_in, qbo, db_session):
    start = signed_in.get("/v1/oauth/authorize/qbo")
    url = consent(start.headers["Location"], action="cancel")
    assert "error=access_denied" in url
    response = signed_in.get(local_path(url) + "&error_description=%3Cscript%3Ealert(1)%3C/script%3E")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Connection cancelled" in body and "<script>alert" not in body
    _assert_nothing_stored(qbo.sim)


def test_unknown_integration_is_a_clear_404(signed_in, qbo, db_session):
    for path in ("/v1/oauth/authorize/xero", "/v1/oauth/callback/xero?state=a&code=b&realmId=1"):
        response = signed_in.get(path)
        assert response.status_code == 404
        assert "no integration called &#39;xero&#39;" in response.get_data(as_text=True)
    assert _count(OAuthState) == 0


def test_authorize_and_reconnect_need_a_signed_in_operator(client, qbo, db_session):
    for path in ("/v1/oauth/authorize/qbo", "/v1/oauth/reconnect/qbo?realm=1"):
        response = client.get(path)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    assert _count(OAuthState) == 0


def test_reconnect_clears_reconnect_required_and_keeps_data(signed_in, qbo, db_session):
    realm = qbo.sim.realms()[0]
    connect(signed_in, realm)
    db_session.add(Customer(company_source_id=realm, source_id="1", display_name="Kept"))
    db_session.execute(update(Company).values(connection_state=ConnectionState.RECONNECT_REQUIRED,
                                              connection_error="refused", access_token=None, refresh_token=None))
    db_session.execute(update(SyncRun).values(status=RunStatus.CANCELLED))
    db_session.commit()
    start = signed_in.get(f"/v1/oauth/reconnect/qbo?realm={realm}")
    assert start.status_code == 302
    assert db_session.execute(select(OAuthState.company_source_id)
                              .order_by(OAuthState.created_at.desc())).scalars().first() == realm
    response = signed_in.get(local_path(consent(start.headers["Location"], realm)))
    assert response.status_code == 302
    db_session.expire_all()
    company = db_session.execute(select(Company)).scalar_one()
    assert company.connection_state is ConnectionState.CONNECTED and company.connection_error is None
    assert company.refresh_token and company.token_version == 2
    assert _count(Customer) == 1
    assert db_session.execute(select(AuditEvent.action).order_by(AuditEvent.id.desc())).scalars().first() == "reconnect"
    # The dashboard's reconnect link (no integration in the path) works too.
    assert signed_in.get(f"/v1/oauth/reconnect?realm={realm}").status_code == 302
    assert signed_in.get("/v1/oauth/reconnect?realm=404404").status_code == 404
