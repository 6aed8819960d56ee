"""The pipeline on a real Huey consumer: queueing, retries, failures on record, many workers, SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import Customer, Invoice, RunKind, RunStatus, SyncRun, SyncState, SyncStatus
from dashboard import create_app
from dashboard.models import utcnow
from dashboard.services import sync_jobs
from tests.support.live import FAST_KNOBS, pointed_at_simulator, running_consumer

from .conftest import assert_equal_to_source, connect, generate

ROOT = Path(__file__).resolve().parents[2]


def consumer(workers: int = 4, app=None):
    """Run a Huey consumer with thread workers inside this process (the current app's by default)."""
    return running_consumer(app or current_app._get_current_object(), workers)


def wait_for(predicate, timeout: float, what: str, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        db.session.rollback()
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def _run(run_id):
    return db.session.get(SyncRun, run_id, populate_existing=True)


def test_requested_sync_runs_on_the_consumer_and_is_not_queued_twice(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=31, customers=120, invoices=200)
    connect(sim, realm)
    run = sync_jobs.request_initial_sync(realm)
    again, created = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="webhook", object_type="invoice")
    assert again.id == run.id and not created  # a burst never queues twice
    assert sync_jobs.active_run(realm, "invoice").id == run.id
    with consumer():
        wait_for(lambda: _run(run.id).status == RunStatus.SUCCEEDED, 60, "the backfill")
    assert_equal_to_source(sim, realm)
    assert sync_jobs.active_run(realm) is None
    assert db.session.execute(select(func.count()).select_from(SyncRun)).scalar_one() == 1


def test_a_change_notified_while_a_run_is_running_gets_a_follow_up_run(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=36, customers=1500, invoices=4000)
    connect(sim, realm)
    sim.set_latency(1.0)  # the invoices' pages keep the run busy well after the customers are read
    run = sync_jobs.request_initial_sync(realm)
    customer_id = sim.records(realm, "Customer")[0]["Id"]
    with consumer(workers=2):
        wait_for(lambda: _state(realm, "customer").is_initial_backfill_completed, 60, "the customers' backfill")
        # The customers were read; the run goes on with the invoices. Now a customer changes
        # and Intuit notifies us: the running run cannot see it, so it must not absorb it.
        sim.update_customer(realm, customer_id, DisplayName="Renamed while the run was running")
        same, created = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="webhook",
                                               object_type="customer")
        assert same.id == run.id and not created
        assert _run(run.id).status == RunStatus.RUNNING, "the run ended too early for this test"
        again, created = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="webhook",
                                                object_type="customer")
        assert again.id == run.id and not created  # a burst still adds one follow-up
        wait_for(lambda: len(_runs(realm)) == 2 and sync_jobs.active_run(realm) is None, 90,
                 "the run and its follow-up")
    first, followup = _runs(realm)
    assert first.status == followup.status == RunStatus.SUCCEEDED
    assert (followup.kind, followup.trigger) == (RunKind.INCREMENTAL, "followup")
    stored = db.session.execute(select(Customer).where(Customer.company_source_id == realm,
                                                       Customer.source_id == str(customer_id))).scalar_one()
    assert stored.display_name == "Renamed while the run was running"
    assert_equal_to_source(sim, realm)


def _state(realm, object_type):
    return db.session.execute(select(SyncState).where(SyncState.company_source_id == realm,
                                                      SyncState.object_type == object_type)).scalar_one_or_none() \
        or SyncState(is_initial_backfill_completed=False)


def _runs(realm):
    return db.session.execute(select(SyncRun).where(SyncRun.company_source_id == realm)
                              .order_by(SyncRun.id)).scalars().all()


@pytest.fixture
def fast_retry_app(qbo_app, sandbox_server):
    """An app whose sync task retries after 0.1 s: the retry policy comes from its settings."""
    fast = create_app({"TESTING": True, "SYNC_RETRY_DELAY": 0.1}, environ=dict(os.environ))
    with pointed_at_simulator(fast, sandbox_server.url):
        yield fast


