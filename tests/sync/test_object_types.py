"""A new object type is one spec, its model and its table: everything else reads the specs.

The throw-away type "widget" links to customers. It is registered for one test, with a
model on the application's metadata and its table created in the test database (what a
migration would do), and leaves nothing behind.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Base, Customer, RunStatus, SyncRun, SyncState, SyncStatus
from dashboard.services import type_switches
from dashboard.services.sync_foreground import run_now
from dashboard.sync.errors import BadData
from dashboard.sync.specs import BY_ENTITY, SPECS, dependents, ordered
from tests.support.widget import WIDGET, widget_type as widget_model

from .conftest import connect, generate


@pytest.fixture
def widget_type(qbo_app):
    with widget_model() as model:
        yield model


def _company_with_widgets(sim) -> tuple[str, list[dict[str, Any]]]:
    """Connect a simulated company with 4 customers and 5 widgets linking to them."""
    realm = generate(sim, seed=61, customers=4, invoices=3)
    sim.add_entity("Widget")
    customers = sim.records(realm, "Customer")
    for i in range(5):
        sim.create_record(realm, "Widget", Name=f"Widget {i}", CustomerRef={"value": customers[i % 4]["Id"]})
    connect(sim, realm)
    return realm, customers


def test_a_registered_type_is_listed_ordered_and_synced(widget_type, sandbox_server, runner):
    # Listed and ordered: after the customers it links to (independent types by name).
    names = list(SPECS)
    assert names.index("customer") < names.index("widget") and BY_ENTITY["Widget"] is WIDGET
    assert [s.name for s in ordered(["widget", "customer"])] == ["customer", "widget"]
    assert {"invoice", "widget"} <= {s.name for s in dependents("customer")}
    # The CLI offers it (its choices are read when the command runs).
    help_text = runner.invoke(args=["sync", "now", "--help"]).output
    assert re.search(r"\|widget\b", help_text), help_text
    refused = runner.invoke(args=["sync", "now", "--object", "gadget"])
    assert refused.exit_code == 2 and "'widget'" in refused.output

    # Synced end to end against the simulator, with its links to customers.
    sim = sandbox_server.sim
    realm, customers = _company_with_widgets(sim)
    result = runner.invoke(args=["sync", "now", "--company", realm])
    assert result.exit_code == 0, result.output
    assert f"{realm} widget: 5 / 5 records" in result.output and "widget: backfill, 5 written" in result.output
    db.session.expire_all()
    widgets = db.session.execute(select(widget_type).order_by(widget_type.source_id)).scalars().all()
    assert [w.name for w in widgets] == [f"Widget {i}" for i in range(5)]
    customer_ids = dict(db.session.execute(select(Customer.source_id, Customer.id)).all())
    assert [w.customer_id for w in widgets] == [customer_ids[w.customer_source_id] for w in widgets]
    states = {s.object_type: s for s in db.session.execute(select(SyncState)).scalars()}
    assert states["widget"].status == SyncStatus.SUCCEEDED and states["widget"].records_synced == 5
    # Customers were read before the widgets that link to them.
    assert result.output.index(f"{realm} customer: 4 / 4") < result.output.index(f"{realm} widget: 5 / 5")

    # Incremental: a new widget comes by CDC (the window's overlap re-reads the others).
    sim.create_record(realm, "Widget", Name="Widget 5", CustomerRef={"value": customers[0]["Id"]})
    again = runner.invoke(args=["sync", "now", "--company", realm, "--object", "widget"])
    assert again.exit_code == 0 and "widget: cdc" in again.output, again.output
    db.session.expire_all()
    assert db.session.execute(select(widget_type.name).where(widget_type.source_id == "6")).scalar_one() == "Widget 5"
    runs = db.session.execute(select(SyncRun).order_by(SyncRun.id)).scalars().all()
    assert [(r.object_type, r.status) for r in runs] == [(None, RunStatus.SUCCEEDED), ("widget", RunStatus.SUCCEEDED)]


def test_a_registered_type_is_shown_on_the_dashboard(widget_type, sandbox_server, db_session, signed_in):
    realm, _customers = _company_with_widgets(sandbox_server.sim)
    run_now(realm)
    # A row with its records stored on the company page, counted among the synced types on the companies page.
    company_page = signed_in.get(f"/companies/{realm}").get_data(as_text=True)
    assert re.search(r'<tr id="object-widget" class="object object-synced">\s*<th scope="row">Widgets</th>'
                     r'.*?<td class="num">5</td>', company_page, re.S), company_page
    companies_page = signed_in.get("/").get_data(as_text=True)
    assert re.search(r'<span class="badge badge-synced"><span aria-hidden="true">✓</span> 3 synced</span>',
                     companies_page), companies_page


def test_a_type_with_bad_data_fails_alone_and_the_independent_types_go_on(widget_type, sandbox_server):
    sim = sandbox_server.sim
    sim.add_entity("Purchase")  # a type synced after invoices that does not depend on them
    realm, customers = _company_with_widgets(sim)
    type_switches.set_enabled(realm, "purchase", True)
    run_now(realm)
    sim.create_record(realm, "Purchase", TotalAmt="12.50", PaymentType="Cash")
    invoice = sim.records(realm, "Invoice")[0]
    sim.update_invoice(realm, invoice["Id"], TxnDate="2026-02-30")  # no such day: our mapping refuses it
    sim.update_customer(realm, customers[1]["Id"], CompanyName="Renamed while invoices fail")
    sim.create_record(realm, "Widget", Name="Widget 5", CustomerRef={"value": customers[0]["Id"]})

    with pytest.raises(BadData, match=f"Invoice {invoice['Id']} with TxnDate '2026-02-30'"):
        run_now(realm)
    db.session.expire_all()
    states = {s.object_type: s for s in db.session.execute(select(SyncState)).scalars()}
    assert states["invoice"].status == SyncStatus.FAILED and "2026-02-30" in states["invoice"].error_message
    assert states["customer"].status == states["widget"].status == states["purchase"].status == SyncStatus.SUCCEEDED
    assert [str(a) for a in db.session.execute(select(Base.metadata.tables["purchase"].c.total_amt)).scalars()] == ["12.50"]
    assert db.session.execute(select(Customer.company_name).where(
        Customer.source_id == customers[1]["Id"])).scalar_one() == "Renamed while invoices fail"
    assert db.session.execute(select(widget_type.name).where(widget_type.source_id == "6")).scalar_one() == "Widget 5"


def test_a_type_whose_dependency_failed_waits_for_it(widget_type, sandbox_server):
    sim = sandbox_server.sim
    realm, customers = _company_with_widgets(sim)
    run_now(realm)
    sim.update_customer(realm, customers[0]["Id"], Balance="a lot")  # customers fail: invoices, widgets wait
    sim.create_record(realm, "Widget", Name="Widget 5", CustomerRef={"value": customers[0]["Id"]})
    with pytest.raises(BadData, match=f"Customer {customers[0]['Id']} with Balance"):
        run_now(realm)
    db.session.expire_all()
    states = {s.object_type: s.status for s in db.session.execute(select(SyncState)).scalars()}
    assert states["customer"] == SyncStatus.FAILED
    assert db.session.execute(select(widget_type).where(widget_type.source_id == "6")).scalar_one_or_none() is None
