"""Backfill against the simulator over HTTP: equality, ties, resume after failure."""
from __future__ import annotations

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import RunStatus, SyncRun, SyncState, SyncStatus
from dashboard.services.sync_foreground import run_now
from dashboard.sync.errors import IntuitServerError

from .conftest import assert_equal_to_source, connect, generate


def _states(realm):
    db.session.expire_all()
    return {s.object_type: s for s in db.session.execute(
        select(SyncState).where(SyncState.company_source_id == realm)).scalars()}


def _queries(sim, realm):
    return sum(1 for e in sim.request_log(realm) if e["kind"] == "query")


def test_backfill_equals_source_with_giant_tie_and_exact_last_page(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    # 2,000 customers: the last page of the 999-record stride is exactly full; 1,100 invoices share a CreateTime.
    realm = generate(sim, seed=11, customers=1999, invoices=2600, tie_size=300, giant_tie=True)
    connect(sim, realm)
    summary = run_now(realm)
    assert summary.paths == {"customer": "backfill", "invoice": "backfill"}
    assert_equal_to_source(sim, realm)
    states = _states(realm)
    for name, count in (("customer", 1999), ("invoice", 2600)):
        state = states[name]
        assert state.status == SyncStatus.SUCCEEDED and state.is_initial_backfill_completed
        assert state.records_total == count and state.records_synced == count
        assert state.last_successful_sync_time == state.initial_attempt_time
    run = db.session.execute(select(SyncRun)).scalar_one()
    assert run.status == RunStatus.SUCCEEDED and run.records_written == 1999 + 2600 and run.pages >= 6
    assert sim.stats(realm)["throttled"] == 0
    # Metered calls: three pages per type (pages overlap by one record; the customers' full
    # last page needs one more read), and both COUNTs asked ahead in one batch request of two
    # items. Nothing is fetched past the count's end.
    assert _queries(sim, realm) == 2 * 3
    batches = [e for e in sim.request_log(realm) if e["kind"] == "batch"]
    assert len(batches) == 1


def test_failure_mid_backfill_resumes_from_cursor(qbo_app, sandbox_server, app, monkeypatch):
    sim = sandbox_server.sim
    realm = generate(sim, seed=12, customers=300, invoices=4000, tie_size=50)
    connect(sim, realm)
    monkeypatch.setitem(app.config, "SYNC_PAGE_CONCURRENCY", 1)
    sim.reset_stats(realm)

    def fail_after_two_pages(name, done, total):
        # Page 3 of the invoices then fails more times than the fetch retries.
        if name == "invoice" and done == 1999:  # 1,000 + 999 (pages overlap by one)
            sim.inject_fault("500", realm=realm, count=10)

    try:
        run_now(realm, progress=fail_after_two_pages)
    except IntuitServerError as exc:
        assert "500" in str(exc)
    else:
        raise AssertionError("the injected failure did not surface")
    state = _states(realm)["invoice"]
    assert state.status == SyncStatus.FAILED and "failed after 1 attempt" in state.error_message
    assert state.records_synced == 1999  # two pages committed
    sim.clear_faults()
    before = _queries(sim, realm)
    run_now(realm)
    after = _queries(sim, realm)
    assert_equal_to_source(sim, realm)
    # Resume: pages 3..5 of the invoices (4,000 = 1,999 + 999 + 999 + 3) and a CDC call for customers.
    assert after - before <= 4
    state = _states(realm)["invoice"]
    assert state.status == SyncStatus.SUCCEEDED and state.records_synced == 4000