def test_exhausted_retries_leave_failed_with_a_message(qbo_app, sandbox_server, fast_retry_app):
    assert fast_retry_app.extensions["tasks"].run_sync.retry_delay == 0.1
    fast_retry_app.config["QBO_HTTP_RETRIES"] = 1  # the production default: one retry budget per failure
    sim = sandbox_server.sim
    realm = generate(sim, seed=32, customers=30, invoices=30)
    connect(sim, realm)
    sim.reset_stats(realm)
    sim.inject_fault("503", realm=realm, probability=1.0)
    run = sync_jobs.request_initial_sync(realm)
    with consumer(workers=2, app=fast_retry_app):
        wait_for(lambda: _run(run.id).status == RunStatus.FAILED, 60, "the final failure")
    run = _run(run.id)
    assert run.attempts == 4 and "HTTP 503" in run.error_message
    # 4 attempts × (the request + its one retry): 8 requests from the first failure to Failed.
    assert sim.stats(realm)["requests"] == 8
    state = db.session.execute(select(SyncState).where(SyncState.object_type == "customer")).scalar_one()
    assert state.status == SyncStatus.FAILED and state.attempts == 4 and state.last_failed_at is not None
    assert "Intuit failed (HTTP 503)" in state.error_message and "after 4 attempts" in state.error_message
    assert state.error_kind == "intuit_server"
    # Retry, once Intuit is back, resumes and succeeds, and the invoices (stopped behind the
    # failed customers) follow in the same run: no wait for the schedule.
    sim.clear_faults()
    retry, created = sync_jobs.retry_failed(realm, "customer")
    assert created and retry.object_type is None
    with consumer(workers=2):
        wait_for(lambda: _run(retry.id).status == RunStatus.SUCCEEDED, 60, "the retry")
    states = db.session.execute(select(SyncState).where(SyncState.enabled)).scalars().all()
    assert {s.object_type: s.status for s in states} == {"customer": SyncStatus.SUCCEEDED,
                                                         "invoice": SyncStatus.SUCCEEDED}
    assert all(s.error_message is None and s.is_initial_backfill_completed for s in states)
    assert_equal_to_source(sim, realm)


def test_a_429_makes_the_run_wait_in_the_queue_without_spending_a_retry(qbo_app, sandbox_server, fast_retry_app):
    fast_retry_app.config.update(QBO_HTTP_RETRIES=1, QBO_THROTTLE_WAIT=0.5, SYNC_THROTTLE_DEFERRALS=2)
    sim = sandbox_server.sim
    realm = generate(sim, seed=37, customers=30, invoices=30)
    connect(sim, realm)
    sim.reset_stats(realm)
    sim.inject_fault("429", realm=realm, count=4)  # the next 4 requests, whoever sends them
    run = sync_jobs.request_initial_sync(realm)
    with consumer(workers=2, app=fast_retry_app):
        wait_for(lambda: _run(run.id).status in (RunStatus.SUCCEEDED, RunStatus.FAILED), 60, "the run to end")
    run = _run(run.id)
    stats = sim.stats(realm)
    # No 429 was retried in place: 2 deferrals (the most in a row without a saved page), then
    # the third and fourth 429s were ordinary failures (2 of the 3 retries), then success.
    assert run.status == RunStatus.SUCCEEDED and run.attempts == 5
    assert stats["by_outcome"].get("fault:429") == 4
    assert _state(realm, "customer").status == SyncStatus.SUCCEEDED


