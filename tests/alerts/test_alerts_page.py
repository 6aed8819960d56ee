"""The Alerts page: signed-in only, says where alerts go, lists open problems."""
from __future__ import annotations

from dashboard.models import ConnectionState
from dashboard.services.alerts.reconcile import reconcile
from tests.dashboard import factories

from .conftest import alert_settings


def test_the_alerts_page_needs_a_signed_in_operator(app, client, db_session):
    response = client.get("/alerts")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_the_alerts_page_lists_open_problems_and_the_channels(app, signed_in, db_session, sink):
    factories.company("123450", name="Needs Care", state=ConnectionState.RECONNECT_REQUIRED)
    with alert_settings(app):
        reconcile()
        bare = signed_in.get("/alerts").get_data(as_text=True)
    assert "No alert channel is configured" in bare
    assert '<a href="/alerts">Alerts</a>' in bare
    assert "Open problems (1)" in bare and "Needs Care (123450) needs reconnecting to QuickBooks" in bare
    assert '<a href="/companies/123450">' in bare
    with alert_settings(app, alert_webhook_url=sink.url, alert_webhook_format="teams"):
        page = signed_in.get("/alerts").get_data(as_text=True)
    assert f"webhook (teams) to http://127.0.0.1:{sink.server.server_port}/…" in page
    assert "s3cr3t" not in page
