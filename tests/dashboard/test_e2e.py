"""End to end in real headless Chromium: connect a simulated company, watch it sync, act on it.

Everything is real: Debian's Chromium driven by Playwright, our app served over HTTP on
a loopback port, the Intuit simulator on another, a Huey consumer with worker threads,
PostgreSQL and Redis (this test runs in the services run).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000


@pytest.fixture
def simulator():
    from sandbox.testing import SandboxServer

    with SandboxServer(companies=1, customers=40, invoices=90, seed=11) as server:
        yield server


@pytest.fixture
def live_stack(app, simulator):
    """Serve a dashboard configured for the simulator; yield its app and base URL.

    The port must be known before the app is built (it is in QBO_REDIRECT_URI), so the
    server starts with a placeholder that forwards to the app once it exists.
    """
    from dashboard import create_app
    from tests.support.live import served_over_http

    holder: dict = {}
    with served_over_http(lambda environ, start: holder["app"](environ, start)) as base:
        redirect_uri = f"{base}/v1/oauth/callback/qbo"
        simulator.sim.configure(redirect_uris=[redirect_uri])
        environ = {**os.environ, **simulator.urls(), "QBO_CLIENT_ID": "sandbox-client-id",
                   "QBO_CLIENT_SECRET": "sandbox-client-secret", "QBO_REDIRECT_URI": redirect_uri}
        holder["app"] = create_app({}, environ=environ)
        yield {"app": holder["app"], "base": base}


@pytest.fixture
def live_app(live_stack):
    return live_stack["base"]


@pytest.fixture
def consumer(live_stack):
    """Run a real Huey consumer (2 worker threads) for the test, in the served app's context
    (its tasks use the simulator's URLs)."""
    from tests.support.live import running_consumer

    with running_consumer(live_stack["app"]) as worker:
        yield worker


@pytest.fixture
def page(live_app, consumer):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        tab = context.new_page()
        tab.problems = []  # console errors and CSP violations
        tab.on("console", lambda m: m.type == "error" and tab.problems.append(m.text))
        tab.on("pageerror", lambda e: tab.problems.append(str(e)))
        try:
            yield tab
        finally:
            context.close()
            browser.close()


def _lose_a_customer(app, realm: str) -> None:
    """Lose one stored customer behind the sync's back (as a lost write would): our count is one short.

    Removed, not marked deleted: a row marked deleted stays deleted (Intuit never reuses an Id).
    """
    from sqlalchemy import delete, func, select

    from dashboard.extensions import db
    from dashboard.models import Customer

    with app.app_context():
        first = db.session.scalar(select(func.min(Customer.id)).where(Customer.company_source_id == realm))
        db.session.execute(delete(Customer).where(Customer.id == first))
        db.session.commit()
        db.session.remove()


def _parity_rows(app, realm: str) -> set[tuple]:
    """The latest parity check of each type: (type, QuickBooks' count, ours)."""
    from sqlalchemy import select

    from dashboard.extensions import db
    from dashboard.models import ParityCheck

    with app.app_context():
        rows = db.session.execute(select(ParityCheck.object_type, ParityCheck.source_count, ParityCheck.local_count)
                                  .where(ParityCheck.company_source_id == realm)
                                  .order_by(ParityCheck.checked_at, ParityCheck.id)).all()
        db.session.remove()
    return set({r.object_type: tuple(r) for r in rows}.values())


def test_operator_connects_watches_backfill_resyncs_sees_a_failure_and_retries(page, live_app, live_stack, simulator,
                                                                              operator):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    realm = simulator.sim.realms()[0]

    # Sign in; the empty state offers Connect QuickBooks.
    page.goto(f"{live_app}/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("Username").fill(operator["username"])
    page.get_by_label("Password").fill(operator["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("No companies yet")).to_be_visible()
    assert page.evaluate("htmx.version") == "2.0.11"

    # Connect through the simulator's consent page.
    page.get_by_role("button", name="Connect QuickBooks").first.click()  # an <a role="button">
    expect(page).to_have_url(re.compile(re.escape(simulator.url) + r"/connect/oauth2"))
    page.locator(f'input[name="realmId"][value="{realm}"]').check()
    page.get_by_role("button", name="Connect").click()
    expect(page).to_have_url(re.compile(re.escape(live_app)))

    # Watch the backfill finish on the company page, refreshed by htmx (no reload).
    page.goto(f"{live_app}/companies/{realm}")
    page.evaluate("window.__notReloaded = true")
    status = page.locator("#company-status")
    expect(status.locator("tr.object-synced")).to_have_count(2)
    expect(status).not_to_have_attribute("hx-trigger", "every 2s")  # polling stopped by itself
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#company-runs")).to_contain_text("Backfill")
    expect(page.locator("#company-runs")).to_contain_text("Succeeded")
    customers = len(simulator.sim.records(realm, "Customer", include_inactive=True))
    expect(status.locator("#object-customer td.num")).to_have_text(f"{customers:,}")
    page.screenshot(path=str(ARTIFACTS / "company-synced.png"), full_page=True)

    # Resync: the flash comes back out of band, the run shows up and succeeds.
    status.get_by_role("button", name="Resync now").click()
    expect(page.locator("#flashes")).to_contain_text("Resync queued.")
    expect(page.locator("#company-runs tbody tr").first).to_contain_text("Incremental")
    expect(page.locator("#company-runs tbody tr").first).to_contain_text("Succeeded")

    # A failure in QuickBooks shows as FAILED with its message...
    simulator.sim.inject_fault("500", realm=realm, count=1000)
    status.get_by_role("button", name="Resync now").click()
    failed = status.locator("tr.object-failed")
    expect(failed.first).to_be_visible(timeout=90_000)
    expect(failed.first.locator(".error-box")).to_contain_text("Failed")
    page.screenshot(path=str(ARTIFACTS / "company-failed.png"), full_page=True)

    # ...and Retry, once QuickBooks recovers, brings it back.
    simulator.sim.clear_faults()
    failed.first.get_by_role("button", name=re.compile(r"^Retry ")).click()
    expect(page.locator("#flashes")).to_contain_text("queued")
    expect(status.locator("tr.object-failed")).to_have_count(0, timeout=90_000)
    expect(status.locator("tr.object-synced")).to_have_count(2)

    # Switch invoices off: the row says Off, its records stay; no sync reads them.
    invoices = status.locator("#object-invoice")
    stored = invoices.locator("td.num").inner_text()
    invoices.get_by_role("switch", name="Sync invoices").click()
    expect(page.locator("#flashes")).to_contain_text("Invoices switched off")
    expect(invoices).to_have_class(re.compile(r"\bobject-off\b"))
    expect(invoices.get_by_role("switch", name="Sync invoices")).to_have_attribute("aria-checked", "false")
    expect(invoices.locator("td.num")).to_have_text(stored)
    # ...and on again: a sync of invoices alone is queued and brings them up to date.
    invoices.get_by_role("switch", name="Sync invoices").click()
    expect(page.locator("#flashes")).to_contain_text("a sync of invoices is queued")
    expect(invoices.get_by_role("switch", name="Sync invoices")).to_have_attribute("aria-checked", "true")
    expect(page.locator("#company-runs tbody tr").first).to_contain_text("Incremental · invoices")
    expect(page.locator("#company-runs tbody tr").first).to_contain_text("Succeeded", timeout=90_000)
    expect(invoices).to_have_class(re.compile(r"\bobject-synced\b"))
    page.screenshot(path=str(ARTIFACTS / "company-switched.png"), full_page=True)

    # Parity: one customer goes missing here (as if a write had been lost). Check parity
    # now: the sync the button queues runs the check, and the drift shows with its fix.
    _lose_a_customer(live_stack["app"], realm)
    status.get_by_role("button", name="Check parity now").click()
    expect(page.locator("#flashes")).to_contain_text("Parity check queued: it runs after the next sync of this company.")
    latest = page.locator("#company-runs tbody tr").first
    expect(latest).to_contain_text("parity, queued")
    expect(latest).to_contain_text("Succeeded", timeout=90_000)
    invoices_there = len(simulator.sim.records(realm, "Invoice"))
    customer_parity = status.locator("#object-customer td.parity")
    expect(customer_parity).to_contain_text(f"Drift: QuickBooks {customers:,} · here {customers - 1:,}")
    expect(customer_parity.get_by_role("link", name="Fix: resync customers…")).to_be_visible()
    expect(status.locator("#object-invoice td.parity")).to_contain_text("In parity")
    assert _parity_rows(live_stack["app"], realm) == {("customer", customers, customers - 1),
                                                      ("invoice", invoices_there, invoices_there)}
    page.screenshot(path=str(ARTIFACTS / "company-drift.png"), full_page=True)
    # The row's Resync customers (one click and the confirm dialog) re-downloads them, and
    # the full resync checks again: in parity.
    page.once("dialog", lambda dialog: dialog.accept())
    status.locator("#object-customer").get_by_role("button", name="Resync customers…").click()
    expect(page.locator("#flashes")).to_contain_text("Full resync of customers queued.")
    expect(latest).to_contain_text("Full resync · customers")
    expect(latest).to_contain_text("Succeeded", timeout=90_000)
    for object_type in ("customer", "invoice"):
        expect(status.locator(f"#object-{object_type} td.parity")).to_contain_text("In parity")
    expect(customer_parity.get_by_role("link")).to_have_count(0)
    assert ("customer", customers, customers) in _parity_rows(live_stack["app"], realm)

    # The companies page shows the healthy company; the search form works with htmx.
    page.get_by_role("link", name="Companies").first.click()
    expect(page.locator("#companies-list")).to_contain_text(realm)
    page.get_by_label("Search by name or realm").fill("no-such-company")
    expect(page.locator("#companies-list")).to_contain_text("No companies match")
    expect(page).to_have_url(re.compile(r"q=no-such-company"))  # hx-push-url
    page.get_by_label("Search by name or realm").fill(realm)
    expect(page.locator("#companies-list")).to_contain_text("2 synced")
    page.screenshot(path=str(ARTIFACTS / "companies.png"), full_page=True)

    # htmx worked under a CSP without 'unsafe-inline': nothing was refused on the way.
    csp = page.request.get(f"{live_app}/").headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    assert not [p for p in page.problems if "Content Security Policy" in p], page.problems
