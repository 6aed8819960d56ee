"""Executing sync runs: claim, lease, company lock, outcome; the reaper and the scheduler.

A run is claimed atomically (queued → running, attempts + 1), holds the company lock
(so an Invoice sync never overlaps that company's Customer sync, whatever the number
of consumers) and renews its lease from a heartbeat thread. Page commits check the
fence (same attempt, still running), so a cancelled or taken-over run stops at once.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import or_, select, update

from ..extensions import db
from ..locks import Lock, backend
from ..models import Company, ConnectionState, RunKind, RunStatus, SyncRun, utcnow
from ..sync import policy
from ..sync.errors import DatabaseFailure, ReconnectRequired, RunCancelled, SyncError
from . import sync_jobs
from .sync_client import build_client, option
from .sync_engine import CompanySync, EngineOptions, Progress, Summary

log = logging.getLogger(__name__)


def lease_seconds() -> float:
    return option("SYNC_LEASE_SECONDS")


def engine_options() -> EngineOptions:
    return EngineOptions(page_size=option("SYNC_PAGE_SIZE", int),
                         concurrency=option("SYNC_PAGE_CONCURRENCY", int),
                         overlap=timedelta(seconds=option("SYNC_OVERLAP_SECONDS")),
                         cdc_cap=option("QBO_CDC_MAX_OBJECTS", int))


class RunFence:
    """The claim of one attempt on its run row, checked and extended in each page's transaction."""

    def __init__(self, run_id: int, attempt: int, lock: Lock) -> None:
        self.run_id, self.attempt, self.lock = run_id, attempt, lock

    def _owned(self):
        return (SyncRun.id == self.run_id, SyncRun.attempts == self.attempt, SyncRun.status == RunStatus.RUNNING)

    def beat(self, *, pages: int = 0, records: int = 0, requests: int = 0) -> None:
        result = db.session.execute(
            update(SyncRun).where(*self._owned()).values(
                pages=SyncRun.pages + pages, records_written=SyncRun.records_written + records,
                requests=SyncRun.requests + requests,
                lease_expires_at=utcnow() + timedelta(seconds=lease_seconds())))
        if result.rowcount != 1:
            raise RunCancelled(f"Run {self.run_id} was cancelled or taken over")

    def renew_lease(self) -> bool:
        """Extend the lease and the company lock in their own transaction (heartbeat thread)."""
        with db.engine.begin() as conn:
            result = conn.execute(update(SyncRun).where(*self._owned()).values(
                lease_expires_at=utcnow() + timedelta(seconds=lease_seconds())))
        self.lock.renew()
        return result.rowcount == 1


class Heartbeat:
    """Renew the lease every third of its length while a run works (a killed worker stops it)."""

    def __init__(self, app, fence: RunFence) -> None:
        self.app, self.fence = app, fence
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{fence.run_id}", daemon=True)

    def _loop(self) -> None:
        with self.app.app_context():
            interval = max(0.2, lease_seconds() / 3)
            while not self._stop.wait(interval):
                try:
                    if not self.fence.renew_lease():
                        return
                except Exception:  # a transient database error: the next beat tries again
                    log.exception("Could not renew the lease of run %s", self.fence.run_id)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def claim(run_id: int, now: datetime | None = None) -> SyncRun | None:
    """Take a queued run (or one whose lease expired); None if someone else has it or it ended."""
    now = now or utcnow()
    result = db.session.execute(
        update(SyncRun).where(SyncRun.id == run_id, or_(
            SyncRun.status == RunStatus.QUEUED,
            (SyncRun.status == RunStatus.RUNNING) & (SyncRun.lease_expires_at <= now)))
        .values(status=RunStatus.RUNNING, attempts=SyncRun.attempts + 1,
                lease_expires_at=now + timedelta(seconds=lease_seconds()), started_at=now))
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.get(SyncRun, run_id, populate_existing=True)


def execute_run(run_id: int, retries_left: int = 0, progress: Progress | None = None) -> Summary | None:
    """Claim a recorded run and execute it; raise a retryable SyncError when the queue should try again."""
    run = claim(run_id)
    if run is None:
        log.info("Run %s is not claimable (finished, cancelled or running elsewhere)", run_id)
        return None
    return execute_claimed(run, retries_left, progress)


def execute_claimed(run: SyncRun, retries_left: int = 0, progress: Progress | None = None) -> Summary | None:
    """Execute a run this process claimed, under the company lock; None if it was cancelled."""
    company = db.session.execute(select(Company).where(Company.source_id == run.company_source_id)).scalar_one()
    if company.connection_state != ConnectionState.CONNECTED:
        _finish(run, RunStatus.CANCELLED, f"Not synced: the company is {company.connection_state}")
        return None
    lock = Lock(backend(), f"sync:{run.company_source_id}", ttl=lease_seconds())
    if not lock.acquire(wait=min(30.0, lease_seconds())):
        # Another run of this company (e.g. `sync now`) still works: try again shortly.
        _requeue(run, "Waiting for another sync of this company to finish")
        raise SyncError(f"Company {run.company_source_id} is busy with another sync")
    fence = RunFence(run.id, run.attempts, lock)
    try:
        with Heartbeat(current_app._get_current_object(), fence):
            summary = _run_engine(run, fence, retries_left <= 0, progress)
    finally:
        lock.release()
    if summary is None:
        return None
    _finish(run, RunStatus.SUCCEEDED, None)
    _queue_followup(run)
    return summary