def test_a_lone_429_costs_seconds_and_a_persisting_one_intuits_minute(app):
    from dashboard.services.sync_runner import throttle_wait

    with app.app_context():
        saved = app.config["QBO_THROTTLE_WAIT"]
        app.config["QBO_THROTTLE_WAIT"] = 60.0
        try:
            assert [throttle_wait(streak) for streak in range(6)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
        finally:
            app.config["QBO_THROTTLE_WAIT"] = saved


def test_reconnect_required_fails_at_once(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, seed=33, customers=10, invoices=10)
    connect(sim, realm)
    sim.revoke_grant(realm)
    run = sync_jobs.request_initial_sync(realm)
    with consumer(workers=1):
        wait_for(lambda: _run(run.id).status in (RunStatus.FAILED, RunStatus.CANCELLED), 30, "the failure")
    run = _run(run.id)
    assert run.attempts == 1  # no retries: only a person can fix it
    state = db.session.execute(select(SyncState).where(SyncState.object_type == "customer")).scalar_one()
    assert state.error_kind == "reconnect_required" and "Reconnect" in state.error_message
    assert state.status == SyncStatus.FAILED  # not "retrying": nothing will retry it


def test_scheduler_claims_each_due_company_once(qbo_app, sandbox_server):
    from dashboard.models import Company
    from dashboard.services.sync_schedule import schedule_due_companies

    sim = sandbox_server.sim
    realms = sim.generate(seed=34, companies=3, customers=5, invoices=5)
    for realm in realms:
        connect(sim, realm)
    now = utcnow()
    assert schedule_due_companies(now) == []  # new companies get a spread first slot
    slots = dict(db.session.execute(select(Company.source_id, Company.next_sync_at)).all())
    assert all(now <= slot < now + timedelta(minutes=5) for slot in slots.values())
    later = now + timedelta(minutes=6)
    assert sorted(schedule_due_companies(later)) == sorted(realms)
    # A second scheduler at the same instant finds nothing left to claim.
    assert schedule_due_companies(later) == []
    queued = db.session.execute(select(SyncRun.company_source_id).where(SyncRun.trigger == "schedule")).scalars()
    assert sorted(queued) == sorted(realms)
    # The batch's tasks (one pipeline on Redis) reach the consumer, which runs them all.
    with consumer(workers=2):
        wait_for(lambda: db.session.execute(select(func.count()).select_from(SyncRun).where(
            SyncRun.status == RunStatus.SUCCEEDED)).scalar_one() == len(realms), 60, "the scheduled runs")


# -- several processes -----------------------------------------------------------------------
def _worker_env(server, **extra):
    env = {**os.environ, **{k: str(v) for k, v in FAST_KNOBS.items()}, **server.urls(), **extra}
    env["QBO_HTTP_RETRY_DELAY"] = "0.05"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start_worker(env, log_path):
    with open(log_path, "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "-w", "4",
                                 "--no-periodic"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc, sig=signal.SIGINT):
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.services
def test_two_consumer_processes_keep_order_limits_and_uniqueness(qbo_app, sandbox_server, tmp_path):
    sim = sandbox_server.sim
    realms = sim.generate(seed=35, companies=10, customers=300, invoices=700, tie_size=150)
    for realm in realms:
        connect(sim, realm)
    env = _worker_env(sandbox_server, SYNC_PAGE_SIZE="100")  # many pages: the limits matter
    workers = [_start_worker(env, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        runs = [sync_jobs.request_initial_sync(realm).id for realm in realms]
        wait_for(lambda: all(_run(r).status == RunStatus.SUCCEEDED for r in runs), 150, "10 backfills", poll=1)
    finally:
        for proc in workers:
            _stop(proc)
    for realm in realms:
        assert_equal_to_source(sim, realm)
        # Customers were complete before the first invoice of that company was written.
        last_customer = db.session.execute(select(func.max(Customer.created_at))
                                           .where(Customer.company_source_id == realm)).scalar_one()
        first_invoice = db.session.execute(select(func.min(Invoice.created_at))
                                           .where(Invoice.company_source_id == realm)).scalar_one()
        assert last_customer <= first_invoice
        stats = sim.stats(realm)
        assert stats["throttled"] == 0, stats
        assert stats["max_in_any_1s_window"] <= 10 and stats["max_in_any_60s_window"] <= 500
        assert stats["peak_concurrency"] <= 10
    for model in (Customer, Invoice):
        total = db.session.execute(select(func.count()).select_from(model)).scalar_one()
        distinct = db.session.execute(select(func.count()).select_from(
            select(model.company_source_id, model.source_id).distinct().subquery())).scalar_one()
        assert total == distinct == len(realms) * (300 if model is Customer else 700)


@pytest.mark.services
def test_sigkilled_consumer_run_is_reaped_and_finished(qbo_app, sandbox_server, tmp_path):
    sim = sandbox_server.sim
    realm = generate(sim, seed=36, customers=400, invoices=3000, tie_size=120)
    connect(sim, realm)
    sim.set_latency(0.15)
    env = _worker_env(sandbox_server, SYNC_PAGE_SIZE="200", SYNC_PAGE_CONCURRENCY="2", SYNC_LEASE_SECONDS="3")
    first = _start_worker(env, tmp_path / "first.log")
    try:
        run = sync_jobs.request_initial_sync(realm)
        wait_for(lambda: _run(run.id).status == RunStatus.RUNNING and db.session.execute(
            select(SyncState.records_synced).where(SyncState.object_type == "invoice")).scalar() or 0,
            60, "the invoice backfill to start")
    finally:
        _stop(first, signal.SIGKILL)
    killed = _run(run.id)
    assert killed.status == RunStatus.RUNNING  # Huey lost the task; only the row remembers it
    synced_at_kill = db.session.execute(select(SyncState.records_synced)
                                        .where(SyncState.object_type == "invoice")).scalar_one()
    assert 0 < synced_at_kill < 3000
    sim.set_latency(0)
    second = _start_worker(env, tmp_path / "second.log")
    try:
        # Nobody else reaps: the new worker re-queues the dead run itself (as it starts, or
        # half a lease later if the lease had not run out yet) and finishes it.
        wait_for(lambda: _run(run.id).status == RunStatus.SUCCEEDED, 90, "the resumed run")
    finally:
        _stop(second)
    assert _run(run.id).attempts == 2
    assert_equal_to_source(sim, realm)
    state = db.session.execute(select(SyncState).where(SyncState.object_type == "invoice")).scalar_one()
    assert state.records_synced == 3000  # resumed from its cursor: nothing counted twice
