"""The foreground path (`flask sync now`): run a company's sync here, now.

The queued run is taken over by the same claim a worker makes; a run another process is
running is followed to its end; otherwise a run is recorded and run here. Never two runs
of one company at once: the claim and the company lock decide.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..extensions import db
from ..models import RunKind, RunStatus, SyncRun, utcnow
from ..sync.errors import RunCancelled, SyncError
from . import sync_jobs, sync_runner
from .sync_engine import Progress, Summary

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
        claimed = sync_runner.claim(run.id)
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
    summary = sync_runner.execute_claimed(run, retries_left=0, progress=progress)
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
            summary = sync_runner.execute_claimed(run, retries_left=0, progress=progress)
        except SyncError as exc:
            return Outcome(run.id, RunStatus.FAILED, error=str(exc))
        if summary is None:
            db.session.refresh(run)
            return Outcome(run.id, run.status, error=run.error_message or "cancelled")
        return Outcome(run.id, RunStatus.SUCCEEDED, summary=summary)
