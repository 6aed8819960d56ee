"""Huey tasks for sync: wiring only; the work is in ``services.sync_runner``."""
from __future__ import annotations

import logging
import os

from huey import crontab

from .. import queue

log = logging.getLogger(__name__)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


# Retry policy on the decorator (Huey 3: waits of 1 s, 2 s, 4 s by default).
RETRIES = int(_env_number("SYNC_RETRIES", 3))
RETRY_DELAY = _env_number("SYNC_RETRY_DELAY", 1)
RETRY_BACKOFF = _env_number("SYNC_RETRY_BACKOFF", 2)


@queue.task(retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF, context=True)
def run_sync(run_id: int, task=None) -> None:
    """Execute one recorded sync run (Customers, then Invoices, under the company lock).

    A retryable failure raises, so Huey retries with backoff; the last failure, and any
    failure retrying cannot fix (reconnect required, bad data), is left FAILED on record.
    """
    from ..services.sync_runner import execute_run
    from ..sync.errors import SyncError

    retries_left = task.retries if task is not None else 0
    try:
        execute_run(run_id, retries_left=retries_left)
    except SyncError as exc:
        if exc.retryable and retries_left > 0:
            raise
        log.warning("Sync run %s failed for good: %s", run_id, exc)


def queue_run(run_id: int, priority: int) -> None:
    """Queue the task for a committed run row."""
    queue.huey.enqueue(run_sync.s(run_id, priority=priority))


@queue.periodic_task(crontab(minute="*"))
def schedule_syncs() -> None:
    """Every minute: queue a cycle for each company whose interval has passed."""
    from ..services.sync_runner import schedule_due_companies

    schedule_due_companies()


@queue.periodic_task(crontab(minute="*"))
def reap_sync_runs() -> None:
    """Every minute: re-queue runs whose worker died (their lease expired)."""
    from ..services.sync_runner import reap_expired_runs

    reap_expired_runs()
