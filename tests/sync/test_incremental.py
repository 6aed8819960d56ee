"""Incremental sync against the simulator: changes, deletes, long gaps, skew, CDC's cap, cost."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dashboard.extensions import db
from dashboard.models import Customer, Invoice, SyncState, SyncStatus, utcnow
from dashboard.services.sync_foreground import run_now
from dashboard.sync.errors import IntuitServerError

from .conftest import assert_equal_to_source, connect, generate


def _mutate(sim, realm, tag: str) -> None:
    """Create, update, inactivate and delete a few records, as users of QuickBooks would."""
    customers = sim.records(realm, "Customer")
    invoices = sim.records(realm, "Invoice")
    new = sim.create_customer(realm, DisplayName=f"Late Customer {tag}")
    sim.create_invoice(realm, new["Id"])  # references a customer our database may not hold yet
    sim.update_customer(realm, customers[0]["Id"], CompanyName=f"Renamed {tag}")
    sim.deactivate_customer(realm, customers[1]["Id"])
    sim.update_invoice(realm, invoices[0]["Id"], DocNumber=f"D-{tag}")
    sim.delete_invoice(realm, invoices[1]["Id"])


def _backfill(sim, realm):
    connect(sim, realm)
    run_now(realm)
    assert_equal_to_source(sim, realm)


def test_changes_during_backfill_are_caught_by_the_next_cycle(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=21, customers=1500, invoices=1500, tie_size=20)
    connect(sim, realm)
    mutated = []

    def mutate_mid_backfill(name, done, total):
        if name == "invoice" and not mutated:
            mutated.append(done)
            _mutate(sim, realm, "during")

    run_now(realm, progress=mutate_mid_backfill)
    assert mutated
    summary = run_now(realm)
    assert summary.paths == {"customer": "cdc", "invoice": "cdc"}
    assert_equal_to_source(sim, realm)
    deleted = db.session.execute(select(Invoice).where(Invoice.is_deleted.is_(True))).scalars().all()
    assert len(deleted) == 1 and deleted[0].deleted_at is not None
    inactive = db.session.execute(select(Customer).where(Customer.active.is_(False))).scalars().all()
    assert inactive, "an inactivated customer is kept, marked inactive"


def test_idle_cycle_costs_one_request(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=22, customers=40, invoices=60)
    _backfill(sim, realm)
    sim.reset_stats(realm)
    summary = run_now(realm)
    assert summary.paths == {"customer": "cdc", "invoice": "cdc"}
    assert sim.stats(realm)["requests"] == 1


def test_late_customer_is_linked_when_it_arrives(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=23, customers=30, invoices=30)
    _backfill(sim, realm)
    customer = sim.create_customer(realm, DisplayName="Arrives Late")
    invoice = sim.create_invoice(realm, customer["Id"])
    run_now(realm, object_type="invoice")  # invoices only: the customer is not here yet
    row = db.session.execute(select(Invoice).where(Invoice.source_id == invoice["Id"])).scalar_one()
    assert row.customer_source_id == customer["Id"] and row.customer_id is None
    run_now(realm)
    assert_equal_to_source(sim, realm)


def test_gap_over_30_days_is_reconciled(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=24, customers=200, invoices=400)
    _backfill(sim, realm)
    _mutate(sim, realm, "gap")
    # The service was away for 31 days: CDC cannot look back that far.
    db.session.execute(update(SyncState).values(last_successful_sync_time=utcnow() - timedelta(days=31)))
    db.session.commit()
    sim.reset_stats(realm)
    summary = run_now(realm)
    assert summary.paths == {"customer": "timestamp", "invoice": "reconcile"}
    assert not [e for e in sim.request_log(realm) if e["kind"] == "cdc"]
    assert_equal_to_source(sim, realm)
    assert len(db.session.execute(select(Invoice).where(Invoice.is_deleted.is_(True))).scalars().all()) == 1


def test_cdc_cap_falls_back_per_object_type(qbo_app, sandbox_server, monkeypatch):
    sim = sandbox_server.sim
    monkeypatch.setitem(qbo_app.config, "QBO_CDC_MAX_OBJECTS", 5)  # Intuit's 1,000, scaled down with the data
    realm = generate(sim, seed=25, customers=50, invoices=80)
    _backfill(sim, realm)
    sim.configure(cdc_max_objects=5)
    customers, invoices = sim.records(realm, "Customer"), sim.records(realm, "Invoice")
    for c in customers[:2]:
        sim.update_customer(realm, c["Id"], CompanyName="Cap Test")
    for i in invoices[:6]:
        sim.update_invoice(realm, i["Id"], DocNumber="CAP")
    sim.delete_invoice(realm, invoices[10]["Id"])
    summary = run_now(realm)
    assert summary.paths == {"customer": "cdc", "invoice": "reconcile"}
    assert_equal_to_source(sim, realm)


def test_a_cut_cdc_answer_is_asked_again_for_the_entities_it_cut(qbo_app, sandbox_server, monkeypatch):
    sim = sandbox_server.sim
    monkeypatch.setitem(qbo_app.config, "QBO_CDC_MAX_OBJECTS", 5)
    realm = generate(sim, seed=27, customers=50, invoices=80)
    _backfill(sim, realm)
    sim.configure(cdc_max_objects=5)
    customers, invoices = sim.records(realm, "Customer"), sim.records(realm, "Invoice")
    for c in customers[:4]:
        sim.update_customer(realm, c["Id"], CompanyName="Split Test")
    for i in invoices[:2]:
        sim.update_invoice(realm, i["Id"], DocNumber="SPLIT")
    sim.delete_invoice(realm, invoices[10]["Id"])  # a delete only CDC (or a full read) sees
    sim.reset_stats(realm)
    summary = run_now(realm)
    # 4 customers + 1 invoice fill the first answer; invoices alone fit in a second one.
    assert summary.paths == {"customer": "cdc", "invoice": "cdc"}
    calls = [e["kind"] for e in sim.request_log(realm)]
    assert calls.count("cdc") == 2 and "query" not in calls
    assert_equal_to_source(sim, realm)


def test_a_failed_cdc_call_fails_every_type_it_covered(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=28, customers=20, invoices=30)
    _backfill(sim, realm)
    sim.inject_fault("500", realm=realm, probability=1.0)
    with pytest.raises(IntuitServerError):
        run_now(realm)
    db.session.expire_all()
    states = db.session.execute(select(SyncState).where(SyncState.enabled).order_by(
        SyncState.object_type)).scalars().all()
    assert [(s.object_type, s.status, s.error_kind) for s in states] == [
        ("customer", SyncStatus.FAILED, "intuit_server"), ("invoice", SyncStatus.FAILED, "intuit_server")]
    assert all("HTTP 500" in s.error_message for s in states)
    sim.clear_faults()
    run_now(realm)
    db.session.expire_all()
    assert {s.status for s in db.session.execute(select(SyncState).where(SyncState.enabled)).scalars()} == {
        SyncStatus.SUCCEEDED}


@pytest.mark.parametrize("skew", [-120, 120])
def test_clock_skew_loses_nothing(qbo_app, sandbox_server, skew):
    sim = sandbox_server.sim
    realm = generate(sim, seed=26, customers=60, invoices=90)
    sim.set_clock_offset(skew)
    connect(sim, realm)
    run_now(realm)
    _mutate(sim, realm, f"skew{skew}")
    run_now(realm)
    assert_equal_to_source(sim, realm)
    _mutate(sim, realm, f"skew{skew}b")
    run_now(realm)
    assert_equal_to_source(sim, realm)


def test_records_stored_follow_creates_and_deletes_after_the_backfill(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=29, customers=10, invoices=12)
    _backfill(sim, realm)
    customer = sim.records(realm, "Customer")[0]
    sim.create_invoice(realm, customer["Id"])
    sim.create_invoice(realm, customer["Id"])
    sim.delete_invoice(realm, sim.records(realm, "Invoice")[0]["Id"])
    run_now(realm)
    db.session.expire_all()
    stored = db.session.execute(select(SyncState.records_synced).where(
        SyncState.company_source_id == realm, SyncState.object_type == "invoice")).scalar_one()
    assert stored == len(sim.records(realm, "Invoice")) == 13


def test_a_full_resync_brings_back_a_row_deleted_in_error(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=30, customers=10, invoices=12)
    _backfill(sim, realm)
    # A tombstone sent in error (Intuit has been seen to flag a just-updated record Deleted).
    victim = sim.records(realm, "Invoice")[3]["Id"]
    db.session.execute(update(Invoice).where(Invoice.company_source_id == realm, Invoice.source_id == victim)
                       .values(is_deleted=True, deleted_at=utcnow()))
    db.session.commit()
    run_now(realm)  # an incremental read never undoes a delete...
    db.session.expire_all()
    assert db.session.scalar(select(Invoice.is_deleted).where(Invoice.source_id == victim)) is True
    run_now(realm, object_type="invoice", full=True)  # ...a full resync of the type does
    assert_equal_to_source(sim, realm)
    row = db.session.scalar(select(Invoice).where(Invoice.source_id == victim))
    assert row.is_deleted is False and row.deleted_at is None
