"""The callback reads CompanyInfo with the new token: the company's name, and a realmId check."""
from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import Company, ConnectionState, SyncRun
from dashboard.queue import huey
from tests.oauth.conftest import connect, consent, issued_tokens, local_path


def _company(realm: str) -> Company | None:
    db.session.expire_all()
    return db.session.execute(select(Company).where(Company.source_id == realm)).scalar_one_or_none()


def _companyinfo_requests(sim, realm: str) -> list[dict]:
    return [e for e in sim.request_log(realm) if "/companyinfo/" in e["path"]]


def test_connect_stores_the_company_name_and_reconnect_updates_it(signed_in, qbo, db_session):
    realm = qbo.sim.realms()[0]
    response = connect(signed_in, realm)
    assert response.status_code == 302
    name = qbo.sim.company(realm).name
    assert _company(realm).name == name
    assert len(_companyinfo_requests(qbo.sim, realm)) == 1  # one metered call per connect
    page = signed_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Company " + realm not in page

    qbo.sim.company(realm).name = "Renamed Ltd"  # renamed in QuickBooks meanwhile
    start = signed_in.get(f"/v1/oauth/reconnect/qbo?realm={realm}")
    assert signed_in.get(local_path(consent(start.headers["Location"], realm))).status_code == 302
    assert _company(realm).name == "Renamed Ltd"


def test_tampered_realm_is_rejected_nothing_stored_and_grant_revoked(signed_in, qbo, db_session):
    chosen, other = qbo.sim.realms()
    url = consent(signed_in.get("/v1/oauth/authorize/qbo").headers["Location"], chosen)
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    params["realmId"] = other  # another existing company: the token does not open it
    response = signed_in.get("/v1/oauth/callback/qbo", query_string=params)
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and 'data-reason="realm_mismatch"' in body
    assert "does not match its token" in body
    assert db.session.scalar(select(func.count()).select_from(Company)) == 0
    assert db.session.scalar(select(func.count()).select_from(SyncRun)) == 0
    assert huey.pending_count() == 0
    assert [e["status"] for e in _companyinfo_requests(qbo.sim, other)] == [403]
    # The just-issued grant is revoked: no live token is left behind.
    assert [g["revoked"] for g in qbo.sim.token_requests()["grants"]] == [True]


def test_companyinfo_500_still_connects_without_a_name(signed_in, qbo, db_session, caplog):
    realm = qbo.sim.realms()[0]
    qbo.sim.inject_fault("500", realm=realm, count=1)
    with caplog.at_level(logging.WARNING):
        response = connect(signed_in, realm)
    assert response.status_code == 302
    company = _company(realm)
    assert company.connection_state is ConnectionState.CONNECTED and company.refresh_token
    assert company.name is None
    assert [e["status"] for e in _companyinfo_requests(qbo.sim, realm)] == [500]
    warning = next(r.getMessage() for r in caplog.records if "CompanyInfo" in r.getMessage())
    assert "intuit_tid=1-" in warning and "HTTP 500" in warning
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(token in logged for token in issued_tokens(qbo.sim))

