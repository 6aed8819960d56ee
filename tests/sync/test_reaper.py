"""A worker reaps dead runs as it starts and then every half lease, not once a minute."""
from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import RunStatus, SyncRun, utcnow
from dashboard.tasks.consumer import Reaper
from tests.dashboard import factories as make


def _status(run_id: int) -> RunStatus:
    db.session.rollback()
    return db.session.execute(select(SyncRun.status).where(SyncRun.id == run_id)).scalar_one()


def test_the_reaper_follows_the_lease(app):
    saved = app.config["SYNC_LEASE_SECONDS"]
    try:
        for lease, every in ((8, 4.0), (60, 5.0), (600, 5.0), (1, 1.0)):
            app.config["SYNC_LEASE_SECONDS"] = lease
            assert Reaper(app).every == every
    finally:
        app.config["SYNC_LEASE_SECONDS"] = saved


def test_a_starting_worker_requeues_a_dead_run_at_once(app, db_session):
    make.company("100", "Acme")
    make.company("200", "Globex")
    make.run("100", status=RunStatus.RUNNING, lease_expires_at=utcnow() - timedelta(seconds=1))
    make.run("200", status=RunStatus.RUNNING, lease_expires_at=utcnow() + timedelta(hours=1))  # alive: kept
    dead, alive = db.session.execute(select(SyncRun.id).order_by(SyncRun.id)).scalars().all()
    saved = app.config["SYNC_LEASE_SECONDS"]
    app.config["SYNC_LEASE_SECONDS"] = 600  # the next pass is 5 s away: only the first one can act
    reaper = Reaper(app)
    reaper.start()
    try:
        deadline = time.monotonic() + 20
        while _status(dead) is not RunStatus.QUEUED and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _status(dead) is RunStatus.QUEUED and _status(alive) is RunStatus.RUNNING
    finally:
        reaper.stopped.set()
        reaper.join(5)
        app.config["SYNC_LEASE_SECONDS"] = saved
    assert not reaper.is_alive()
