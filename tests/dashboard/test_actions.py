"""Dashboard actions: each a CSRF-checked POST, answered with a fragment (htmx) or a redirect."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dashboard.models import Company, ConnectionState, RunKind, RunStatus, SyncRun, SyncStatus
from tests.dashboard import factories as make

HX = {"HX-Request": "true", "HX-Target": "company-status"}


def text(response) -> str:
    return response.get_data(as_text=True)


def runs(app) -> list[tuple[RunKind, str | None, RunStatus, str | None]]:
    from dashboard.extensions import db

    with app.app_context():
        found = db.session.execute(select(SyncRun.kind, SyncRun.object_type, SyncRun.status, SyncRun.trigger)
                                   .order_by(SyncRun.id)).all()
        db.session.remove()
        return [tuple(r) for r in found]


@pytest.fixture
def acme(app):
    with app.app_context():
        make.company("100", "Acme")
        make.healthy("100")
    return "100"


def test_resync_without_javascript_redirects_with_a_flash(signed_in, app, acme):
    response = signed_in.post("/companies/100/resync", data={"csrf_token": signed_in.csrf})
    assert response.status_code == 302 and response.headers["Location"] == "/companies/100"
    assert runs(app) == [(RunKind.INCREMENTAL, None, RunStatus.QUEUED, "operator")]
    page = text(signed_in.get("/companies/100"))
    assert "Resync queued." in page and "Queued" in page and "every 2s" in page


def test_resync_with_htmx_returns_the_component_and_the_flash_out_of_band(signed_in, app, acme):
    response = signed_in.post("/companies/100/resync", headers={**HX, "X-CSRFToken": signed_in.csrf})
    html = text(response)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<section id="company-status"')
    assert 'hx-trigger="every 2s"' in html  # the queued run makes it poll
    assert '<div id="flashes" aria-live="polite" hx-swap-oob="true">' in html and "Resync queued." in html
    assert 'id="company-runs"' in html and "Incremental" in html


def test_double_submission_queues_once_and_says_already_queued(signed_in, app, acme):
    first = signed_in.post("/companies/100/resync", headers={**HX, "X-CSRFToken": signed_in.csrf})
    second = signed_in.post("/companies/100/resync", headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert "Resync queued." in text(first)
    assert "already queued" in text(second) and "Resync queued." not in text(second)
    assert len(runs(app)) == 1
    third = signed_in.post("/companies/100/resync", data={"csrf_token": signed_in.csrf}, follow_redirects=True)
    assert "already queued" in text(third) and len(runs(app)) == 1


@pytest.mark.parametrize("path", ["/companies/100/resync", "/companies/100/full-resync", "/companies/100/retry",
                                  "/companies/100/disconnect"])
def test_actions_without_csrf_token_change_nothing(signed_in, app, acme, path):
    for headers in ({}, {"HX-Request": "true"}):
        response = signed_in.post(path, data={"confirm": "yes", "object_type": "customer"}, headers=headers)
        assert response.status_code == 400 and "Form expired" in text(response)
    assert runs(app) == []
    with app.app_context():
        from dashboard.extensions import db
        assert db.session.scalar(select(Company.connection_state)) is ConnectionState.CONNECTED
        db.session.remove()


def test_full_resync_needs_a_confirmation_without_javascript(signed_in, app, acme):
    ask = signed_in.post("/companies/100/full-resync", data={"csrf_token": signed_in.csrf})
    assert ask.status_code == 200 and "Full resync of Acme?" in text(ask)
    assert 'type="checkbox" id="confirm" name="confirm" value="yes" required' in text(ask)
    assert signed_in.get("/companies/100/full-resync").status_code == 200
    unticked = signed_in.post("/companies/100/full-resync", data={"csrf_token": signed_in.csrf, "step": "confirm"})
    assert unticked.status_code == 400 and "Tick the box to confirm" in text(unticked)
    assert runs(app) == []
    done = signed_in.post("/companies/100/full-resync",
                          data={"csrf_token": signed_in.csrf, "step": "confirm", "confirm": "yes"})
    assert done.status_code == 302
    assert runs(app) == [(RunKind.FULL_RESYNC, None, RunStatus.QUEUED, "operator")]


def test_full_resync_with_htmx_sends_its_confirmation(signed_in, app, acme):
    page = text(signed_in.get("/companies/100"))
    assert 'data-confirm="Re-download every record of Acme from QuickBooks?" hx-vals=\'{"confirm": "yes"}\'' in page
    response = signed_in.post("/companies/100/full-resync", data={"confirm": "yes"},
                              headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert "Full resync queued." in text(response)
    assert runs(app) == [(RunKind.FULL_RESYNC, None, RunStatus.QUEUED, "operator")]


def test_retry_a_failed_object(signed_in, app):
    with app.app_context():
        make.company("100", "Acme")
        make.sync_state("100", "customer", SyncStatus.SUCCEEDED, is_initial_backfill_completed=True)
        make.sync_state("100", "invoice", SyncStatus.FAILED, error_message="503 three times", attempts=4,
                        is_initial_backfill_completed=True)
    response = signed_in.post("/companies/100/retry", data={"object_type": "invoice"},
                              headers={**HX, "X-CSRFToken": signed_in.csrf})
    html = text(response)
    assert "Retry of invoices queued." in html
    assert "Retry invoices" not in html  # the button goes while the retry is queued
    assert "503 three times" in html     # the last error stays in view
    assert runs(app) == [(RunKind.INCREMENTAL, "invoice", RunStatus.QUEUED, "retry")]
    again = signed_in.post("/companies/100/retry", data={"object_type": "invoice"},
                           headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert "already queued" in text(again) and len(runs(app)) == 1


def test_retry_of_an_unknown_object_is_refused_clearly(signed_in, app, acme):
    plain = signed_in.post("/companies/100/retry", data={"csrf_token": signed_in.csrf, "object_type": "vendors"})
    assert plain.status_code == 400 and "Cannot retry &#39;vendors&#39;" in text(plain)
    htmx = signed_in.post("/companies/100/retry", data={"object_type": "vendors"},
                          headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert htmx.status_code == 400
    assert htmx.headers["HX-Retarget"] == "#flashes" and htmx.headers["HX-Reswap"] == "innerHTML"
    assert 'class="flash flash-error" role="alert"' in text(htmx) and "Cannot retry" in text(htmx)
    assert runs(app) == []


def test_resync_of_a_company_that_needs_reconnecting_is_refused(signed_in, app):
    with app.app_context():
        make.company("100", "Acme", ConnectionState.RECONNECT_REQUIRED)
    response = signed_in.post("/companies/100/resync", data={"csrf_token": signed_in.csrf})
    assert response.status_code == 409 and "reconnect it first" in text(response)
    assert runs(app) == []


def test_actions_on_an_unknown_company_are_404(signed_in, app):
    response = signed_in.post("/companies/nope/resync", data={"csrf_token": signed_in.csrf})
    assert response.status_code == 404 and runs(app) == []


def test_disconnect_needs_confirmation_then_disconnects(signed_in, app, acme):
    ask = signed_in.post("/companies/100/disconnect", data={"csrf_token": signed_in.csrf})
    assert ask.status_code == 200 and "Disconnect Acme?" in text(ask)
    from dashboard.extensions import db

    with app.app_context():
        assert db.session.scalar(select(Company.connection_state)) is ConnectionState.CONNECTED
        db.session.remove()
    done = signed_in.post("/companies/100/disconnect", data={"confirm": "yes"},
                          headers={**HX, "X-CSRFToken": signed_in.csrf})
    html = text(done)
    assert "Acme is disconnected. Its synced data is kept." in html
    assert "This company is disconnected" in html and "Resync now" not in html
    with app.app_context():
        assert db.session.scalar(select(Company.connection_state)) is ConnectionState.DISCONNECTED
        assert db.session.scalar(select(func.count()).select_from(Company)) == 1
        db.session.remove()
