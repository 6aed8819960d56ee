"""The company page's "Check parity now", and parity failures among the companies needing attention."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dashboard.models import Company, ConnectionState, RunKind, RunStatus, SyncRun, SyncState, SyncStatus, utcnow
from tests.dashboard import factories as make

HX = {"HX-Request": "true", "HX-Target": "company-status"}


def text(response) -> str:
    return response.get_data(as_text=True)


def runs(app) -> list[tuple]:
    from dashboard.extensions import db

    with app.app_context():
        found = db.session.execute(select(SyncRun.kind, SyncRun.object_type, SyncRun.status, SyncRun.trigger)
                                   .order_by(SyncRun.id)).all()
        db.session.remove()
        return [tuple(r) for r in found]


def requested_at(app, realm: str):
    from dashboard.extensions import db

    with app.app_context():
        found = db.session.scalar(select(Company.parity_requested_at).where(Company.source_id == realm))
        db.session.remove()
        return found


@pytest.fixture
def acme(app):
    with app.app_context():
        make.company("100", "Acme")
        make.healthy("100")
    return "100"


# --- Check parity now ----------------------------------------------------------------------------

def test_the_button_queues_a_sync_that_checks_parity(signed_in, app, acme):
    page = text(signed_in.get("/companies/100"))
    assert 'hx-post="/companies/100/parity-check"' in page and ">Check parity now</button>" in page
    before = utcnow()
    response = signed_in.post("/companies/100/parity-check", headers={**HX, "X-CSRFToken": signed_in.csrf})
    html = text(response)
    assert response.status_code == 200 and html.lstrip().startswith('<section id="company-status"')
    assert "Parity check queued: it runs after the next sync of this company." in html
    assert runs(app) == [(RunKind.INCREMENTAL, None, RunStatus.QUEUED, "parity")]
    assert requested_at(app, "100") >= before
    # The queued run shows on the page at once (every synced type is queued in it).
    assert 'id="object-customer" class="object object-queued"' in html


def test_without_javascript_it_redirects_and_flashes(signed_in, app, acme):
    response = signed_in.post("/companies/100/parity-check", data={"csrf_token": signed_in.csrf})
    assert response.status_code == 302 and response.headers["Location"] == "/companies/100"
    assert "Parity check queued: it runs after the next sync of this company." in text(signed_in.get("/companies/100"))
    assert runs(app) == [(RunKind.INCREMENTAL, None, RunStatus.QUEUED, "parity")]


def test_a_sync_already_queued_takes_the_request(signed_in, app, acme):
    with app.app_context():
        make.run("100", RunKind.INCREMENTAL, RunStatus.QUEUED, trigger="schedule")
    response = signed_in.post("/companies/100/parity-check", headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert ("Parity check requested: it runs when the sync already queued or running for this company ends."
            in text(response))
    assert runs(app) == [(RunKind.INCREMENTAL, None, RunStatus.QUEUED, "schedule")]  # nothing new queued
    assert requested_at(app, "100") is not None  # the queued run checks when it ends


@pytest.mark.parametrize("state", [ConnectionState.DISCONNECTED, ConnectionState.RECONNECT_REQUIRED])
def test_refused_for_a_company_not_connected(signed_in, app, state):
    with app.app_context():
        make.company("100", "Acme", state)
        make.healthy("100")
    page = text(signed_in.get("/companies/100"))
    assert "Check parity now" not in page  # nothing to offer
    message = f"Cannot check parity: Company 100 is {state.value}; reconnect it first."
    plain = signed_in.post("/companies/100/parity-check", data={"csrf_token": signed_in.csrf})
    assert plain.status_code == 409 and message in text(plain)
    htmx = signed_in.post("/companies/100/parity-check", headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert htmx.status_code == 409 and htmx.headers["HX-Retarget"] == "#flashes"
    assert 'class="flash flash-error" role="alert"' in text(htmx) and message in text(htmx)
    assert runs(app) == [] and requested_at(app, "100") is None


def test_it_needs_the_csrf_token_and_a_known_company(signed_in, app, acme):
    response = signed_in.post("/companies/100/parity-check")
    assert response.status_code == 400 and "Form expired" in text(response)
    assert signed_in.post("/companies/nope/parity-check", data={"csrf_token": signed_in.csrf}).status_code == 404
    assert signed_in.get("/companies/100/parity-check").status_code == 405
    assert runs(app) == [] and requested_at(app, "100") is None


# --- parity failures need attention -------------------------------------------------------------

def _set_parity(realm: str, object_type: str, source: int, local: int, drifts: int, **columns) -> None:
    from dashboard.extensions import db

    db.session.execute(update(SyncState).where(SyncState.company_source_id == realm,
                                               SyncState.object_type == object_type).values(
        parity_checked_at=utcnow() - timedelta(minutes=5), parity_source_count=source, parity_local_count=local,
        parity_drifts=drifts, **columns))
    db.session.commit()


def _listed(html: str) -> list[str]:
    """The realms of the list's rows in order, with "!" after those marked as needing attention."""
    return [realm + ("!" if attention else "") for attention, realm in
            re.findall(r'<tr( class="attention")?>\s*<th scope="row">\s*<a href="/companies/(\w+)"', html)]


