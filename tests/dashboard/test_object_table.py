"""The company page's table of every registered object type, its switches and per-type resync,
and the companies list's count of types by state."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dashboard.models import (
    ConnectionState, Customer, RunKind, RunStatus, SyncRun, SyncState, SyncStatus, utcnow,
)
from dashboard.services.overview_models import direct_dependencies, group_heading
from dashboard.sync import objects as catalogue, specs
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


def switches(app, realm: str) -> dict[str, bool]:
    from dashboard.extensions import db
    from dashboard.services import type_switches

    with app.app_context():
        found = type_switches.switches(realm)
        db.session.remove()
        return found


def row(html: str, object_type: str) -> str:
    found = re.search(rf'<tr id="object-{object_type}" class="object object-(\w+)">(.*?)</tr>', html, re.S)
    assert found, f"no row for {object_type}"
    return found.group(0)


def words(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def state_cell(html: str, object_type: str) -> str:
    """The words of a row's State cell (its first <td>)."""
    return words(re.search(r"</th>\s*<td>(.*?)</td>", row(html, object_type), re.S).group(1))


def parity_cell(html: str, object_type: str) -> str:
    return words(re.search(r'<td class="parity[^"]*"[^>]*>(.*?)</td>', row(html, object_type), re.S).group(1))


# --- the table -----------------------------------------------------------------------------------

def test_every_registered_type_is_a_row_of_its_groups_table(signed_in, app):
    with app.app_context():
        make.company("100", "Acme")
        make.healthy("100")
    html = text(signed_in.get("/companies/100"))
    sections = dict(re.findall(r'<section class="object-group" aria-labelledby="group-(\w+)">(.*?)</section>',
                               html, re.S))
    assert list(sections) == list(catalogue.GROUPS)  # the declared order: reference lists first
    for spec in specs.ordered():
        section = sections[spec.group]
        assert f'<h2 id="group-{spec.group}">{group_heading(spec.group)}</h2>' in section
        assert f'<tr id="object-{spec.name}" ' in section
        assert f'<th scope="row">{spec.label}</th>' in section
    assert html.count('<tr id="object-') == len(specs.SPECS) == 28
    # Each table has its heading in its caption and header cells for its columns.
    assert html.count("<caption>") == len(catalogue.GROUPS)
    assert html.count('<th scope="col">Parity with QuickBooks</th>') == len(catalogue.GROUPS)


def test_each_state_in_words_during_a_run(signed_in, app):
    """One company mid-run: done in this run, running, queued, waiting, failed in this run, off."""
    now = utcnow()
    started = now - timedelta(minutes=1)
    assert direct_dependencies(specs.SPECS["invoice"]) == ("customer", "item")
    with app.app_context():
        make.company("100", "Acme")
        make.run("100", RunKind.INCREMENTAL, RunStatus.RUNNING, started_at=started)
        # account ran earlier in this run: its outcome shows, not "Queued".
        make.sync_state("100", "account", SyncStatus.SUCCEEDED, enabled=True, is_initial_backfill_completed=True,
                        last_attempt_time=now, last_successful_sync_time=now, records_synced=12)
        make.sync_state("100", "customer", SyncStatus.IN_PROGRESS, enabled=True, records_total=200,
                        records_synced=50, initial_attempt_time=started, last_attempt_time=started)
        make.sync_state("100", "item", SyncStatus.SUCCEEDED, enabled=True, is_initial_backfill_completed=True,
                        last_attempt_time=started - timedelta(hours=1))  # not reached yet in this run
        make.sync_state("100", "vendor", SyncStatus.FAILED, enabled=True, error_message="Intuit said 400: bad query",
                        error_kind="request_rejected", attempts=1, last_attempt_time=now, last_failed_at=now)
        make.sync_state("100", "bill", SyncStatus.SUCCEEDED, enabled=False, records_synced=5)
    html = text(signed_in.get("/companies/100"))
    assert state_cell(html, "account") == "✓ Synced"
    assert '<td class="num">12</td>' in row(html, "account")
    assert state_cell(html, "customer").startswith("↻ Running 25% Backfill: 50 of 200 records (25%)")
    assert state_cell(html, "item") == "… Queued"
    assert state_cell(html, "invoice") == "… Waiting for customers, items"
    assert state_cell(html, "vendor").startswith("✕ Failed Failed (request rejected): Intuit said 400: bad query")
    assert state_cell(html, "bill") == "○ Off Switched off; its records are kept."
    assert state_cell(html, "payment") == "○ Off"  # no switch written down: SYNC_OBJECT_TYPES says off
    # Off rows offer only the switch; a type that failed in a run still running is retried
    # once that run is over (a retry now would only be its follow-up).
    assert "Resync bills" not in row(html, "bill") and 'aria-checked="false"' in row(html, "bill")
    assert "Retry vendors" not in row(html, "vendor")
    assert 'hx-trigger="every 2s"' in html


