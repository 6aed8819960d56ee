"""Types Change Data Capture does not cover are read at most once a day when idle."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from dashboard.extensions import db
from dashboard.models import Base, SyncState, utcnow
from dashboard.services import type_switches
from dashboard.services.sync_foreground import run_now

from .conftest import connect, generate


def _age(realm: str, object_type: str, **ages: timedelta) -> None:
    """Move a type's recorded times into the past, as if the days had gone by."""
    now = utcnow()
    db.session.execute(update(SyncState).where(
        SyncState.company_source_id == realm, SyncState.object_type == object_type).values(
        **{column: now - age for column, age in ages.items()}))
    db.session.commit()


def _requests(sim, realm: str) -> list[str]:
    return [entry["kind"] for entry in sim.request_log(realm)]


def test_small_tax_lists_are_read_whole_once_a_day(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=71, customers=5, invoices=5)
    for i in range(3):
        sim.create_record(realm, "TaxCode", Name=f"Code {i}", Taxable=i % 2 == 0)
    connect(sim, realm)
    type_switches.set_enabled(realm, "tax_code", True)
    assert run_now(realm).paths["tax_code"] == "backfill"
    # The next cycle reads what changed while the backfill ran (its page may be older), once.
    assert run_now(realm).paths["tax_code"] == "reconcile"

    sim.reset_stats(realm)
    summary = run_now(realm)
    assert summary.paths == {"customer": "cdc", "invoice": "cdc", "tax_code": "fresh"}
    assert _requests(sim, realm) == ["cdc"]  # an idle cycle: one call, for the CDC types only

    sim.create_record(realm, "TaxCode", Name="Code 3", Taxable=False)
    _age(realm, "tax_code", last_successful_sync_time=timedelta(hours=24, minutes=1))
    sim.reset_stats(realm)
    assert run_now(realm).paths["tax_code"] == "reconcile"
    assert _requests(sim, realm) == ["cdc", "query"]
    table = Base.metadata.tables["tax_code"]
    names = db.session.execute(select(table.c.name).order_by(table.c.source_id)).scalars().all()
    assert names == ["Code 0", "Code 1", "Code 2", "Code 3"]

    # Asked for by name (a webhook, an operator), it is read even within its day.
    assert run_now(realm, object_type="tax_code").paths == {"tax_code": "reconcile"}


def test_time_activities_are_queried_by_timestamp_daily_and_read_whole_monthly(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=72, customers=5, invoices=5)
    for i in range(4):
        sim.create_record(realm, "TimeActivity", NameOf="Employee", Hours=i, Minutes=30, TxnDate="2026-11-02")
    connect(sim, realm)
    type_switches.set_enabled(realm, "time_activity", True)
    run_now(realm)
    assert run_now(realm).paths["time_activity"] == "timestamp"  # what changed during the backfill, once
    assert run_now(realm).paths["time_activity"] == "fresh"

    sim.create_record(realm, "TimeActivity", NameOf="Employee", Hours=8, Minutes=0, TxnDate="2026-11-03")
    _age(realm, "time_activity", last_successful_sync_time=timedelta(days=1, seconds=1))
    sim.reset_stats(realm)
    assert run_now(realm).paths["time_activity"] == "timestamp"
    assert _requests(sim, realm) == ["cdc", "query"]
    table = Base.metadata.tables["time_activity"]
    assert sorted(db.session.execute(select(table.c.hours)).scalars()) == [0, 1, 2, 3, 8]

    # A delete leaves no timestamp: the monthly whole read finds it.
    gone = sim.records(realm, "TimeActivity")[0]["Id"]
    sim.delete_record(realm, "TimeActivity", gone)
    _age(realm, "time_activity", last_successful_sync_time=timedelta(days=1, seconds=1),
         backfill_started_at=timedelta(days=30, seconds=1))
    assert run_now(realm).paths["time_activity"] == "reconcile"
    deleted = db.session.execute(select(table.c.source_id).where(table.c.is_deleted)).scalars().all()
    assert deleted == [str(gone)]
    assert run_now(realm).paths["time_activity"] == "fresh"
