"""Executing sync runs: claim, lease, company lock, outcome.

A run is claimed atomically (queued → running, attempts + 1), holds the company lock
(so an Invoice sync never overlaps that company's Customer sync, whatever the number
of consumers) and renews its lease from a heartbeat thread. Page commits check the
fence (same attempt, still running), so a cancelled or taken-over run stops at once.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Row, delete, inspect, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import ObjectDeletedError

from .. import logs
from ..extensions import db
from ..locks import Lock, backend
from ..models import Company, ConnectionState, RunKind, RunStatus, SyncRun, utcnow
from ..sync.errors import DatabaseFailure, ReconnectRequired, RunCancelled, RunDeferred, SyncError, Throttled
from . import metrics, parity, sync_jobs, type_switches
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
    """Claim a recorded run and execute it; raise a retryable SyncError when the queue should try again,
    RunDeferred when it should start the run again after a wait (Intuit throttled us)."""
    run = claim(run_id)
    if run is None:
        log.info("Run %s is not claimable (finished, cancelled or running elsewhere)", run_id)
        return None
    return execute_claimed(run, retries_left, progress, defer=True)


def execute_claimed(run: SyncRun, retries_left: int = 0, progress: Progress | None = None,
                    defer: bool = False) -> Summary | None:
    """Execute a run this process claimed, under the company lock; None if it was cancelled.

    ``defer``: a 429 puts the run back in the queue to wait (the queue can run it later);
    without it (the foreground), a 429 is a failure like any other.
    """
    with logs.bound(realm=run.company_source_id, run_id=run.id):  # every line of the run says which
        return _execute_claimed(run, retries_left, progress, defer)


def _execute_claimed(run: SyncRun, retries_left: int, progress: Progress | None, defer: bool) -> Summary | None:
    state = db.session.execute(select(Company.connection_state)
                               .where(Company.source_id == run.company_source_id)).scalar_one()
    if state != ConnectionState.CONNECTED:
        _finish(run, RunStatus.CANCELLED, f"Not synced: the company is {state}")
        return None
    lock = Lock(backend(), f"sync:{run.company_source_id}", ttl=lease_seconds())
    if not lock.acquire(wait=min(30.0, lease_seconds())):
        # Another run of this company (e.g. `sync now`) still works: try again shortly.
        _requeue(run, "Waiting for another sync of this company to finish")
        raise SyncError(f"Company {run.company_source_id} is busy with another sync")
    fence = RunFence(run.id, run.attempts, lock)
    try:
        with Heartbeat(current_app._get_current_object(), fence):
            summary = _run_engine(run, fence, retries_left <= 0, progress, defer)
            if summary is not None:  # our rows now match what we just read: compare counts if due
                parity.after_run(run, fence)
    finally:
        lock.release()
    if summary is None:
        return None
    finished = _finish(run, RunStatus.SUCCEEDED, None, summary)
    if finished is not None:  # not when a cancel or a takeover ended it first
        log.info("Run %s (%s) succeeded: %d records written", fence.run_id, finished.kind.value,
                 sum(summary.records.values()))
        _queue_followup(finished)
    return summary


def _run_engine(run: SyncRun, fence: RunFence, final: bool, progress: Progress | None,
                defer: bool = False) -> Summary | None:
    """Sync the run's object types; record a failure as final or queue the run again, then raise."""
    engine = CompanySync(run.company_source_id, build_client(run.company_source_id), fence,
                         engine_options(), progress)
    try:
        wanted = [run.object_type] if run.object_type else None
        return engine.run(type_switches.enabled_types(run.company_source_id, wanted),
                          full=run.kind == RunKind.FULL_RESYNC and not _reset_done(run), final_attempt=final,
                          force=bool(run.object_type), throttle_waits=defer and _deferrals_left(run))
    except RunCancelled:
        db.session.rollback()
        log.info("Run %s stopped: cancelled or taken over", run.id)
        _count(run, RunStatus.CANCELLED.value)
        return None
    except SyncError as exc:
        streak = _count_deferral(run) if isinstance(exc, Throttled) and defer else None
        if streak is not None:
            wait = exc.retry_after if exc.retry_after is not None else throttle_wait(streak)
            _requeue(run, f"Intuit asked us to slow down (HTTP 429): resuming in {wait:.0f} s", "deferred")
            raise RunDeferred(f"Run {run.id} waits {wait:.0f} s: {exc}", wait) from exc
        final = final or not exc.retryable
        if not final:
            _requeue(run, f"Attempt {run.attempts} failed: {exc}")
        elif isinstance(exc, ReconnectRequired):
            _finish(run, RunStatus.FAILED, str(exc))
            # Only a person can fix this: the company's other runs would fail alike.
            sync_jobs.cancel_company_syncs(run.company_source_id, sync_jobs.RECONNECT_REQUIRED)
        else:
            finished = _finish(run, RunStatus.FAILED, str(exc))
            if finished is not None:
                _queue_followup(finished)
        raise
    except Exception as exc:  # a bug or an unexpected database failure: on record, then retried
        db.session.rollback()
        error = DatabaseFailure(f"Unexpected {type(exc).__name__}: {str(exc)[:300]}")
        if final:
            _finish(run, RunStatus.FAILED, str(error))
        else:
            _requeue(run, f"Attempt {run.attempts} failed: {error}")
        raise error from exc


def _deferral_streak(run: SyncRun) -> tuple[int, int, dict]:
    """429 deferrals in a row with no page saved since, the run's page count and checkpoint (read afresh)."""
    pages, checkpoint = db.session.execute(
        select(SyncRun.pages, SyncRun.checkpoint).where(SyncRun.id == run.id)).one()
    return _streak(pages, checkpoint), pages, dict(checkpoint or {})


