"""The periodic side of syncing: the reaper re-queues what a dead worker or a lost task
left; the scheduler queues each company's cycle when its interval has passed."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_, select, update

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


def schedule_due_companies(now: datetime | None = None,
                           request: Callable[..., tuple[SyncRun, bool]] | None = None) -> list[str]:
    """Queue a cycle for each connected company whose time has come; safe with many schedulers.

    Each company is claimed by a compare-and-set on ``next_sync_at``, so when several
    consumers run this at once, exactly one queues it. New companies get a first slot
    spread over the interval by a hash of their id.

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
    interval = governance.pace.base
    request = request or sync_jobs.request_sync
    rows = db.session.execute(
        select(Company.source_id, Company.next_sync_at, Company.last_webhook_at).where(
            Company.connection_state == ConnectionState.CONNECTED,
            or_(Company.next_sync_at.is_(None), Company.next_sync_at <= now))).all()
    queued: list[str] = []
    for source_id, due, last_webhook_at in rows:
        kind = None
        if due is None:
            new, run_now_ = policy.first_due(now, interval, source_id), False
            guard = Company.next_sync_at.is_(None)
        else:
            kind = sync_jobs.resume_kind(source_id)
            paced = interval if kind is RunKind.BACKFILL else governance.interval_for(last_webhook_at, now)
            new, run_now_ = policy.next_due(due, now, paced), True
            guard = Company.next_sync_at == due
        result = db.session.execute(update(Company).where(Company.source_id == source_id, guard)
                                    .values(next_sync_at=new))
        db.session.commit()
        if result.rowcount != 1 or not run_now_:
            continue
        try:
            request(source_id, kind=kind, trigger="schedule")
            queued.append(source_id)
        except sync_jobs.SyncRequestError as exc:
            log.info("Not scheduling %s: %s", source_id, exc)
    return queued