def test_not_synced_yet_and_each_parity_in_words(signed_in, app):
    now = utcnow()
    checked = now - timedelta(minutes=7)
    with app.app_context():
        make.company("100", "Acme")
        make.healthy("100", types=("invoice", "account", "item"))
        from dashboard.extensions import db
        from sqlalchemy import update
        parity = {"invoice": (120, 120, 0), "account": (120, 118, 1), "item": (30, 27, 2)}
        for object_type, (source, local, drifts) in parity.items():
            db.session.execute(update(SyncState).where(SyncState.object_type == object_type).values(
                enabled=True, parity_checked_at=checked, parity_source_count=source, parity_local_count=local,
                parity_drifts=drifts))
        db.session.commit()
    html = text(signed_in.get("/companies/100"))
    assert state_cell(html, "customer") == "– Not synced yet"
    assert parity_cell(html, "customer") == "Not checked yet"
    assert parity_cell(html, "invoice") == "In parity checked 7 min ago"
    # A drift points to its fix: the row's "Resync <type>" (described by the cell), and a
    # link to the same full resync through its confirmation page.
    assert parity_cell(html, "account") == ("Drift: QuickBooks 120 · here 118 checking again, last 7 min ago "
                                            "Fix: resync accounts…")
    assert parity_cell(html, "item") == ("Parity failure: QuickBooks 30 · here 27 apart in 2 checks in a row, "
                                         "last 7 min ago Fix: resync items…")
    for object_type in ("account", "item"):
        assert (f'<a class="parity-fix block" href="/companies/100/object-types/{object_type}/full-resync">'
                in row(html, object_type))
        assert f'aria-describedby="parity-{object_type}">Resync {object_type}s…</button>' in row(html, object_type)
    assert "parity-fix" not in row(html, "invoice") and "aria-describedby" not in row(html, "invoice")
    assert 'class="parity parity-failed"' in row(html, "item") and "text-failed" in row(html, "item")
    assert "text-failed" not in row(html, "account")
    # The list counts the parity failure next to the states.
    listing = text(signed_in.get("/"))
    assert 'title="Out of parity: Items"' in listing and "1 out of parity" in listing


def test_many_types_are_counted_in_the_live_summary(signed_in, app):
    with app.app_context():
        make.company("100", "Acme")
        make.healthy("100", types=tuple(specs.SPECS))
        from dashboard.extensions import db
        from sqlalchemy import update
        db.session.execute(update(SyncState).where(SyncState.object_type == "bill").values(
            status=SyncStatus.FAILED, error_message="boom"))
        db.session.execute(update(SyncState).where(SyncState.object_type == "budget").values(enabled=False))
        db.session.commit()
    html = text(signed_in.get("/companies/100"))
    summary = re.search(r'<p id="company-status-summary" [^>]*>([^<]*)</p>', html).group(1)
    assert " ".join(summary.split()) == ("Sync status: Connected. Object types: 1 failed · 26 synced · 1 off. "
                                         "Bills: Failed.")
    listing = text(signed_in.get("/"))
    badges = re.search(r'<ul class="badges">(.*?)</ul>', listing, re.S).group(1)
    assert words(badges) == "✕ 1 failed ✓ 26 synced ○ 1 off"
    assert 'title="Failed: Bills"' in badges and "Bills: boom" in listing
    assert 'class="attention"' in listing


def test_a_failure_of_a_switched_off_type_needs_no_attention(signed_in, app):
    with app.app_context():
        make.company("100", "Acme")
        make.healthy("100")
        make.sync_state("100", "bill", SyncStatus.FAILED, enabled=False, error_message="old failure")
    listing = text(signed_in.get("/"))
    assert 'class="attention"' not in listing and "No failed syncs, no parity failures." in listing
    assert "old failure" not in listing
    assert 'href="/companies/100"' not in text(signed_in.get("/?state=failing"))
    page = text(signed_in.get("/companies/100"))
    assert state_cell(page, "bill") == "○ Off" and "Retry bills" not in page


# --- the switch ----------------------------------------------------------------------------------

@pytest.fixture
def acme(app):
    with app.app_context():
        make.company("100", "Acme")
        make.healthy("100", records={"customer": 3})
        make.records("100", customers=3)
    return "100"


def _customers(app) -> int:
    from dashboard.extensions import db

    with app.app_context():
        found = db.session.scalar(select(func.count()).select_from(Customer))
        db.session.remove()
        return found


def test_switching_a_type_off_leaves_it_out_and_keeps_its_rows(signed_in, app, acme):
    response = signed_in.post("/companies/100/object-types/customer", data={"enabled": "off"},
                              headers={**HX, "X-CSRFToken": signed_in.csrf})
    html = text(response)
    assert response.status_code == 200 and html.lstrip().startswith('<section id="company-status"')
    assert "Customers switched off: no sync reads them any more. The 3 customers stored are kept." in html
    assert state_cell(html, "customer") == "○ Off Switched off; its records are kept."
    assert switches(app, "100")["customer"] is False
    assert _customers(app) == 3 and runs(app) == []
    # The next sync of the company leaves it out.
    from dashboard.services import type_switches
    with app.app_context():
        assert type_switches.enabled_types("100") == ["invoice"]


