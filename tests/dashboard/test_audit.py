"""The audit trail: operator actions on record, shown per company and globally, append-only."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from dashboard.extensions import db
from dashboard.models import AuditEvent, utcnow
from dashboard.services import audit
from tests.conftest import csrf_token_from
from tests.dashboard import factories as make

HX = {"HX-Request": "true", "HX-Target": "company-status"}


def events(app) -> list[tuple]:
    with app.app_context():
        found = db.session.execute(select(AuditEvent.actor, AuditEvent.action, AuditEvent.company_source_id,
                                          AuditEvent.object_type, AuditEvent.outcome, AuditEvent.remote_addr)
                                   .order_by(AuditEvent.id)).all()
        db.session.remove()
        return [tuple(r) for r in found]


@pytest.fixture
def acme(app):
    with app.app_context():
        make.company("100", "Acme")
        make.healthy("100")
    return "100"


def test_sign_ins_and_failed_ones_are_on_record_with_the_address(client, operator, app):
    form = lambda password: {"username": "alice", "password": password,  # noqa: E731
                             "csrf_token": csrf_token_from(client.get("/sign-in").get_data(as_text=True))}
    assert client.post("/sign-in", data=form("wrong"), environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 401
    assert client.post("/sign-in", data=form(operator["password"]),
                       environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 302
    assert events(app) == [("alice", "sign_in_failed", None, None, "refused", "203.0.113.9"),
                           ("alice", "sign_in", None, None, "ok", "203.0.113.9")]
    with app.app_context():
        assert db.session.scalars(select(AuditEvent.detail)).first() == "wrong username or password"


def test_company_actions_are_on_record_and_on_the_company_page(signed_in, app, acme):
    before = len(events(app))  # the sign-in
    post = lambda path, **data: signed_in.post(path, data={"csrf_token": signed_in.csrf, **data})  # noqa: E731
    assert post("/companies/100/resync").status_code == 302
    assert post("/companies/100/object-types/invoice", enabled="off").status_code == 302
    assert post("/companies/100/object-types/invoice", enabled="maybe").status_code == 400  # refused: not recorded
    htmx = signed_in.post("/companies/100/disconnect", data={"confirm": "yes"},
                          headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert htmx.status_code == 200
    recorded = events(app)[before:]
    assert [(e[0], e[1], e[2], e[3]) for e in recorded] == [
        ("alice", "resync", "100", None), ("alice", "switch_off", "100", "invoice"), ("alice", "disconnect", "100", None)]
    # The htmx answer brings the activity list up to date out of band.
    html = htmx.get_data(as_text=True)
    assert 'id="company-activity"' in html and "Disconnected" in html
    page = signed_in.get("/companies/100").get_data(as_text=True)
    activity = page[page.index('id="company-activity"'):]
    assert "Switched a type off" in activity and "invoice" in activity and "Resync" in activity


def test_the_global_page_filters_by_company_action_and_day(signed_in, app, acme):
    with app.app_context():
        make.company("200", "Globex")
        audit.record("retry", "bob", company_source_id="200", object_type="invoice")
        audit.record("resync", "bob", company_source_id="100", now=utcnow() - timedelta(days=3))
    page = lambda **q: signed_in.get("/audit", query_string=q)  # noqa: E731
    everything = page().get_data(as_text=True)
    assert "Audit trail" in everything and everything.count("<tr>") == 1 + 3  # header + sign-in, retry, resync
    by_company = page(company="200").get_data(as_text=True)
    assert "Retry" in by_company and "invoice" in by_company and by_company.count("<tr>") == 2
    today = utcnow().date().isoformat()
    recent = page(actor="bob", since=today).get_data(as_text=True)
    assert recent.count("<tr>") == 2 and "Retry" in recent
    assert page(action="resync", until=(utcnow() - timedelta(days=2)).date().isoformat()).get_data(
        as_text=True).count("<tr>") == 2
    bad = page(since="yesterday", action="explode")
    body = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "not a date" in body and "Unknown action" in body


def test_the_global_page_pages_older_events(signed_in, app):
    with app.app_context():
        for i in range(audit.PAGE_SIZE + 5):
            audit.record("parity_check", "bob", company_source_id=str(i))
    first = signed_in.get("/audit", query_string={"actor": "bob"}).get_data(as_text=True)
    assert first.count("<tr>") == 1 + audit.PAGE_SIZE and "Older actions" in first
    link = re.search(r'href="([^"]+)">Older actions', first).group(1).replace("&amp;", "&")
    older = signed_in.get(link).get_data(as_text=True)
    assert older.count("<tr>") == 1 + 5 and "Older actions" not in older


def test_the_database_refuses_to_change_or_remove_an_event(app):
    with app.app_context():
        event = audit.record("rotate_keys", "cli:root", detail="2 tokens re-encrypted")
        for attempt in (update(AuditEvent).where(AuditEvent.id == event.id).values(actor="mallory"),
                        delete(AuditEvent).where(AuditEvent.id == event.id)):
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(attempt)
                db.session.flush()
            db.session.rollback()
        assert db.session.execute(select(AuditEvent.actor)).scalar_one() == "cli:root"
        # Only what is older than a year may go (retention); the rest stays.
        old = audit.record("sign_in", "alice", now=utcnow() - timedelta(days=400))
        assert db.session.execute(delete(AuditEvent).where(AuditEvent.id == old.id)).rowcount == 1
        db.session.commit()
        assert db.session.execute(text("SELECT count(*) FROM audit_event")).scalar() == 1


def test_commands_put_themselves_on_record(app, runner):
    result = runner.invoke(args=["create-operator", "carol"], input="a long enough password\n")
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["rotate-keys"])
    assert result.exit_code == 0, result.output
    recorded = events(app)
    assert [e[1] for e in recorded] == ["create_operator", "rotate_keys"]
    assert all(e[0].startswith("cli") for e in recorded)