def _streak(pages: int, checkpoint: dict | None) -> int:
    checkpoint = checkpoint or {}
    return checkpoint.get("deferrals", 0) if checkpoint.get("deferred_at_pages") == pages else 0


def _deferrals_left(run: SyncRun) -> bool:
    """Whether a 429 may still defer the run (read from the row as just claimed)."""
    return _streak(run.pages, run.checkpoint) < option("SYNC_THROTTLE_DEFERRALS", int)


def _count_deferral(run: SyncRun) -> int | None:
    """Record one more 429 deferral and return how many came before it in a row; None once
    SYNC_THROTTLE_DEFERRALS came in a row without a page saved in between (then the 429 is a
    failure, retried and shown like others)."""
    db.session.rollback()
    streak, pages, checkpoint = _deferral_streak(run)
    if streak >= option("SYNC_THROTTLE_DEFERRALS", int):
        return None
    checkpoint.update(deferrals=streak + 1, deferred_at_pages=pages)
    db.session.execute(update(SyncRun).where(SyncRun.id == run.id).values(checkpoint=checkpoint))
    db.session.commit()
    return streak


def throttle_wait(streak: int) -> float:
    """The wait after a 429 without Retry-After: 5 s, then doubling to QBO_THROTTLE_WAIT (Intuit
    says a minute). A lone 429 (a window's edge met under network jitter) costs seconds; one
    that persists backs off to the minute."""
    return min(option("QBO_THROTTLE_WAIT"), 5.0 * 2 ** streak)


def _note_checked(run: Row, summary: Summary) -> None:
    """Record when the company was last checked; fold a scheduled cycle that changed nothing
    into the company's idle count instead of keeping its row (the caller commits)."""
    idle = (run.kind == RunKind.INCREMENTAL and run.trigger == "schedule" and run.object_type is None
            and run.attempts == 1 and not summary.changed and not (run.checkpoint or {}).get("followup"))
    changes = {"last_checked_at": run.finished_at or utcnow()}
    if idle:
        changes["idle_cycles"] = Company.idle_cycles + 1
        db.session.execute(delete(SyncRun).where(SyncRun.id == run.id, SyncRun.status == RunStatus.SUCCEEDED))
    db.session.execute(update(Company).where(Company.source_id == run.company_source_id).values(**changes))


def _reset_done(run: SyncRun) -> bool:
    """A full resync resets its cursors once; a resumed attempt continues the new backfill."""
    checkpoint = dict(run.checkpoint or {})
    if checkpoint.get("reset_done"):
        return True
    checkpoint["reset_done"] = True
    db.session.execute(update(SyncRun).where(SyncRun.id == run.id).values(checkpoint=checkpoint))
    db.session.commit()
    return False


# What happens after a run ends is decided on the row as it ended (a follow-up asked for
# while it ran is in its checkpoint): returned by the UPDATE that ends it.
ENDED = (SyncRun.id, SyncRun.company_source_id, SyncRun.kind, SyncRun.trigger, SyncRun.object_type,
         SyncRun.attempts, SyncRun.checkpoint, SyncRun.started_at, SyncRun.finished_at)


def _finish(run: SyncRun, status: RunStatus, error: str | None, summary: Summary | None = None) -> Row | None:
    """End a running run; return it as ended, or None if a cancel or a takeover ended it first.

    With the ``summary`` of a success, the company's check is noted in the same transaction
    (``_note_checked``): a follow-up asked for meanwhile waits for this row's lock, then
    finds the run ended and queues a run of its own.
    """
    run_id = inspect(run).identity[0]  # the key, without reloading a row the rollback expired
    db.session.rollback()
    ended = db.session.execute(
        update(SyncRun).where(SyncRun.id == run_id, SyncRun.status == RunStatus.RUNNING)
        .values(status=status, finished_at=utcnow(), lease_expires_at=None, error_message=error)
        .returning(*ENDED).execution_options(synchronize_session=False)).one_or_none()
    if ended is not None:
        # The caller's object shows the row as it ended, without reading it again.
        for key, value in {**ended._mapping, "status": status, "error_message": error,
                           "lease_expires_at": None}.items():
            set_committed_value(run, key, value)
        if summary is not None:
            _note_checked(ended, summary)
    db.session.commit()
    if ended is not None:
        _count(ended, status.value)
    return ended


def _requeue(run: SyncRun, message: str, outcome: str = "retried") -> None:
    db.session.rollback()
    result = db.session.execute(update(SyncRun).where(SyncRun.id == run.id, SyncRun.status == RunStatus.RUNNING)
                                .values(status=RunStatus.QUEUED, lease_expires_at=None, error_message=message))
    db.session.commit()
    if result.rowcount == 1:
        _count(run, outcome)


def _count(run: SyncRun | Row, outcome: str) -> None:
    """Count one ended attempt of ``run`` and how long it took since its claim."""
    try:
        kind, started = run.kind, run.started_at
    except ObjectDeletedError:  # its company was deleted meanwhile: nothing left to count
        return
    seconds = (utcnow() - started).total_seconds() if started is not None else None
    metrics.run_ended(RunKind(kind).value, outcome, seconds)


def _queue_followup(run: Row) -> None:
    """Queue the follow-up asked for while the (ended) run ran, if any."""
    followup = (run.checkpoint or {}).get("followup")
    if not followup:
        return
    try:
        sync_jobs.request_sync(run.company_source_id, kind=RunKind(followup["kind"]), trigger="followup",
                               object_type=followup.get("object_type"))
    except sync_jobs.SyncRequestError as exc:
        log.info("Follow-up of run %s not queued: %s", run.id, exc)
