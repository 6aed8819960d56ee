"""A change in QuickBooks reaches our database within seconds through a webhook, with no poll.

Real parts throughout: the simulator posts a signed notification over HTTP to our app
served on a loopback port; a real Huey consumer (scheduler off, so nothing polls) drains
the inbox and runs the incremental sync against the simulator.
"""
from __future__ import annotations

import time
from typing import Iterator

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Invoice, SyncRun, SyncState
from sandbox.testing import SandboxServer
from tests.conftest import ENV
from tests.support.live import pointed_at_simulator, running_consumer, served_over_http
from tests.sync.conftest import assert_equal_to_source, connect

VERIFIER = ENV["QBO_WEBHOOK_VERIFIER_TOKEN"]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(companies=1, customers=20, invoices=30, seed=21, webhook_batch_delay=0.05) as server:
        yield server


@pytest.fixture
def live_app(app, sandbox) -> Iterator[str]:
    """Our app, pointed at the simulator and served where the simulator can post to it."""
    with served_over_http(app) as url, pointed_at_simulator(app, sandbox.url), app.app_context():
        yield url


@pytest.fixture
def consumer(app, live_app):
    with running_consumer(app) as worker:
        yield worker


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()  # see other transactions' commits
        db.session.expire_all()
        if (result := condition()):
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.parametrize("fmt", ["cloudevents", "legacy"])
def test_a_change_in_quickbooks_reaches_the_database_within_seconds(live_app, consumer, sandbox, fmt):
    from dashboard.services.sync_jobs import request_initial_sync

    sim = sandbox.sim
    realm = sim.realms()[0]
    connect(sim, realm)
    request_initial_sync(realm)
    _wait_for(lambda: len(db.session.scalars(select(SyncState).where(
        SyncState.company_source_id == realm, SyncState.is_initial_backfill_completed.is_(True))).all()) == 2,
        60, "the initial backfill")

    sim.configure_webhooks(f"{live_app}/v1/webhooks/qbo", VERIFIER, True, fmt)
    customer = sim.records(realm, "Customer")[0]
    created = sim.create_invoice(realm, customer["Id"])
    new_id = str(created["Id"])

    row = _wait_for(lambda: db.session.scalar(select(Invoice).where(
        Invoice.company_source_id == realm, Invoice.source_id == new_id)), 15, "the new invoice")
    assert row.customer_source_id == customer["Id"] and row.customer_id is not None
    triggers = {run.trigger for run in db.session.scalars(select(SyncRun).where(SyncRun.company_source_id == realm))}
    assert triggers == {"connect", "webhook"}  # nothing polled: the scheduler is off
    assert_equal_to_source(sim, realm)


@pytest.mark.parametrize("fmt", ["cloudevents", "legacy"])
def test_a_journal_entry_and_a_customer_merge_arrive_by_webhook(live_app, consumer, sandbox, fmt):
    from dashboard.models import Base, Customer
    from dashboard.services import type_switches
    from dashboard.services.sync_jobs import request_initial_sync

    sim = sandbox.sim
    realm = sim.realms()[0]
    connect(sim, realm)
    type_switches.set_enabled(realm, "journal_entry", True)
    request_initial_sync(realm)
    _wait_for(lambda: len(db.session.scalars(select(SyncState).where(
        SyncState.company_source_id == realm, SyncState.is_initial_backfill_completed.is_(True))).all()) == 3,
        60, "the initial backfill")

    sim.configure_webhooks(f"{live_app}/v1/webhooks/qbo", VERIFIER, True, fmt)
    # A two-word entity: CloudEvents spell it "qbo.journalentry.created.v1".
    entry = sim.create_record(realm, "JournalEntry", DocNumber="JE-1", TxnDate="2026-12-01", TotalAmt="10.00")
    journal = Base.metadata.tables["journal_entry"]
    doc = _wait_for(lambda: db.session.execute(select(journal.c.doc_number).where(
        journal.c.company_source_id == realm, journal.c.source_id == str(entry["Id"]))).scalar(), 15,
        "the new journal entry")
    assert doc == "JE-1"

    merged = str(sim.records(realm, "Invoice")[0]["CustomerRef"]["value"])  # a customer with invoices
    survivor = next(str(c["Id"]) for c in sim.records(realm, "Customer") if str(c["Id"]) != merged)
    moved = [str(i["Id"]) for i in sim.records(realm, "Invoice") if i["CustomerRef"]["value"] == merged]
    assert moved
    sim.merge_customers(realm, survivor, merged)
    gone = _wait_for(lambda: db.session.scalar(select(Customer).where(
        Customer.company_source_id == realm, Customer.source_id == merged, Customer.is_deleted.is_(True))), 15,
        "the merged-away customer to be marked")
    assert gone.deleted_at is not None
    # Its invoices now belong to the survivor, linked to its row.
    survivor_row = db.session.scalar(select(Customer).where(Customer.company_source_id == realm,
                                                            Customer.source_id == survivor))
    _wait_for(lambda: all(db.session.scalar(select(Invoice.customer_id).where(
        Invoice.company_source_id == realm, Invoice.source_id == i)) == survivor_row.id for i in moved), 15,
        "the moved invoices to link to the survivor")
