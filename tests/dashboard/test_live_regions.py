"""Live regions announce changes of state, not every poll (screen readers read what changes)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from dashboard.models import RunKind, RunStatus, SyncRun, SyncState, SyncStatus, utcnow
from tests.dashboard import factories as make
from tests.support.live import served_over_http

HX = {"HX-Request": "true"}


def _running_backfill(realm: str, name: str, synced: int = 10) -> None:
    make.company(realm, name)
    make.sync_state(realm, "customer", SyncStatus.IN_PROGRESS, records_total=100, records_synced=synced,
                    initial_attempt_time=utcnow())
    make.run(realm, RunKind.BACKFILL, RunStatus.RUNNING, started_at=utcnow())


def test_company_page_announces_a_summary_of_states_not_the_polled_component(signed_in, app):
    with app.app_context():
        _running_backfill("100", "Alpha", synced=25)
    html = signed_in.get("/companies/100").get_data(as_text=True)
    # The component htmx replaces every 2 s is no live region, nor inside one.
    assert '<section id="company-status" aria-label="Sync status" aria-live="off"' in html
    before_component = html[:html.index('<section id="company-status"')]
    assert before_component.count('aria-live="polite"') == 2  # the flash area and the summary, both closed
    summary = re.search(r'<p id="company-status-summary" ([^>]*)>([^<]*)</p>', html)
    assert 'role="status" aria-live="polite" data-live-summary' in summary.group(1)
    # States only: the progress (25%) changes on every poll and is not announced.
    assert summary.group(2).strip() == "Sync status: Connected. Customers: Running. Invoices: Waiting for customers."
    poll = signed_in.get("/companies/100/status", headers={**HX, "HX-Target": "company-status"}).get_data(as_text=True)
    assert ('<p id="company-status-summary" hx-swap-oob="innerHTML">'
            "Sync status: Connected. Customers: Running. Invoices: Waiting for customers.") in re.sub(r"\s+", " ", poll)


def test_companies_page_live_region_holds_only_the_counts(signed_in, app):
    with app.app_context():
        _running_backfill("100", "Alpha")
    html = signed_in.get("/").get_data(as_text=True)
    live = re.findall(r'<div aria-live="polite" class="live-summary" data-live-summary>(.*?)</div>', html, re.S)
    assert len(live) == 1 and 'id="companies-summary"' in live[0] and "<table" not in live[0]
    assert 'id="companies-list" aria-label="Companies"' in html and html.count('aria-live="polite"') == 2


# --- in a real browser ---------------------------------------------------------------------------

@pytest.fixture
def served(app):
    """Serve the test app over HTTP on a loopback port; return its base URL."""
    with served_over_http(app) as url:
        yield url


@pytest.fixture
def browser_page(served, operator):
    """A Chromium tab signed in as the operator."""
    from playwright.sync_api import sync_playwright

    from tests.dashboard.test_e2e import CHROMIUM, LAUNCH_ARGS, TIMEOUT_MS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        tab = context.new_page()
        tab.goto(f"{served}/sign-in")
        tab.get_by_label("Username").fill(operator["username"])
        tab.get_by_label("Password").fill(operator["password"])
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url(f"{served}/")
        try:
            yield tab
        finally:
            context.close()
            browser.close()


COUNT_MUTATIONS = """selector => {
    window.__mutations = 0;
    new MutationObserver(records => { window.__mutations += records.length; })
        .observe(document.querySelector(selector), {childList: true, characterData: true, subtree: true});
}"""


def _progress(app, realm: str, synced: int) -> None:
    """Let a running backfill advance: the page changes, no state does."""
    from dashboard.extensions import db

    with app.app_context():
        db.session.execute(update(SyncState).where(SyncState.company_source_id == realm)
                           .values(records_synced=synced))
        db.session.commit()


@pytest.mark.e2e
@pytest.mark.services
@pytest.mark.slow
def test_polls_leave_live_regions_alone_until_a_state_changes(app, served, browser_page):
    from playwright.sync_api import expect

    from dashboard.extensions import db

    page = browser_page
    with app.app_context():
        _running_backfill("100", "Alpha")

    # Company page: two polls that only move the progress bar announce nothing.
    page.goto(f"{served}/companies/100")
    summary = page.locator("#company-status-summary")
    page.evaluate(COUNT_MUTATIONS, "#company-status-summary")
    for synced in (40, 70):
        _progress(app, "100", synced)
        expect(page.locator("#company-status")).to_contain_text(f"{synced} of 100 records")
    assert page.evaluate("window.__mutations") == 0
    expect(summary).to_have_text("Sync status: Connected. Customers: Running. Invoices: Waiting for customers.")
    # A change of state is announced.
    with app.app_context():
        db.session.execute(update(SyncState).values(status=SyncStatus.SUCCEEDED, is_initial_backfill_completed=True,
                                                    last_successful_sync_time=utcnow()))
        db.session.execute(update(SyncRun).values(status=RunStatus.SUCCEEDED, finished_at=utcnow()))
        db.session.commit()
    expect(summary).to_have_text("Sync status: Connected. Customers: Synced. Invoices: Not synced yet.")
    assert page.evaluate("window.__mutations") > 0

    # Companies page: the list refreshes while a backfill runs, the counts stay put.
    with app.app_context():
        _running_backfill("200", "Bravo")
    page.goto(f"{served}/")
    page.evaluate(COUNT_MUTATIONS, ".live-summary")
    for synced in (40, 70):
        _progress(app, "200", synced)
        expect(page.locator("#companies-list")).to_contain_text(f"Running {synced}%")
    assert page.evaluate("window.__mutations") == 0
    with app.app_context():
        make.company("300", "Charlie")
    expect(page.locator(".live-summary")).to_contain_text("3 companies")
    assert page.evaluate("window.__mutations") > 0
