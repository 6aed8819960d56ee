"""Services ask for work through the queue port: recorded here without Huey."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dashboard.extensions import db
from dashboard.models import RunKind, RunStatus, SyncRun, utcnow
from dashboard.services import sync_jobs, work_queue
from dashboard.services.sync_schedule import reap_expired_runs
from tests.dashboard import factories as make
from tests.webhooks.test_webhooks import classic, post

# The reaper re-queues a run that has been queued for more than 5 minutes.
PAST_STALE = timedelta(minutes=6)


class RecordingQueue:
    """A work queue that remembers what it was asked, and checks the outbox rule."""

    def __init__(self) -> None:
        self.asked: list[tuple] = []

    def run_sync(self, run_id: int, priority: int) -> None:
        # The run row must be committed before its task is queued: read it in another session.
        with Session(db.engine) as other:
            status = other.execute(select(SyncRun.status).where(SyncRun.id == run_id)).scalar_one()
        self.asked.append(("run_sync", run_id, priority, status))

    def run_syncs(self, runs: list[tuple[int, int]]) -> None:
        self.asked.append(("run_syncs", len(runs)))
        for run_id, priority in runs:
            self.run_sync(run_id, priority)

    def drain_webhooks(self) -> None:
        self.asked.append(("drain_webhooks",))


@pytest.fixture
def recorded(app, db_session, monkeypatch):
    queue = RecordingQueue()
    monkeypatch.setitem(app.extensions, work_queue.EXTENSION, queue)
    make.company("100", "Acme")
    return queue


def test_a_request_is_committed_then_queued_once(recorded):
    run, created = sync_jobs.request_sync("100", kind=RunKind.BACKFILL, trigger="test")
    again, created_again = sync_jobs.request_sync("100", kind=RunKind.INCREMENTAL, trigger="test")
    assert created and not created_again and again.id == run.id
    assert recorded.asked == [("run_sync", run.id, sync_jobs.PRIORITY[RunKind.BACKFILL], RunStatus.QUEUED)]


def test_the_scheduler_claims_in_batches_and_queues_each_batch_at_once(recorded):
    from dashboard.models import Company
    from dashboard.services.sync_schedule import schedule_due_companies

    for i in range(1, 7):
        make.company(str(100 + i), f"Co {i}")
        make.healthy(str(100 + i))
    db.session.execute(update(Company).values(next_sync_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    # One company already has a queued run (a click): the scheduler adds no second one.
    clicked, _ = sync_jobs.request_sync("103", kind=RunKind.INCREMENTAL, trigger="operator", object_type="invoice")
    recorded.asked.clear()
    queued = schedule_due_companies(utcnow(), batch=4)
    realms = ["100"] + [str(100 + i) for i in range(1, 7)]
    assert queued == sorted(realms)
    # 7 companies in batches of 4 and 3; "103" (in the first) had its run already.
    assert [a for a in recorded.asked if a[0] == "run_syncs"] == [("run_syncs", 3), ("run_syncs", 3)]
    runs = db.session.execute(select(SyncRun.company_source_id, SyncRun.trigger, SyncRun.object_type, SyncRun.kind)
                              .where(SyncRun.status == RunStatus.QUEUED).order_by(SyncRun.company_source_id)).all()
    # "100" has no sync_state yet: its first cycle is a backfill; the clicked run was widened to every type.
    assert [(r[0], r[1], r[2]) for r in runs] == [(realm, "operator" if realm == "103" else "schedule", None)
                                                  for realm in realms]
    assert dict((r[0], r[3]) for r in runs)["100"] is RunKind.BACKFILL
    assert {r[3] for r in runs if r[0] != "100"} == {RunKind.INCREMENTAL}
    # Every queued task reads its run committed; the scheduler's second pass finds nothing due.
    assert all(a[3] is RunStatus.QUEUED for a in recorded.asked if a[0] == "run_sync")
    assert schedule_due_companies(utcnow()) == []


def test_the_reaper_queues_a_lost_run_again_through_the_port(recorded):
    run, _ = sync_jobs.request_sync("100", kind=RunKind.INCREMENTAL, trigger="test")
    recorded.asked.clear()  # the queue lost the task: only the row remembers it
    assert reap_expired_runs(now=utcnow() + PAST_STALE) == [run.id]
    assert recorded.asked == [("run_sync", run.id, sync_jobs.PRIORITY[RunKind.INCREMENTAL], RunStatus.QUEUED)]


def test_a_webhook_asks_for_a_drain(recorded, client):
    assert post(client, classic("100")).status_code == 200
    assert recorded.asked == [("drain_webhooks",)]
