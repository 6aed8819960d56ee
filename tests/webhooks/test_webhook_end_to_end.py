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
