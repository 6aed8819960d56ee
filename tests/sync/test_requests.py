"""request_sync against a worker that claims or finishes the run between our read and our write."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from dashboard.extensions import db
from dashboard.models import RunKind, RunStatus, SyncRun
from dashboard.services import sync_jobs
from tests.dashboard import factories as make


@pytest.fixture
def realm(db_session):
    make.company("100", "Acme")
    make.healthy("100")
    return "100"


def _stale_run(realm: str, status: RunStatus, now_status: RunStatus, monkeypatch, **columns) -> SyncRun:
    """A run read as ``status`` that a worker moved to ``now_status`` right after our read."""
    make.run(realm, status=status, **columns)
    run = db.session.execute(select(SyncRun)).scalar_one()
    with db.engine.begin() as other_process:
        other_process.execute(update(SyncRun).where(SyncRun.id == run.id).values(status=now_status))
    monkeypatch.setattr(sync_jobs, "active_run", lambda *_args, **_kwargs: run)
    return run


@pytest.mark.parametrize("read_as", [RunStatus.QUEUED, RunStatus.RUNNING])
def test_a_request_for_a_run_that_just_finished_queues_a_new_run(realm, monkeypatch, read_as):
    stale = _stale_run(realm, read_as, RunStatus.SUCCEEDED, monkeypatch, object_type="customer")
    run, created = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="webhook", object_type="invoice")
    assert created and run.id != stale.id
    # A follow-up written on the finished run would never have been read.
    assert not (db.session.get(SyncRun, stale.id).checkpoint or {}).get("followup")


def test_a_request_for_a_run_just_claimed_becomes_its_follow_up(realm, monkeypatch):
    stale = _stale_run(realm, RunStatus.QUEUED, RunStatus.RUNNING, monkeypatch, object_type="customer")
    run, created = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="webhook", object_type="invoice")
    assert not created and run.id == stale.id
    stored = db.session.get(SyncRun, stale.id, populate_existing=True)
    # Widening a run that already chose what to read would be lost: it takes a follow-up.
    assert stored.object_type == "customer"
    assert stored.checkpoint["followup"] == {"kind": "incremental", "object_type": "invoice"}
