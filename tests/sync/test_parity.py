"""Parity checks against the simulator over HTTP: verdicts, failures, cost, schedule, requests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select

from dashboard.extensions import db
from dashboard.models import Company, Customer, ParityCheck, RunKind, RunStatus, SyncRun, SyncState, utcnow
from dashboard.qbo.client import BATCH_MAX_ITEMS
from dashboard.services import parity, sync_jobs, sync_runner, work_queue
from dashboard.services.sync_client import build_client
from dashboard.services.sync_foreground import run_now
from dashboard.sync import parity as rules
from dashboard.sync.specs import SPECS, ordered
from tests.support.widget import widget_type

from .conftest import connect, generate
from .test_work_queue import RecordingQueue

T0 = datetime(2026, 12, 5, 6, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _backfilled(sim, seed: int, customers: int = 30, invoices: int = 40) -> str:
    realm = generate(sim, seed=seed, customers=customers, invoices=invoices)
    connect(sim, realm)
    run_now(realm)
    return realm


def _states(realm: str) -> dict[str, SyncState]:
    db.session.expire_all()
    return {s.object_type: s for s in db.session.execute(
        select(SyncState).where(SyncState.company_source_id == realm)).scalars()}


def _company(realm: str) -> Company:
    db.session.expire_all()
    return db.session.execute(select(Company).where(Company.source_id == realm)).scalar_one()


def _checks(realm: str) -> int:
    return db.session.execute(select(func.count()).select_from(ParityCheck)
                              .where(ParityCheck.company_source_id == realm)).scalar_one()


def _source_counts(sim, realm: str) -> dict[str, int]:
    return {"customer": len(sim.records(realm, "Customer", include_inactive=True)),
            "invoice": len(sim.records(realm, "Invoice"))}


def _check(realm: str, clock=utcnow):
    return {v.object_type: v for v in parity.check_company(realm, build_client(realm), clock)}


def test_a_first_backfill_ends_with_a_check_in_parity_that_costs_no_call(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=41, customers=30, invoices=40)
    sim.deactivate_customer(realm, sim.records(realm, "Customer")[0]["Id"])  # inactive ones count too
    connect(sim, realm)
    sim.reset_stats(realm)
    before = utcnow()
    run_now(realm)
    expected = _source_counts(sim, realm)
    states = _states(realm)
    for name in ("customer", "invoice"):
        state = states[name]
        assert (state.parity_source_count, state.parity_local_count) == (expected[name], expected[name])
        assert state.parity_drifts == 0 and state.parity_error is None and state.parity_checked_at >= before
        assert parity.describe(state) == "in parity" and parity.failure(state) is None
    rows = db.session.execute(select(ParityCheck).where(ParityCheck.company_source_id == realm)).scalars().all()
    assert sorted((r.object_type, r.source_count, r.local_count) for r in rows) == sorted(
        (name, count, count) for name, count in expected.items())
    # The backfill's own COUNT(*) of each type (both asked ahead in one batch) stands for
    # Intuit's: the check adds no request.
    log = sim.request_log(realm)
    assert [e["kind"] for e in log] == ["batch", "query", "query"]  # the counts, then a page per type
    run = db.session.execute(select(SyncRun)).scalar_one()
    assert run.status == RunStatus.SUCCEEDED and run.requests == len(log)
    # The next daily check is on the company's slot, at least half a day away.
    due = _company(realm).parity_due_at
    assert due == rules.next_check_at(realm, states["customer"].parity_checked_at)
    assert due - before >= rules.MIN_GAP


def test_a_lost_row_drifts_twice_into_a_failure_and_a_full_resync_of_its_type_repairs_it(
        qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = _backfilled(sim, seed=42)
    customers = _source_counts(sim, realm)["customer"]
    lost = sim.records(realm, "Customer")[3]["Id"]
    db.session.execute(delete(Customer).where(Customer.company_source_id == realm, Customer.source_id == lost))
    db.session.commit()

    clock = Clock()
    first = _check(realm, clock)
    assert first["customer"].drifts and (first["customer"].source_count, first["customer"].local_count) == (
        customers, customers - 1)
    assert first["invoice"].in_parity
    state = _states(realm)["customer"]
    assert state.parity_drifts == 1 and parity.failure(state) is None  # one drift may be a passing change
    assert parity.describe(state) == f"drift: QuickBooks has {customers} customers, we hold {customers - 1} (+1)"

    clock.now = T0 + timedelta(days=1)
    _check(realm, clock)
    state = _states(realm)["customer"]
    message = (f"QuickBooks has {customers} customers, we hold {customers - 1} "
               "(drift in 2 checks in a row since 2026-12-05 06:00 UTC)")
    assert state.parity_drifts == 2 and parity.failure(state) == message
    assert parity.failures(realm) == {"customer": message}
    assert _states(realm)["invoice"].parity_drifts == 0

    # The one-click fix: a full resync of customers; its run checks again when it ends.
    run, _ = sync_jobs.request_sync(realm, kind=RunKind.FULL_RESYNC, trigger="operator", object_type="customer")
    sync_runner.execute_run(run.id)
    state = _states(realm)["customer"]
    assert (state.parity_source_count, state.parity_local_count, state.parity_drifts) == (customers, customers, 0)
    assert parity.describe(state) == "in parity" and parity.failures(realm) == {}
    assert state.parity_drift_since is None


def test_intuit_gaining_a_record_without_a_sync_is_a_drift_until_the_next_sync(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = _backfilled(sim, seed=43)
    counts = _source_counts(sim, realm)
    new = sim.create_customer(realm, DisplayName="Arrived After The Sync")
    sim.create_invoice(realm, new["Id"])
    verdicts = _check(realm)
    assert (verdicts["customer"].source_count, verdicts["customer"].local_count) == (
        counts["customer"] + 1, counts["customer"])
    assert (verdicts["invoice"].source_count, verdicts["invoice"].local_count) == (
        counts["invoice"] + 1, counts["invoice"])
    assert parity.describe(_states(realm)["invoice"]) == (
        f"drift: QuickBooks has {counts['invoice'] + 1} invoices, we hold {counts['invoice']} (+1)")
    run_now(realm)  # an incremental cycle brings them; not due, so it does not check
    assert _states(realm)["customer"].parity_drifts == 1
    verdicts = _check(realm)
    assert verdicts["customer"].in_parity and verdicts["invoice"].in_parity
    assert all(s.parity_drifts == 0 for s in _states(realm).values() if s.object_type in ("customer", "invoice"))


def test_a_check_costs_one_batch_request_per_30_types(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = _backfilled(sim, seed=44)
    sim.reset_stats(realm)
    client = build_client(realm)
    parity.check_company(realm, client)
    stats = sim.stats(realm)
    assert client.requests_sent == 1 and stats["requests"] == 1 and dict(stats["by_kind"]) == {"batch": 1}
    # All 28 registered types take three batches of at most 10 items.
    assert BATCH_MAX_ITEMS == 10
    assert [len(c) for c in rules.chunks(ordered(), BATCH_MAX_ITEMS)] == [10, 10, len(SPECS) - 20]
    assert [len(c) for c in rules.chunks(list(range(11)), BATCH_MAX_ITEMS)] == [10, 1]


def test_checks_come_once_a_day_on_the_company_slot(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = _backfilled(sim, seed=45)
    clock = Clock()
    _check(realm, clock)
    slot = _company(realm).parity_due_at
    assert T0 + rules.MIN_GAP < slot <= T0 + rules.MIN_GAP + rules.INTERVAL
    assert not parity.is_due(realm, slot - timedelta(seconds=1)) and parity.is_due(realm, slot)
    clock.now = slot + timedelta(minutes=4)  # the cycle that finds it due comes a little after the slot
    _check(realm, clock)
    assert _company(realm).parity_due_at == slot + rules.INTERVAL
    assert not parity.is_due(realm, clock.now + timedelta(hours=23))
    assert parity.is_due(realm, slot + rules.INTERVAL)
    # A run while the check is not due does not check (nor pay for one).
    checks = _checks(realm)
    sim.reset_stats(realm)
    run_now(realm)
    assert _checks(realm) == checks and sim.stats(realm)["by_kind"].get("batch", 0) == 0
    # Companies get different slots of the day (a stable hash of the realm).
    slots = {rules.next_check_at(str(n), T0).time() for n in range(200)}
    assert len(slots) > 150 and rules.next_check_at(realm, T0) == rules.next_check_at(realm, T0)


def test_a_check_asked_for_is_made_by_the_run_already_queued(qbo_app, sandbox_server, monkeypatch):
    sim = sandbox_server.sim
    realm = _backfilled(sim, seed=46)
    queue = RecordingQueue()
    monkeypatch.setitem(qbo_app.extensions, work_queue.EXTENSION, queue)
    queued, created = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="schedule")
    assert created
    run, created = parity.request_check(realm)
    assert run.id == queued.id and not created  # the queued run answers it: nothing queued twice
    assert [a[1] for a in queue.asked] == [queued.id]
    assert _company(realm).parity_requested_at is not None
    checks = _checks(realm)
    sync_runner.execute_run(queued.id)
    assert _checks(realm) == checks + 2
    assert _company(realm).parity_requested_at is None
    # With no run active, the request queues one that checks.
    run, created = parity.request_check(realm)
    assert created and run.trigger == "parity" and run.kind == RunKind.INCREMENTAL
    sync_runner.execute_run(run.id)
    assert _checks(realm) == checks + 4


def test_a_request_made_while_a_check_runs_stays_pending(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = _backfilled(sim, seed=47)
    clock = Clock()

    class AsksMidway(Clock):
        def __call__(self):
            # The first reading is the check's start; a request lands just after it.
            if not hasattr(self, "asked"):
                self.asked = True
                started = self.now
                parity.request_check(realm, clock=lambda: started + timedelta(seconds=1))
            return self.now

    _check(realm, AsksMidway(clock.now))
    assert _company(realm).parity_requested_at == T0 + timedelta(seconds=1)
    assert parity.is_due(realm, T0 + timedelta(seconds=2))


def test_a_batch_item_fault_fails_only_its_type(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = _backfilled(sim, seed=48)
    with widget_type():
        # The simulator knows no Widget: Intuit would answer its item with a fault.
        db.session.add(SyncState(company_source_id=realm, object_type="widget", enabled=True,
                                 is_initial_backfill_completed=True))
        db.session.commit()
        sim.reset_stats(realm)
        verdicts = _check(realm)
        assert sim.stats(realm)["requests"] == 1
        assert verdicts["customer"].in_parity and verdicts["invoice"].in_parity
        widget = verdicts["widget"]
        assert not widget.checked and widget.source_count is None and widget.local_count == 0
        state = _states(realm)["widget"]
        assert state.parity_drifts == 0 and state.parity_error == widget.error
        assert parity.describe(state).startswith("could not check: Intuit rejected the query: ")
        assert "Widget" in state.parity_error
        row = db.session.execute(select(ParityCheck).where(ParityCheck.object_type == "widget")).scalar_one()
        assert row.source_count is None and row.error == widget.error


def test_a_failed_batch_is_recorded_per_type_and_never_fails_the_run(qbo_app, sandbox_server, monkeypatch):
    sim = sandbox_server.sim
    realm = _backfilled(sim, seed=49)
    lost = sim.records(realm, "Customer")[0]["Id"]
    db.session.execute(delete(Customer).where(Customer.company_source_id == realm, Customer.source_id == lost))
    db.session.commit()
    _check(realm)  # one drift on record
    monkeypatch.setitem(qbo_app.config, "QBO_HTTP_RETRIES", 0)
    parity.request_check(realm)
    sim.reset_stats(realm)
    # The run's CDC call succeeds, then its batch fails.
    sim.inject_fault("500", realm=realm, nth=2)
    summary = run_now(realm)
    assert summary is not None
    assert sim.stats(realm)["by_kind"].get("batch") == 1
    run = db.session.execute(select(SyncRun).order_by(SyncRun.id.desc()).limit(1)).scalar_one()
    assert run.status == RunStatus.SUCCEEDED and run.requests == 2
    for name in ("customer", "invoice"):
        state = _states(realm)[name]
        assert state.parity_error.startswith("Intuit failed (HTTP 500)")
        assert parity.describe(state).startswith("could not check: Intuit failed (HTTP 500)")
    assert _states(realm)["customer"].parity_drifts == 1  # a check that could not count leaves the streak


def test_parity_check_command(qbo_app, sandbox_server, runner):
    sim = sandbox_server.sim
    realm = _backfilled(sim, seed=50)
    counts = _source_counts(sim, realm)
    result = runner.invoke(args=["parity", "check", "--company", realm])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{realm} (1 request to QuickBooks)"
    assert lines[1].split() == ["type", "QuickBooks", "here", "verdict"]
    assert lines[2].split() == ["customer", str(counts["customer"]), str(counts["customer"]), "in", "parity"]
    lost = sim.records(realm, "Invoice")[0]["Id"]
    from dashboard.models import Invoice
    db.session.execute(delete(Invoice).where(Invoice.company_source_id == realm, Invoice.source_id == lost))
    db.session.commit()
    result = runner.invoke(args=["parity", "check"])
    assert result.exit_code == 1
    assert (f"drift: QuickBooks has {counts['invoice']} invoices, we hold {counts['invoice'] - 1} (+1)"
            in result.output)
    assert "QuickBooks' COUNT(*)" in runner.invoke(args=["parity", "check", "--help"]).output


@pytest.mark.parametrize("source, local, drifts, expected", [
    (120, 118, 1, None),
    (120, 118, 2, "QuickBooks has 120 customers, we hold 118 (drift in 2 checks in a row since 2026-12-05 06:00 UTC)"),
    (1, 0, 3, "QuickBooks has 1 customer, we hold 0 (drift in 3 checks in a row since 2026-12-05 06:00 UTC)"),
])
def test_failure_message_words(source, local, drifts, expected):
    assert rules.failure_message(SPECS["customer"], source, local, drifts, T0) == expected


def test_a_check_asked_for_while_a_run_runs_is_made_when_it_ends(qbo_app, sandbox_server, monkeypatch):
    sim = sandbox_server.sim
    realm = _backfilled(sim, seed=51)
    queue = RecordingQueue()
    monkeypatch.setitem(qbo_app.extensions, work_queue.EXTENSION, queue)
    queued, _ = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="schedule")
    running = sync_runner.claim(queued.id)
    run, created = parity.request_check(realm)
    assert run.id == running.id and not created and run.checkpoint["followup"]["kind"] == "incremental"
    checks = _checks(realm)
    sync_runner.execute_claimed(running)
    assert _checks(realm) == checks + 2 and _company(realm).parity_requested_at is None
    followup = db.session.execute(select(SyncRun).where(SyncRun.trigger == "followup")).scalar_one()
    sync_runner.execute_run(followup.id)  # the request is answered: the follow-up does not check again
    assert _checks(realm) == checks + 2
