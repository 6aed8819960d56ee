"""Scheduled cycles that change nothing keep no sync_run row: sync_run grows with work, not time."""
from __future__ import annotations

from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import Company, RunKind, RunStatus, SyncRun
from dashboard.services import sync_jobs
from dashboard.services.sync_runner import execute_run
from tests.sync.conftest import connect, generate


def _scheduled_cycle(realm: str) -> int:
    run, created = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="schedule")
    assert created
    execute_run(run.id)
    return run.id


def _rows() -> list[tuple]:
    db.session.expire_all()
    return db.session.execute(select(SyncRun.kind, SyncRun.trigger, SyncRun.status, SyncRun.records_written)
                              .order_by(SyncRun.id)).all()


def test_idle_cycles_are_counted_on_the_company_and_changes_keep_their_run(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=61, customers=20, invoices=30)
    connect(sim, realm)
    execute_run(sync_jobs.request_initial_sync(realm).id)
    for _ in range(3):
        _scheduled_cycle(realm)
    company = db.session.execute(select(Company).where(Company.source_id == realm)).scalar_one()
    assert company.idle_cycles == 3 and company.last_checked_at is not None
    assert [r[:3] for r in _rows()] == [(RunKind.BACKFILL, "connect", RunStatus.SUCCEEDED)]

    sim.update_customer(realm, sim.records(realm, "Customer")[0]["Id"], DisplayName="Changed")
    kept = _scheduled_cycle(realm)
    rows = _rows()
    assert len(rows) == 2 and rows[-1][:3] == (RunKind.INCREMENTAL, "schedule", RunStatus.SUCCEEDED)
    assert rows[-1][3] >= 1 and db.session.get(SyncRun, kept) is not None
    # An operator's resync is kept even when it finds nothing: it answers a person.
    run, _ = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="operator")
    execute_run(run.id)
    assert len(_rows()) == 3
    db.session.expire_all()
    company = db.session.execute(select(Company).where(Company.source_id == realm)).scalar_one()
    assert company.idle_cycles == 3
    assert db.session.execute(select(func.count()).select_from(SyncRun)).scalar_one() == 3


def test_the_company_page_says_when_it_was_last_checked(qbo_app, sandbox_server, signed_in):
    sim = sandbox_server.sim
    realm = generate(sim, seed=62, customers=5, invoices=5)
    connect(sim, realm)
    execute_run(sync_jobs.request_initial_sync(realm).id)
    _scheduled_cycle(realm)
    _scheduled_cycle(realm)
    page = signed_in.get(f"/companies/{realm}").get_data(as_text=True)
    checked = page[page.index('id="last-checked"'):]
    assert "2 scheduled checks found nothing to change" in checked[:400]


def test_an_idle_run_costs_a_few_statements_and_a_change_read_again_is_no_change(qbo_app, sandbox_server):
    from sqlalchemy import event

    sim = sandbox_server.sim
    realm = generate(sim, seed=61, customers=20, invoices=30)
    connect(sim, realm)
    execute_run(sync_jobs.request_initial_sync(realm).id)
    run, _ = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="schedule")
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        execute_run(run.id)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    # The types CDC found unchanged are settled by one UPDATE, whatever their number (an idle
    # run of 28 types sent 274 statements when each type wrote its own), and the run ends in
    # one transaction.
    state_writes = [s for s in statements if s.lstrip().upper().startswith("UPDATE SYNC_STATE")]
    assert len(statements) <= 20 and len(state_writes) == 1, statements

    sim.update_customer(realm, sim.records(realm, "Customer")[0]["Id"], DisplayName="Changed once")
    _scheduled_cycle(realm)  # stores the change: its run is kept
    _scheduled_cycle(realm)  # CDC's overlap reads it again: nothing new, no run kept
    assert [r[:3] for r in _rows()][1:] == [(RunKind.INCREMENTAL, "schedule", RunStatus.SUCCEEDED)]
    db.session.expire_all()
    company = db.session.execute(select(Company).where(Company.source_id == realm)).scalar_one()
    assert company.idle_cycles == 2