def _run_engine(run: SyncRun, fence: RunFence, final: bool, progress: Progress | None) -> Summary | None:
    """Sync the run's object types; record a failure as final or queue the run again, then raise."""
    engine = CompanySync(run.company_source_id, build_client(run.company_source_id), fence,
                         engine_options(), progress)
    try:
        return engine.run([run.object_type] if run.object_type else None,
                          full=run.kind == RunKind.FULL_RESYNC and not _reset_done(run), final_attempt=final)
    except RunCancelled:
        db.session.rollback()
        log.info("Run %s stopped: cancelled or taken over", run.id)
        return None
    except SyncError as exc:
        final = final or not exc.retryable
        if not final:
            _requeue(run, f"Attempt {run.attempts} failed: {exc}")
        elif isinstance(exc, ReconnectRequired):
            _finish(run, RunStatus.FAILED, str(exc))
            # Only a person can fix this: the company's other runs would fail alike.
            sync_jobs.cancel_company_syncs(run.company_source_id, sync_jobs.RECONNECT_REQUIRED)
        else:
            _finish(run, RunStatus.FAILED, str(exc))
            _queue_followup(run)
        raise
    except Exception as exc:  # a bug or an unexpected database failure: on record, then retried
        db.session.rollback()
        error = DatabaseFailure(f"Unexpected {type(exc).__name__}: {str(exc)[:300]}")
        if final:
            _finish(run, RunStatus.FAILED, str(error))
        else:
            _requeue(run, f"Attempt {run.attempts} failed: {error}")
        raise error from exc


def _reset_done(run: SyncRun) -> bool:
    """A full resync resets its cursors once; a resumed attempt continues the new backfill."""
    checkpoint = dict(run.checkpoint or {})
    if checkpoint.get("reset_done"):
        return True
    checkpoint["reset_done"] = True
    db.session.execute(update(SyncRun).where(SyncRun.id == run.id).values(checkpoint=checkpoint))
    db.session.commit()
    return False


def _finish(run: SyncRun, status: RunStatus, error: str | None) -> None:
    db.session.rollback()
    db.session.execute(update(SyncRun).where(SyncRun.id == run.id, SyncRun.status == RunStatus.RUNNING).values(
        status=status, finished_at=utcnow(), lease_expires_at=None, error_message=error))
    db.session.commit()


def _requeue(run: SyncRun, message: str) -> None:
    db.session.rollback()
    db.session.execute(update(SyncRun).where(SyncRun.id == run.id, SyncRun.status == RunStatus.RUNNING).values(
        status=RunStatus.QUEUED, lease_expires_at=None, error_message=message))
    db.session.commit()


def _queue_followup(run: SyncRun) -> None:
    db.session.refresh(run)
    followup = (run.checkpoint or {}).get("followup")
    if not followup:
        return
    try:
        sync_jobs.request_sync(run.company_source_id, kind=RunKind(followup["kind"]), trigger="followup",
                               object_type=followup.get("object_type"))
    except sync_jobs.SyncRequestError as exc:
        log.info("Follow-up of run %s not queued: %s", run.id, exc)


# -- the foreground path (`flask sync now`) ---------------------------------------------
FOLLOW_POLL_SECONDS = 1.0


class RunningElsewhere(Exception):
    """The company's run is running in another process (only one runs at a time)."""

    def __init__(self, run: SyncRun, covers: bool) -> None:
        super().__init__(f"Run #{run.id} ({run.kind}) is running elsewhere for {run.company_source_id}")
        self.run_id, self.covers = run.id, covers


@dataclass(frozen=True)
class Outcome:
    """How `sync now` ended for one company."""

    run_id: int
    status: RunStatus            # RUNNING: left running elsewhere (not waited for)
    summary: Summary | None = None   # the run ran here
    elsewhere: bool = False      # another process ran it
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (RunStatus.SUCCEEDED, RunStatus.RUNNING)


def foreground_kind(company_source_id: str, full: bool) -> RunKind:
    """Return the kind `sync now` asks for: a full resync, or the company's next cycle."""
    return RunKind.FULL_RESYNC if full else sync_jobs.resume_kind(company_source_id)


