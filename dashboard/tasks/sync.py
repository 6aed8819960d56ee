"""Huey tasks for sync: wiring only; the work is in ``services.sync_runner``."""
from __future__ import annotations

import logging

from huey import crontab

from .. import queue

log = logging.getLogger(__name__)


# Retry policy on the decorator (Huey 3: waits of 1 s, 2 s, 4 s by default), read from
# the same validated settings the app uses, since Huey binds it at declaration.
RETRIES = int(queue.settings.tuning["SYNC_RETRIES"])
RETRY_DELAY = queue.settings.tuning["SYNC_RETRY_DELAY"]
RETRY_BACKOFF = queue.settings.tuning["SYNC_RETRY_BACKOFF"]


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
