"""The refresh token's hard expiry (Intuit's 5-year cap): asked for on every token request,
stored through the vault path, shown on the company page, warned about 30 and 7 days
before; the simulator returns it only when asked and counts it down."""
from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import requests

from dashboard.models import ConnectionState, utcnow
from dashboard.services import tokens
from dashboard.services.alerts.reconcile import reconcile
from dashboard.sync.errors import ReconnectRequired
from tests.alerts.conftest import BASE_URL, HttpSink, alert_settings, deliveries_settled, wait_until
from tests.oauth.conftest import REDIRECT_URI, expire_access, stored_company
from tests.support.live import running_consumer

FIVE_YEARS = 5 * 365 * 86400


@pytest.fixture
def sink():
    server = HttpSink()
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


def _refresh_now(db_session, realm: str) -> None:
    expire_access(db_session, realm)
    tokens.get_access_token(realm)


def _token_answer(sandbox, realm: str, headers: dict[str, str]) -> dict:
    """Exchange a fresh code at the simulator's token endpoint, with these headers."""
    from urllib.parse import parse_qs, urlsplit

    code = parse_qs(urlsplit(sandbox.sim.authorize(realm, "s", REDIRECT_URI)).query)["code"][0]
    basic = base64.b64encode(b"sandbox-client-id:sandbox-client-secret").decode()
    answer = requests.post(f"{sandbox.url}/oauth2/v1/tokens/bearer", timeout=5,
                           data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
                           headers={"Authorization": f"Basic {basic}", **headers})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_simulator_tells_the_hard_expiry_only_when_asked(sandbox):
    realm = sandbox.sim.realms()[0]
    assert "x_refresh_token_hard_expires_in" not in _token_answer(sandbox, realm, {})
    told = _token_answer(sandbox, realm, {"x-include-refresh-token-hard-expires-in": "true"})
    assert told["x_refresh_token_hard_expires_in"] == FIVE_YEARS
    assert told["x_refresh_token_expires_in"] <= told["x_refresh_token_hard_expires_in"]


def test_connect_stores_the_hard_expiry_and_the_company_page_shows_it(company, qbo, db_session, signed_in):
    stored = stored_company(db_session, company).refresh_token_hard_expires_at
    assert stored is not None
    assert abs((stored - (utcnow() + timedelta(seconds=FIVE_YEARS))).total_seconds()) < 120
    page = signed_in.get(f"/companies/{company}").get_data(as_text=True)
    assert "Connection ends for good" in page and f"{stored:%Y-%m-%d}" in page
    assert "reconnect before then" not in page


def test_a_near_hard_expiry_is_stored_on_refresh_shown_and_warned_at_30_then_7_days(
        app, company, qbo, db_session, signed_in, sink):
    # The simulator counts the cap down from the first grant; bring it to 20 days away.
    assert qbo.sim.set_hard_expiry(company, 20 * 86400) == 1
    _refresh_now(db_session, company)
    hard = stored_company(db_session, company).refresh_token_hard_expires_at
    assert abs((hard - (utcnow() + timedelta(days=20))).total_seconds()) < 120
    page = signed_in.get(f"/companies/{company}").get_data(as_text=True)
    assert "in 20 days" in page or "in 19 days" in page
    assert "reconnect before then" in page

    now = utcnow()
    with alert_settings(app, alert_webhook_url=sink.url), running_consumer(app):
        assert reconcile(now).opened == 1
        [warning] = sink.wait_for(1)
        # The 30-day warning is said once: no daily reminder at that stage.
        assert reconcile(now + timedelta(days=2)).events == []
        qbo.sim.set_hard_expiry(company, 5 * 86400)
        _refresh_now(db_session, company)
        closer = reconcile(now + timedelta(days=2, minutes=1))
        assert closer.opened == 1
        sink.wait_for(2)
        # At 7 days it is repeated daily.
        assert reconcile(now + timedelta(days=3, minutes=2)).reminded == 1
        sink.wait_for(3)
        wait_until(lambda: deliveries_settled(db_session), what="deliveries")
    assert warning["event"] == "problem" and warning["kind"] == "token_hard_expiry"
    assert warning["stage"] == "30 days" and warning["company"]["url"] == f"{BASE_URL}/companies/{company}"
    assert "ends for good in 19 days" in warning["title"] or "ends for good in 20 days" in warning["title"]
    assert "Reconnect the company" in warning["message"]
    assert [b["stage"] for b in sink.bodies] == ["30 days", "7 days", "7 days"]
    assert [b["event"] for b in sink.bodies] == ["problem", "problem", "reminder"]


def test_past_the_hard_expiry_no_refresh_works_and_a_reconnect_clears_the_warning(
        app, company, qbo, db_session, signed_in):
    from tests.oauth.conftest import connect

    qbo.sim.set_hard_expiry(company, 3 * 86400)
    _refresh_now(db_session, company)
    assert reconcile().opened == 1
    qbo.sim.advance_clock(3 * 86400 + 1)
    expire_access(db_session, company)
    with pytest.raises(ReconnectRequired):
        tokens.get_access_token(company)
    row = stored_company(db_session, company)
    assert row.connection_state == ConnectionState.RECONNECT_REQUIRED and row.refresh_token_hard_expires_at is None
    swapped = reconcile()
    assert [e["kind"] for e in swapped.events] == ["reconnect_required", "token_hard_expiry"]
    assert [e["event"] for e in swapped.events] == ["problem", "recovery"]
    # A new grant: a new 5-year cap, and the reconnect alert resolves.
    assert connect(signed_in, company).status_code == 302
    hard = stored_company(db_session, company).refresh_token_hard_expires_at
    assert hard is not None and hard - utcnow() > timedelta(days=5 * 365 - 2)
    assert reconcile().resolved == 1
