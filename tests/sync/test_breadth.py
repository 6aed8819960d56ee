"""Every QuickBooks object type end to end: a backfill through changes, ties wider than a
page, deletes, inactivations and a customer merge ends equal to the source, links filled;
an idle cycle then costs one call."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import and_, func, select

from dashboard.extensions import db
from dashboard.models import Base, SyncState
from dashboard.services import parity, type_switches
from dashboard.services.sync_foreground import run_now
from dashboard.sync.specs import SPECS

from .conftest import connect, generate


def _source(sim, realm: str, entity: str) -> dict[str, tuple[int, bool]]:
    return {str(r["Id"]): (int(r["SyncToken"]), r.get("Active", True))
            for r in sim.records(realm, entity, include_inactive=True)}


def _ours(realm: str, spec) -> tuple[dict[str, tuple[int, bool]], set[str]]:
    table = Base.metadata.tables[spec.table]
    active = table.c.active if "active" in table.c else None
    rows = db.session.execute(select(table.c.source_id, table.c.sync_token, table.c.is_deleted,
                                     active if active is not None else table.c.is_deleted.is_(False))
                              .where(table.c.company_source_id == realm)).all()
    live = {r[0]: (r[1], r[3]) for r in rows if not r[2]}
    return live, {r[0] for r in rows if r[2]}


def assert_every_type_equal_to_source(sim, realm: str) -> None:
    db.session.expire_all()
    for spec in SPECS.values():
        live, deleted = _ours(realm, spec)
        assert live == _source(sim, realm, spec.entity), spec.name
        assert deleted <= {str(i) for i in sim.deleted_ids(realm, spec.entity)}, spec.name
        # Every reference whose target we hold is linked to it.
        table = Base.metadata.tables[spec.table]
        for source_col, fk_col, target_name in spec.links:
            target = Base.metadata.tables[SPECS[target_name].table].alias()
            unlinked = db.session.execute(select(func.count()).select_from(table).join(target, and_(
                target.c.company_source_id == table.c.company_source_id,
                target.c.source_id == table.c[source_col])).where(
                table.c.company_source_id == realm, table.c[fk_col].is_distinct_from(target.c.id))).scalar_one()
            assert unlinked == 0, f"{spec.name}.{fk_col}: {unlinked} rows not linked to their {target_name}"


def test_every_type_backfills_through_changes_and_then_idles_at_one_call(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    # 1,100 payments share one CreateTime: a tie wider than a 1,000-record page.
    realm = generate(sim, seed=81, customers=40, invoices=60, breadth=12, ties={"Payment": 1100})
    connect(sim, realm)
    for name in SPECS:
        type_switches.set_enabled(realm, name, True)
    counts = sim.entity_counts(realm)
    assert set(counts) == {spec.entity for spec in SPECS.values()} and counts["Payment"] >= 1100
    created = Counter(p["MetaData"]["CreateTime"] for p in sim.records(realm, "Payment"))
    assert created.most_common(1)[0][1] >= 1100

    changed = []

    def change_mid_backfill(name: str, done: int, total) -> None:
        if name != "bill" or changed:
            return
        changed.append(done)
        vendors, bills = sim.records(realm, "Vendor"), sim.records(realm, "Bill")
        customers = sim.records(realm, "Customer")
        sim.deactivate_record(realm, "Vendor", vendors[0]["Id"])        # read already: made inactive
        sim.delete_record(realm, "Bill", bills[-1]["Id"])               # not read yet
        sim.delete_record(realm, "JournalEntry", sim.records(realm, "JournalEntry")[0]["Id"])  # read already
        sim.update_record(realm, "Account", sim.records(realm, "Account")[0]["Id"], Name="Renamed account")
        sim.merge_customers(realm, customers[0]["Id"], customers[1]["Id"])
        changed.append(str(customers[1]["Id"]))
        sim.create_record(realm, "Payment", CustomerRef={"value": customers[0]["Id"]}, TotalAmt="99.00",
                          TxnDate="2026-12-01")

    sim.reset_stats(realm)
    first = run_now(realm, progress=change_mid_backfill)
    assert changed and set(first.paths.values()) == {"backfill"} and len(first.paths) == len(SPECS)
    # The 28 counts went as 3 batch requests; the small types' pages were asked ahead, and
    # no page was read twice nor asked ahead in vain (one first page per type).
    log = sim.request_log(realm)
    assert Counter(e["kind"] for e in log) == {"batch": 3, "query": len({e["detail"] for e in log
                                                                         if e["kind"] == "query"})}
    first_pages = Counter(e["detail"].split()[3] for e in log
                          if e["kind"] == "query" and " STARTPOSITION 1 " in e["detail"])
    assert set(first_pages.values()) == {1} and len(first_pages) == len(SPECS)
    second = run_now(realm)
    assert {second.paths[name] for name in SPECS if SPECS[name].refresh == "cdc"} == {"cdc"}
    assert_every_type_equal_to_source(sim, realm)
    customer = Base.metadata.tables["customer"]
    merged_away = changed[1]
    assert db.session.execute(select(customer.c.active).where(
        customer.c.company_source_id == realm, customer.c.source_id == merged_away)).scalar_one() is False

    # The first run's parity check saw the deletes made during the backfill as a drift;
    # asked again now, it agrees with QuickBooks on every type (its batches count every
    # item against Intuit's limits: the limiter let them through).
    parity.request_check(realm)
    run_now(realm)
    db.session.expire_all()
    states = db.session.execute(select(SyncState).where(SyncState.company_source_id == realm)).scalars().all()
    assert len(states) == len(SPECS) and all(s.parity_checked_at is not None for s in states)
    assert [(s.object_type, s.parity_source_count, s.parity_local_count) for s in states
            if s.parity_source_count != s.parity_local_count or s.parity_drifts] == []

    # Idle: one CDC call covers the 24 types it can; the four others were read today.
    sim.reset_stats(realm)
    idle = run_now(realm)
    assert [entry["kind"] for entry in sim.request_log(realm)] == ["cdc"]
    assert sorted(name for name, path in idle.paths.items() if path == "fresh") == [
        "tax_agency", "tax_code", "tax_rate", "time_activity"]