def take_over(company_source_id: str, kind: RunKind, object_type: str | None = None) -> SyncRun:
    """Claim the run that answers this request here: the queued one, a dead worker's, or a new one.

    The same claim a worker makes decides who runs it, so a worker that takes it first
    wins and this raises RunningElsewhere, as it does for a run another process runs.
    """
    for _ in range(3):  # the run may end between our read and our claim: then record anew
        run, _created = sync_jobs.record_sync(company_source_id, kind=kind, trigger="cli",
                                              object_type=object_type, follow_up=False)
        claimed = claim(run.id)
        if claimed is not None:
            return claimed
        db.session.refresh(run)
        if run.status == RunStatus.RUNNING:
            raise RunningElsewhere(run, sync_jobs.covers(run, kind, object_type))
    raise RunCancelled(f"Run #{run.id} of {company_source_id} ended before it could be taken over")


def run_now(company_source_id: str, object_type: str | None = None, full: bool = False,
            progress: Progress | None = None) -> Summary:
    """Run the company's sync here, in the foreground; raise SyncError on failure, RunningElsewhere if busy."""
    run = take_over(company_source_id, foreground_kind(company_source_id, full), object_type)
    summary = execute_claimed(run, retries_left=0, progress=progress)
    if summary is None:
        raise RunCancelled(f"Run #{run.id} did not run (cancelled)")
    return summary


def follow_run(run_id: int, progress: Progress | None = None, pause: Callable[[float], None] = time.sleep,
               poll: float = FOLLOW_POLL_SECONDS) -> SyncRun | None:
    """Watch a run another process executes until it ends and return it.

    None if it went back to the queue or its worker died (lease expired): it can be taken over.
    """
    reported = None
    while True:
        db.session.rollback()  # end the read: each look sees what the worker committed since
        run = db.session.get(SyncRun, run_id, populate_existing=True)
        if run.status not in sync_jobs.ACTIVE:
            return run
        if run.status == RunStatus.QUEUED or (run.lease_expires_at is not None
                                              and run.lease_expires_at <= utcnow()):
            return None
        if progress and run.records_written != reported:
            reported = run.records_written
            progress(f"run #{run_id}", reported, None)
        pause(poll)


def sync_now(company_source_id: str, object_type: str | None = None, full: bool = False,
             progress: Progress | None = None, *, wait: bool = True,
             pause: Callable[[float], None] = time.sleep) -> Outcome:
    """Sync a company now: run its waiting run here, follow the one running elsewhere, or record one.

    A followed run that does not cover the request (a full resync asked while an incremental
    ran) is followed to its end, then the request runs here. Never two runs of one company
    at once: the claim and the company lock decide.
    """
    kind = foreground_kind(company_source_id, full)
    while True:
        try:
            run = take_over(company_source_id, kind, object_type)
        except RunningElsewhere as busy:
            if not wait:
                if not busy.covers:  # the worker runs it after this one
                    sync_jobs.request_sync(company_source_id, kind=kind, trigger="cli", object_type=object_type)
                return Outcome(busy.run_id, RunStatus.RUNNING, elsewhere=True)
            ended = follow_run(busy.run_id, progress, pause)
            if ended is not None and busy.covers:
                return Outcome(ended.id, ended.status, elsewhere=True, error=ended.error_message)
            continue  # take it over (back in the queue, or its worker died), or run ours after it
        try:
            summary = execute_claimed(run, retries_left=0, progress=progress)
        except SyncError as exc:
            return Outcome(run.id, RunStatus.FAILED, error=str(exc))
        if summary is None:
            db.session.refresh(run)
            return Outcome(run.id, run.status, error=run.error_message or "cancelled")
        return Outcome(run.id, RunStatus.SUCCEEDED, summary=summary)


# -- the reaper ---------------------------------------------------------------------------
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


# -- the scheduler ------------------------------------------------------------------------
def schedule_due_companies(now: datetime | None = None,
                           request: Callable[..., tuple[SyncRun, bool]] | None = None) -> list[str]:
    """Queue a cycle for each connected company whose time has come; safe with many schedulers.

    Each company is claimed by a compare-and-set on ``next_sync_at``, so when several
    consumers run this at once, exactly one queues it. New companies get a first slot
    spread over the interval by a hash of their id.
    """
    now = now or utcnow()
    interval = timedelta(minutes=current_app.config["SETTINGS"].sync_interval_minutes)
    request = request or sync_jobs.request_sync
    rows = db.session.execute(
        select(Company.source_id, Company.next_sync_at).where(
            Company.connection_state == ConnectionState.CONNECTED,
            or_(Company.next_sync_at.is_(None), Company.next_sync_at <= now))).all()
    queued: list[str] = []
    for source_id, due in rows:
        if due is None:
            new, run_now_ = policy.first_due(now, interval, source_id), False
            guard = Company.next_sync_at.is_(None)
        else:
            new, run_now_ = policy.next_due(due, now, interval), True
            guard = Company.next_sync_at == due
        result = db.session.execute(update(Company).where(Company.source_id == source_id, guard)
                                    .values(next_sync_at=new))
        db.session.commit()
        if result.rowcount != 1 or not run_now_:
            continue
        try:
            request(source_id, kind=sync_jobs.resume_kind(source_id), trigger="schedule")
            queued.append(source_id)
        except sync_jobs.SyncRequestError as exc:
            log.info("Not scheduling %s: %s", source_id, exc)
    return queued
