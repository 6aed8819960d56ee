"""Fixtures for the sync tests: the Intuit simulator over HTTP and companies connected to it."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sandbox.testing import SandboxServer
from tests.support.live import pointed_at_simulator


@pytest.fixture
def sandbox_server():
    with SandboxServer(companies=1, customers=0, invoices=0, seed=5) as server:
        yield server


@pytest.fixture
def qbo_app(app, sandbox_server):
    """The app pointed at the simulator, inside an app context."""
    with pointed_at_simulator(app, sandbox_server.url), app.app_context():
        yield app


def connect(sim, realm: str) -> None:
    """Save a grant for ``realm`` obtained from the simulator, as the OAuth callback would."""
    from dashboard.integrations import TokenSet
    from dashboard.models import utcnow
    from dashboard.services.connections import save_grant

    tok = sim.issue_tokens(realm)
    now = utcnow()
    save_grant("qbo", realm, TokenSet(
        access_token=tok["access_token"], refresh_token=tok["refresh_token"],
        access_token_expires_at=now + timedelta(seconds=int(tok["expires_in"])),
        refresh_token_expires_at=now + timedelta(seconds=int(tok.get("x_refresh_token_expires_in", 8640000)))))


def generate(sim, **kwargs: Any) -> str:
    """Regenerate the simulator's data with one company; return its realm."""
    kwargs.setdefault("companies", 1)
    return sim.generate(**kwargs)[0]


def database_snapshot(realm: str) -> dict[str, Any]:
    from sqlalchemy import select

    from dashboard.extensions import db
    from dashboard.models import Customer, Invoice

    customers = db.session.execute(select(Customer).where(Customer.company_source_id == realm)).scalars().all()
    invoices = db.session.execute(select(Invoice).where(Invoice.company_source_id == realm)).scalars().all()
    by_id = {c.id: c.source_id for c in customers}
    return {
        "customers": {c.source_id: (c.sync_token, c.active) for c in customers},
        "invoices": {i.source_id: (i.sync_token, i.customer_source_id, by_id.get(i.customer_id))
                     for i in invoices if not i.is_deleted},
        "deleted_invoices": {i.source_id for i in invoices if i.is_deleted},
    }


def source_snapshot(sim, realm: str) -> dict[str, Any]:
    customers = sim.records(realm, "Customer", include_inactive=True)
    invoices = sim.records(realm, "Invoice")
    return {
        "customers": {c["Id"]: (int(c["SyncToken"]), c.get("Active", True)) for c in customers},
        "invoices": {i["Id"]: (int(i["SyncToken"]), i["CustomerRef"]["value"], i["CustomerRef"]["value"])
                     for i in invoices},
    }


def assert_equal_to_source(sim, realm: str) -> None:
    """The database holds exactly QuickBooks' records, versions and links."""
    from dashboard.extensions import db

    db.session.expire_all()
    ours, theirs = database_snapshot(realm), source_snapshot(sim, realm)
    assert ours["customers"] == theirs["customers"]
    assert ours["invoices"] == theirs["invoices"]
    # Invoices deleted in QuickBooks are marked, not kept live.
    known_deleted = set(str(i) for i in sim.deleted_ids(realm, "Invoice"))
    assert ours["deleted_invoices"] <= known_deleted