def test_a_persistent_parity_failure_is_failing_like_a_failed_sync(signed_in, app):
    with app.app_context():
        for realm, name in (("1", "Alpha"), ("2", "Bravo"), ("3", "Charlie"), ("4", "Delta"), ("5", "Echo")):
            make.company(realm, name)
            make.healthy(realm)
        _set_parity("2", "customer", 120, 118, 1)                    # a drift once: not yet a failure
        _set_parity("3", "invoice", 30, 27, 2)                       # two in a row: a failure
        _set_parity("4", "invoice", 30, 27, 3, enabled=False)        # switched off since: nobody checks it
        _set_parity("5", "customer", 10, 10, 0)                      # in parity
    html = text(signed_in.get("/"))
    assert _listed(html) == ["3!", "1", "2", "4", "5"]
    assert "1 with a failed sync or a parity failure." in html
    failing = text(signed_in.get("/?state=failing"))
    assert _listed(failing) == ["3!"] and "Showing 1–1 of 1" in failing
    # A later check in parity ends the failure.
    with app.app_context():
        _set_parity("3", "invoice", 30, 30, 0)
    html = text(signed_in.get("/"))
    assert _listed(html) == ["1", "2", "3", "4", "5"] and "No failed syncs, no parity failures." in html
    assert "No companies match in this filter." in text(signed_in.get("/?state=failing"))


def test_a_company_with_both_kinds_of_failure_is_counted_once(signed_in, app):
    with app.app_context():
        make.company("1", "Alpha")
        make.healthy("1")
        _set_parity("1", "customer", 5, 4, 2)
        db_state = dict(status=SyncStatus.FAILED, error_message="boom")
        from dashboard.extensions import db
        db.session.execute(update(SyncState).where(SyncState.object_type == "invoice").values(**db_state))
        db.session.commit()
    html = text(signed_in.get("/"))
    assert "1 with a failed sync or a parity failure." in html and _listed(html) == ["1!"]
    assert "Showing 1–1 of 1" in text(signed_in.get("/?state=failing"))


def test_deeper_pages_and_a_search_among_failing_companies_see_parity_failures(app, signed_in):
    """Past the first page the failing realms are read once (a CTE), not probed per company."""
    with app.app_context():
        make.many_companies(120)   # every 7th has a failed invoice sync: 18 of 120
        from dashboard.extensions import db
        db.session.execute(update(SyncState).where(SyncState.company_source_id.in_(["9000001", "9000002"]),
                                                   SyncState.object_type == "customer")
                           .values(parity_checked_at=utcnow(), parity_source_count=2, parity_local_count=1,
                                   parity_drifts=2))
        db.session.commit()
    first = text(signed_in.get("/"))
    assert "20 with a failed sync or a parity failure." in first
    failing = {f"9{i:06d}" for i in range(0, 120, 7)} | {"9000001", "9000002"}
    # First come the 20 failing companies (a failed type whose run is queued again shows
    # "queued", so not every one is marked), then the others by name.
    assert {r.rstrip("!") for r in _listed(first)[:20]} == failing
    assert {"9000001!", "9000002!"} <= set(_listed(first))
    assert not any(r.rstrip("!") in failing for r in _listed(text(signed_in.get("/?page=2"))))
    found = text(signed_in.get("/?state=failing&q=Company+00001"))
    assert _listed(found) == ["9000001!"]
