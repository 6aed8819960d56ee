"""The periodic side of syncing: the reaper re-queues what a dead worker or a lost task
left; the scheduler queues each company's cycle when its interval has passed."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from sqlalchemy import bindparam, or_, select, text, update

from ..extensions import db
from ..models import Company, ConnectionState, RunKind, RunStatus, SyncRun, utcnow
from ..sync import policy
from . import budget, sync_jobs

log = logging.getLogger(__name__)


def reap_expired_runs(now: datetime | None = None, stale_queued: timedelta = timedelta(minutes=5)) -> list[int]:
    """Re-queue runs whose worker died (lease expired) and queued runs whose task was lost."""
    now = now or utcnow()
    expired = db.session.execute(
        select(SyncRun.id).where(SyncRun.status == RunStatus.RUNNING, SyncRun.lease_expires_at <= now)
    ).scalars().all()
    requeued: list[int] = []
    for run_id in expired:
        result = db.session.execute(
            update(SyncRun).where(SyncRun.id == run_id, SyncRun.status == RunStatus.RUNNING,
                                  SyncRun.lease_expires_at <= now)
            .values(status=RunStatus.QUEUED, lease_expires_at=None,
                    error_message="The worker stopped mid-run; resumed from the last committed page"))
        db.session.commit()
        if result.rowcount == 1:
            requeued.append(run_id)
    lost = db.session.execute(
        select(SyncRun.id).where(SyncRun.status == RunStatus.QUEUED, SyncRun.updated_at <= now - stale_queued)
    ).scalars().all()
    for run_id in set(requeued) | set(lost):
        run = db.session.get(SyncRun, run_id)
        # A duplicate delivery is harmless: only one claim of a queued run succeeds.
        db.session.execute(update(SyncRun).where(SyncRun.id == run_id).values(updated_at=now))
        db.session.commit()
        sync_jobs.enqueue(run)
        log.warning("Re-queued sync run %s of %s", run_id, run.company_source_id)
    return sorted(set(requeued) | set(lost))


BATCH = 500  # companies claimed per statement: short transactions, few round trips


def schedule_due_companies(now: datetime | None = None, batch: int = BATCH) -> list[str]:
    """Queue a cycle for each connected company whose time has come; safe with many schedulers.

    Due companies are claimed ``batch`` at a time: one SELECT … FOR UPDATE SKIP LOCKED (on
    PostgreSQL: a concurrent scheduler takes the next rows instead of waiting), one UPDATE
    of their next slots, one INSERT of their runs, one commit, and the batch's tasks
    enqueued in one pipeline. The partial unique index on ``sync_run`` keeps one active run
    per company: a company that already has one is handed to ``request_sync``, which widens
    a queued run or gives a running one its follow-up, as for any other request. New
    companies get a first slot spread over the interval by a hash of their id.

    The budget governor sets the pace first: while the month's metered calls are at the
    budget nothing is queued (slots are kept and caught up once it lifts); while the
    projection passes it, incremental cycles come at the governor's stretched interval.
    Backfills keep the configured interval.
    """
    now = now or utcnow()
    governance = budget.govern(now)
    if governance.snapshot.paused:
        # Info, once a minute: the banner and the budget alert say it to people.
        log.info("Scheduled syncs paused: %s of %s metered calls used this month",
                 f"{governance.snapshot.used:,}", f"{governance.snapshot.budget:,}")
        return []
    queued: list[str] = []
    while True:
        due = _claim_batch(now, governance, batch)
        if due is None:
            return queued
        queued += _queue_batch(due)


def _claim_batch(now: datetime, governance: budget.Governance, batch: int) -> dict[str, RunKind] | None:
    """Move the next batch of due companies to their next slot (committed); return those to sync
    now with the kind of their cycle, or None when no company is due."""
    rows = db.session.execute(
        select(Company.source_id, Company.next_sync_at, Company.last_webhook_at).where(
            Company.connection_state == ConnectionState.CONNECTED,
            or_(Company.next_sync_at.is_(None), Company.next_sync_at <= now))
        .order_by(Company.source_id).limit(batch).with_for_update(skip_locked=True)).all()
    if not rows:
        db.session.rollback()
        return None
    interval = governance.pace.base
    backfilling = sync_jobs.backfill_pending_among([r.source_id for r in rows if r.next_sync_at is not None])
    slots, due = [], {}
    for source_id, at, last_webhook_at in rows:
        if at is None:  # a new company: its first slot, spread over the interval
            slots.append({"realm": source_id, "slot": policy.first_due(now, interval, source_id)})
            continue
        kind = RunKind.BACKFILL if source_id in backfilling else RunKind.INCREMENTAL
        paced = interval if kind is RunKind.BACKFILL else governance.interval_for(last_webhook_at, now)
        slots.append({"realm": source_id, "slot": policy.next_due(at, now, paced)})
        due[source_id] = kind
    _move_slots(slots)
    db.session.commit()
    return due


def _move_slots(slots: list[dict]) -> None:
    """Write each company's next slot: one statement on PostgreSQL (arrays unnested), one
    executemany on SQLite (the embedded backend's few companies)."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(
            "UPDATE company SET next_sync_at = v.slot FROM unnest(CAST(:realms AS text[]), "
            "CAST(:slots AS timestamptz[])) AS v(realm, slot) WHERE company.source_id = v.realm"),
            {"realms": [s["realm"] for s in slots], "slots": [s["slot"] for s in slots]})
        return
    db.session.connection().execute(
        update(Company.__table__).where(Company.__table__.c.source_id == bindparam("realm"))
        .values(next_sync_at=bindparam("slot")), slots)


def _queue_batch(due: dict[str, RunKind]) -> list[str]:
    """Record a scheduled run for each company (one statement) and enqueue them together."""
    if not due:
        return []
    created = sync_jobs.record_scheduled_runs(due)
    sync_jobs.enqueue_many(created)
    for source_id in due.keys() - {run.company_source_id for run in created}:
        try:  # it has an active run already: widened or given a follow-up, like any request
            sync_jobs.request_sync(source_id, kind=due[source_id], trigger="schedule")
        except sync_jobs.SyncRequestError as exc:
            log.info("Not scheduling %s: %s", source_id, exc)
            del due[source_id]
    return sorted(due)
