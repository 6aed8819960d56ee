"""The companies list's cheaper reads keep what it shows: every field of a type's status, a running
type's progress, a failure's message and a parity failure, with 28 types per company."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from tests.dashboard import factories as make


def test_object_status_sets_every_field_and_stays_frozen():
    from dashboard.models import SyncStatus, utcnow
    from dashboard.services.overview_models import ObjectStatus, object_status

    now = utcnow()
    state = type("State", (), dict(
        status=SyncStatus.FAILED, is_initial_backfill_completed=True, initial_attempt_time=now,
        last_attempt_time=now, last_successful_sync_time=now - timedelta(hours=1), records_synced=5,
        records_total=5, error_message="boom", error_kind="server", attempts=3, last_failed_at=now,
        parity_checked_at=None, parity_source_count=None, parity_local_count=None, parity_drifts=0))()
    status = object_status("invoice", "Invoices", state, False, None, 5, now)
    assert isinstance(status, ObjectStatus)
    assert set(vars(status)) == {f.name for f in dataclasses.fields(ObjectStatus)}
    assert (status.state, status.error_message, status.attempts, status.last_failed_at) == ("failed", "boom", 3, now)
    assert status == ObjectStatus(**vars(status))
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.state = "synced"


def test_the_list_shows_progress_failures_and_parity_failures_of_28_types(app, signed_in):
    from sqlalchemy import update

    from dashboard.extensions import db
    from dashboard.models import RunStatus, SyncState, SyncStatus, utcnow
    from dashboard.sync import specs

    now = utcnow()
    with app.app_context():
        make.company("100", "Alpha")
        make.healthy("100", types=tuple(specs.SPECS), records={"customer": 7, "invoice": 3})
        db.session.execute(update(SyncState).where(SyncState.object_type == "invoice").values(
            status=SyncStatus.FAILED, error_message="Intuit answered 500 three times", attempts=3,
            last_failed_at=now, last_attempt_time=now))  # failed in the running run: done with, not queued
        db.session.execute(update(SyncState).where(SyncState.object_type == "vendor").values(
            parity_checked_at=now, parity_source_count=9, parity_local_count=8, parity_drifts=2))
        db.session.execute(update(SyncState).where(SyncState.object_type == "bill").values(
            status=SyncStatus.IN_PROGRESS, is_initial_backfill_completed=False, records_synced=25,
            records_total=100, initial_attempt_time=now - timedelta(minutes=1)))
        make.run("100", status=RunStatus.RUNNING, started_at=now - timedelta(minutes=1))
        db.session.remove()
    html = signed_in.get("/").get_data(as_text=True)
    assert "Invoices: Intuit answered 500 three times" in html
    assert "1 out of parity" in html and "Out of parity: Vendors" in html
    assert "25%" in html  # the running type's progress, from its backfill's start
    # The others synced before the run started: queued in it (their last attempt is read for that).
    assert "1 failed" in html and "1 running" in html and "26 queued" in html
