"""Alerts end to end: problems in the database → a pass → real messages to a local HTTP sink
and a local SMTP server, delivered by a real Huey consumer."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from dashboard.models import Alert, AlertDelivery, ConnectionState, SyncState, SyncStatus, utcnow
from dashboard.services.alerts.reconcile import reconcile
from tests.dashboard import factories
from tests.support.live import running_consumer

from .conftest import BASE_URL, SECRET_PATH, alert_settings, deliveries_settled, wait_until

REALM = "4620816365"
ERROR = "Intuit refused the query (HTTP 400, code 4000): QueryParserError: Encountered \"ORDERBY\""


def failing_company(realm: str = REALM, name: str | None = "Acme Ltd", object_type: str = "invoice") -> None:
    factories.company(realm, name=name)
    factories.healthy(realm, types=("customer",))
    factories.sync_state(realm, object_type, SyncStatus.FAILED, error_message=ERROR, error_kind="request_rejected",
                         attempts=4, last_failed_at=utcnow())


def set_status(db_session, realm: str, object_type: str, status: SyncStatus) -> None:
    db_session.execute(update(SyncState).where(SyncState.company_source_id == realm,
                                               SyncState.object_type == object_type)
                       .values(status=status, attempts=0, error_message=None))
    db_session.commit()


def test_failure_then_recovery_reaches_the_webhook_and_the_mailbox_once(app, db_session, channels):
    sink, smtp = channels
    failing_company()
    now = utcnow()
    with running_consumer(app):
        first = reconcile(now)
        assert (first.opened, first.resolved) == (1, 0)
        [problem] = sink.wait_for(1)
        wait_until(lambda: len(smtp.messages) == 1, what="the e-mail")
        # The same problem seen again is not said again (dedup).
        assert reconcile(now + timedelta(minutes=1)).events == []
        set_status(db_session, REALM, "invoice", SyncStatus.SUCCEEDED)
        recovered = reconcile(now + timedelta(minutes=2))
        assert recovered.resolved == 1
        sink.wait_for(2)
        wait_until(lambda: len(smtp.messages) == 2, what="the recovery e-mail")
        wait_until(lambda: deliveries_settled(db_session), what="deliveries")
    assert len(sink.requests) == 2 and len(smtp.messages) == 2
    assert problem["event"] == "problem" and problem["kind"] == "sync_failed"
    assert problem["key"] == f"sync_failed:{REALM}:invoice" and problem["object_type"] == "invoice"
    assert problem["title"] == f"Invoices sync failed for Acme Ltd ({REALM})"
    assert problem["message"] == ERROR
    assert problem["company"] == {"realm": REALM, "url": f"{BASE_URL}/companies/{REALM}"}
    assert problem["resolved_at"] is None
    recovery = sink.bodies[1]
    assert recovery["event"] == "recovery" and recovery["key"] == problem["key"] and recovery["resolved_at"]
    mail = smtp.messages[0]
    assert mail["to"] == ["ops@example.com", "oncall@example.com"] and mail["from"] == "alerts@example.com"
    assert mail["message"]["Subject"].strip() == f"[QuickBooks Sync] Problem: Invoices sync failed for Acme Ltd ({REALM})"
    text = mail["message"].get_content()
    assert ERROR in text and f"{BASE_URL}/companies/{REALM}" in text
    assert smtp.messages[1]["message"]["Subject"].strip().startswith("[QuickBooks Sync] Resolved: Invoices sync failed")
    alert = db_session.scalars(select(Alert)).one()
    assert alert.resolved_at is not None and alert.notifications == 1


def test_a_type_being_retried_keeps_its_alert_without_a_message(app, db_session, channels):
    sink, _ = channels
    failing_company()
    now = utcnow()
    assert reconcile(now).opened == 1
    # An operator clicked Retry: the type is in progress, its failure not yet cleared.
    db_session.execute(update(SyncState).where(SyncState.object_type == "invoice")
                       .values(status=SyncStatus.IN_PROGRESS))
    db_session.commit()
    held = reconcile(now + timedelta(minutes=1))
    assert held.events == [] and held.resolved == 0
    # The retry failed again: still the same alert, nothing new to say.
    db_session.execute(update(SyncState).where(SyncState.object_type == "invoice").values(status=SyncStatus.FAILED))
    db_session.commit()
    assert reconcile(now + timedelta(minutes=2)).events == []


def test_reconnect_required_in_slack_format(app, db_session, sink):
    factories.company(REALM, name="Acme <Ltd> & Co", state=ConnectionState.RECONNECT_REQUIRED,
                      connection_error="QuickBooks refused the refresh token (invalid_grant).")
    with alert_settings(app, alert_webhook_url=sink.url, alert_webhook_format="slack"), running_consumer(app):
        assert reconcile().opened == 1
        [body] = sink.wait_for(1)
        wait_until(lambda: deliveries_settled(db_session), what="deliveries")
    assert body["text"] == f"Problem: Acme <Ltd> & Co ({REALM}) needs reconnecting to QuickBooks"
    header, section, context = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": body["text"]}}
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert "invalid_grant" in section["text"]["text"]
    assert context["elements"][0]["text"] == f"<{BASE_URL}/companies/{REALM}|Open in QuickBooks Sync>"


def test_parity_failure_in_teams_format(app, db_session, sink):
    factories.company(REALM, name="Acme")
    factories.sync_state(REALM, "customer", SyncStatus.SUCCEEDED, is_initial_backfill_completed=True,
                         parity_checked_at=utcnow(), parity_source_count=120, parity_local_count=118,
                         parity_drifts=2, parity_drift_since=utcnow() - timedelta(days=1))
    with alert_settings(app, alert_webhook_url=sink.url, alert_webhook_format="teams"), running_consumer(app):
        assert reconcile().opened == 1
        [body] = sink.wait_for(1)
        wait_until(lambda: deliveries_settled(db_session), what="deliveries")
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, message, facts = card["body"]
    assert title["text"] == f"Problem: Customers of Acme ({REALM}) drift from QuickBooks" and title["weight"] == "Bolder"
    assert "120" in message["text"] and "118" in message["text"]
    assert {"title": "Company", "value": REALM} in facts["facts"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in QuickBooks Sync",
                                "url": f"{BASE_URL}/companies/{REALM}"}]


def test_a_burst_of_50_failing_companies_sends_one_digest_per_channel(app, db_session, channels):
    sink, smtp = channels
    realms = [f"91000000{i:02d}" for i in range(50)]
    for realm in realms:
        failing_company(realm, name=None)
    now = utcnow()
    with running_consumer(app):
        burst = reconcile(now)
        assert burst.opened == 50 and len(burst.events) == 1
        [digest] = sink.wait_for(1)
        wait_until(lambda: len(smtp.messages) == 1, what="the digest e-mail")
        assert reconcile(now + timedelta(minutes=1)).events == []
        db_session.execute(update(SyncState).values(status=SyncStatus.SUCCEEDED, attempts=0))
        db_session.commit()
        over = reconcile(now + timedelta(minutes=2))
        assert over.resolved == 50 and len(over.events) == 1
        sink.wait_for(2)
        wait_until(lambda: len(smtp.messages) == 2, what="the recovery digest e-mail")
        wait_until(lambda: deliveries_settled(db_session), what="deliveries")
    assert len(sink.requests) == 2 and len(smtp.messages) == 2
    assert digest["event"] == "digest" and digest["of"] == "problem"
    assert digest["count"] == 50 and digest["companies"] == 50
    assert digest["title"] == "50 new problems in 50 companies"
    assert {a["company"]["realm"] for a in digest["alerts"]} == set(realms)
    assert sink.bodies[1]["of"] == "recovery" and sink.bodies[1]["count"] == 50
    assert smtp.messages[0]["message"]["Subject"].strip() == "[QuickBooks Sync] 50 new problems in 50 companies"


def test_an_open_problem_is_repeated_at_most_daily(app, db_session):
    failing_company()
    t0 = utcnow()
    assert reconcile(t0).opened == 1
    assert reconcile(t0 + timedelta(hours=23, minutes=59)).events == []
    repeat = reconcile(t0 + timedelta(hours=24))
    assert repeat.reminded == 1 and [e["event"] for e in repeat.events] == ["reminder"]
    assert reconcile(t0 + timedelta(hours=30)).events == []
    assert reconcile(t0 + timedelta(hours=48)).reminded == 1
    alert = db_session.scalars(select(Alert)).one()
    assert alert.notifications == 3 and alert.last_notified_at == t0 + timedelta(hours=48)
    # No channel configured: the alerts are kept (for the dashboard), no delivery is recorded.
    assert db_session.scalars(select(AlertDelivery)).all() == []


def test_a_problem_that_comes_back_is_opened_again(app, db_session):
    failing_company()
    t0 = utcnow()
    reconcile(t0)
    set_status(db_session, REALM, "invoice", SyncStatus.SUCCEEDED)
    assert reconcile(t0 + timedelta(minutes=1)).resolved == 1
    db_session.execute(update(SyncState).where(SyncState.object_type == "invoice")
                       .values(status=SyncStatus.FAILED, error_message=ERROR, attempts=4))
    db_session.commit()
    again = reconcile(t0 + timedelta(minutes=2))
    assert again.opened == 1 and again.events[0]["opened_at"] == (t0 + timedelta(minutes=2)).isoformat()
    assert len(db_session.scalars(select(Alert)).all()) == 1


def test_a_failing_source_resolves_nothing(app, db_session):
    failing_company()
    t0 = utcnow()
    assert reconcile(t0).opened == 1

    def broken(now):
        raise RuntimeError("database hiccup")

    result = reconcile(t0 + timedelta(minutes=1), sources={"sync_failed": broken})
    assert result.failed_sources == ["sync_failed"] and result.resolved == 0
    assert db_session.scalars(select(Alert)).one().resolved_at is None


def test_a_sink_answering_500_is_retried_then_recorded_and_shown(app, db_session, sink, signed_in, caplog):
    sink.mode = "500"
    failing_company()
    caplog.set_level(logging.INFO)
    with alert_settings(app, alert_webhook_url=sink.url), running_consumer(app):
        reconcile()
        wait_until(lambda: deliveries_settled(db_session), what="the delivery to give up")
    delivery = db_session.scalars(select(AlertDelivery)).one()
    assert delivery.status == "failed" and delivery.attempts == 3 == len(sink.requests)  # 1 + 2 retries
    assert delivery.last_error == f"The webhook at http://127.0.0.1:{sink.server.server_port}/… answered HTTP 500."
    assert any("failed for good" in r.getMessage() for r in caplog.records)
    assert SECRET_PATH not in caplog.text and "s3cr3t" not in caplog.text
    page = signed_in.get("/alerts").get_data(as_text=True)
    assert "Deliveries that failed (1 in the last 7 days)" in page and "answered HTTP 500" in page
    assert "Invoices sync failed for Acme Ltd" in page and "s3cr3t" not in page


def test_a_hanging_sink_does_not_hold_up_a_sync(app, db_session, sink):
    """The delivery hangs in one worker thread while a real sync of a simulated company
    runs to the end in another (the timing figure is in benchmarks/alert_sink_bench.py)."""
    from dashboard.models import RunKind, RunStatus, SyncRun
    from dashboard.services import sync_jobs
    from sandbox.testing import SandboxServer
    from tests.support.live import pointed_at_simulator
    from tests.sync.conftest import connect

    sink.mode = "hang"
    for i in range(3):  # three messages waiting behind the hung one: still one thread held
        failing_company(f"77700011{i}")
    with SandboxServer(companies=1, customers=20, invoices=20, seed=3) as server, \
            pointed_at_simulator(app, server.url), \
            alert_settings(app, alert_webhook_url=sink.url):
        app.config["ALERT_DELIVERY_TIMEOUT"] = 8.0
        realm = server.sim.realms()[0]
        connect(server.sim, realm)
        with running_consumer(app, workers=2):  # one for the hung channel, one for the sync
            reconcile()
            sink.wait_for(1)  # the delivery is in the sink now, waiting for an answer
            run, _ = sync_jobs.request_sync(realm, kind=RunKind.BACKFILL, trigger="test")

            def finished():
                db_session.rollback()
                return db_session.get(SyncRun, run.id).status in (RunStatus.SUCCEEDED, RunStatus.FAILED)

            wait_until(finished, timeout=20, what="the sync")
            assert db_session.get(SyncRun, run.id).status == RunStatus.SUCCEEDED
            # The sync is done while the alerts still wait for the sink.
            deliveries = db_session.scalars(select(AlertDelivery)).all()
            assert len(deliveries) == 3 and {d.status for d in deliveries} == {"pending"}
            assert len(sink.requests) == 1
            sink.release.set()


def test_a_hanging_sink_and_a_dead_mail_server_time_out_retry_and_are_recorded_without_secrets(
        app, db_session, sink, caplog):
    sink.mode = "hang"
    failing_company()
    caplog.set_level(logging.INFO)
    with alert_settings(app, alert_webhook_url=sink.url, smtp_url="smtp://alerts:pa55w0rd@127.0.0.1:9",
                        alert_email_to=("ops@example.com",)), running_consumer(app):
        app.config.update(ALERT_DELIVERY_TIMEOUT=0.5, ALERT_DELIVERY_RETRIES=1)
        reconcile()
        wait_until(lambda: deliveries_settled(db_session), what="both deliveries to give up")
    webhook, email = sorted(db_session.scalars(select(AlertDelivery)).all(), key=lambda d: d.channel, reverse=True)
    assert (webhook.channel, webhook.status, webhook.attempts) == ("webhook", "failed", 2) and len(sink.requests) == 2
    assert webhook.last_error.endswith("/… did not answer within 0.5 s.")
    assert (email.channel, email.status, email.attempts) == ("email", "failed", 2)
    assert email.last_error == "The SMTP server at 127.0.0.1:9 could not be used (ConnectionRefusedError)."
    assert "failed for good" in caplog.text
    for secret in ("pa55w0rd", "s3cr3t", SECRET_PATH):
        assert secret not in caplog.text and secret not in webhook.last_error + email.last_error
