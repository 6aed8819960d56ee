"""Services ask for work through the queue port: recorded here without Huey."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
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


def test_the_reaper_queues_a_lost_run_again_through_the_port(recorded):
    run, _ = sync_jobs.request_sync("100", kind=RunKind.INCREMENTAL, trigger="test")
    recorded.asked.clear()  # the queue lost the task: only the row remembers it
    assert reap_expired_runs(now=utcnow() + PAST_STALE) == [run.id]
    assert recorded.asked == [("run_sync", run.id, sync_jobs.PRIORITY[RunKind.INCREMENTAL], RunStatus.QUEUED)]


def test_a_webhook_asks_for_a_drain(recorded, client):
    assert post(client, classic("100")).status_code == 200
    assert recorded.asked == [("drain_webhooks",)]