def test_switching_a_type_on_queues_a_sync_of_it(signed_in, app, acme):
    assert switches(app, "100")["bill"] is False
    response = signed_in.post("/companies/100/object-types/bill", data={"csrf_token": signed_in.csrf,
                                                                        "enabled": "on"})
    assert response.status_code == 302 and response.headers["Location"] == "/companies/100"
    assert switches(app, "100")["bill"] is True
    # Never backfilled: the queued run is a backfill of that type alone.
    assert runs(app) == [(RunKind.BACKFILL, "bill", RunStatus.QUEUED, "operator")]
    html = text(signed_in.get("/companies/100"))
    assert "Bills switched on: a sync of bills is queued to bring them up to date." in html
    assert state_cell(html, "bill") == "… Queued" and 'aria-checked="true"' in row(html, "bill")
    # Pressed again (a stale page): nothing changes.
    again = signed_in.post("/companies/100/object-types/bill", data={"enabled": "on"},
                           headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert "Syncing bills is already on." in text(again) and len(runs(app)) == 1


def test_switching_on_for_a_company_not_connected_queues_nothing(signed_in, app):
    with app.app_context():
        make.company("100", "Acme", ConnectionState.DISCONNECTED)
    response = signed_in.post("/companies/100/object-types/bill", data={"enabled": "on"},
                              headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert "Bills switched on: they sync once the company is connected again." in text(response)
    assert switches(app, "100")["bill"] is True and runs(app) == []


@pytest.mark.parametrize("path, data, message", [
    ("/companies/100/object-types/vendors", {"enabled": "on"}, "Unknown object type &#39;vendors&#39;"),
    ("/companies/100/object-types/customer", {"enabled": "yes"}, "send enabled=on or enabled=off"),
    ("/companies/100/object-types/customer", {}, "send enabled=on or enabled=off"),
])
def test_a_bad_type_or_value_is_refused_and_changes_nothing(signed_in, app, acme, path, data, message):
    before = switches(app, "100")
    plain = signed_in.post(path, data={**data, "csrf_token": signed_in.csrf})
    assert plain.status_code == 400 and message in text(plain)
    htmx = signed_in.post(path, data=data, headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert htmx.status_code == 400 and htmx.headers["HX-Retarget"] == "#flashes"
    assert 'class="flash flash-error" role="alert"' in text(htmx) and message in text(htmx)
    assert switches(app, "100") == before and runs(app) == []


def test_switch_and_resync_need_the_csrf_token_and_a_known_company(signed_in, app, acme):
    for path in ("/companies/100/object-types/customer", "/companies/100/object-types/customer/full-resync"):
        response = signed_in.post(path, data={"enabled": "off", "confirm": "yes"})
        assert response.status_code == 400 and "Form expired" in text(response)
    assert signed_in.post("/companies/nope/object-types/customer",
                          data={"enabled": "off", "csrf_token": signed_in.csrf}).status_code == 404
    assert switches(app, "100")["customer"] is True and runs(app) == []


# --- full resync of one type --------------------------------------------------------------------

def test_full_resync_of_one_type_asks_first_then_queues_it(signed_in, app, acme):
    page = text(signed_in.get("/companies/100"))
    assert 'data-confirm="Re-download all invoices of Acme from QuickBooks?"' in page
    ask = signed_in.get("/companies/100/object-types/invoice/full-resync")
    assert ask.status_code == 200 and "Full resync of invoices of Acme?" in text(ask)
    assert 'action="/companies/100/object-types/invoice/full-resync"' in text(ask)
    unticked = signed_in.post("/companies/100/object-types/invoice/full-resync",
                              data={"csrf_token": signed_in.csrf, "step": "confirm"})
    assert unticked.status_code == 400 and "Tick the box" in text(unticked) and runs(app) == []
    done = signed_in.post("/companies/100/object-types/invoice/full-resync",
                          data={"csrf_token": signed_in.csrf, "step": "confirm", "confirm": "yes"})
    assert done.status_code == 302
    assert runs(app) == [(RunKind.FULL_RESYNC, "invoice", RunStatus.QUEUED, "operator")]
    assert "Full resync of invoices queued." in text(signed_in.get("/companies/100"))


def test_full_resync_of_one_type_with_htmx(signed_in, app, acme):
    response = signed_in.post("/companies/100/object-types/customer/full-resync", data={"confirm": "yes"},
                              headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert response.status_code == 200 and "Full resync of customers queued." in text(response)
    assert state_cell(text(response), "customer") == "… Queued"
    assert runs(app) == [(RunKind.FULL_RESYNC, "customer", RunStatus.QUEUED, "operator")]


@pytest.mark.parametrize("object_type, code, message", [
    ("vendors", 400, "Unknown object type"), ("bill", 409, "switch them on first")])
def test_full_resync_of_an_unknown_or_switched_off_type_is_refused(signed_in, app, acme, object_type, code,
                                                                   message):
    response = signed_in.post(f"/companies/100/object-types/{object_type}/full-resync",
                              data={"csrf_token": signed_in.csrf, "confirm": "yes", "step": "confirm"})
    assert response.status_code == code and message in text(response)
    assert runs(app) == []
