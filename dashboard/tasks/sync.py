"""Huey tasks for sync: wiring only; the work is in ``services.sync_runner``."""
from __future__ import annotations

import logging
from types import SimpleNamespace

from flask import Flask
from huey import Huey, crontab
from huey.exceptions import RetryTask

from ..queue import in_app_context
from ..services.sync_runner import execute_run
from ..services.sync_schedule import schedule_due_companies
from ..sync.errors import RunDeferred, SyncError

log = logging.getLogger(__name__)


def declare(huey: Huey, app: Flask) -> SimpleNamespace:
    """Declare the sync tasks on ``huey``, their retry policy read from ``app``'s settings."""
    config = app.config

    # Retry policy on the decorator (Huey 3: waits of 1 s, 2 s, 4 s by default).
    @huey.task(retries=int(config["SYNC_RETRIES"]), retry_delay=config["SYNC_RETRY_DELAY"],
               retry_backoff=config["SYNC_RETRY_BACKOFF"], context=True)
    @in_app_context(app)
    def run_sync(run_id: int, task=None) -> None:
        """Execute one recorded sync run (every object type in dependency order, under the company lock).

        A retryable failure raises, so Huey retries with backoff; the last failure, and any
        failure retrying cannot fix (reconnect required, bad data), is left FAILED on record.
        """
        retries_left = task.retries if task is not None else 0
        try:
            execute_run(run_id, retries_left=retries_left)
        except RunDeferred as exc:
            raise RetryTask(delay=exc.delay) from exc  # Huey spends no retry on this
        except SyncError as exc:
            if exc.retryable and retries_left > 0:
                raise
            log.warning("Sync run %s failed for good: %s", run_id, exc)

    @huey.periodic_task(crontab(minute="*"))
    @in_app_context(app)
    def schedule_syncs() -> None:
        """Every minute: queue a cycle for each company whose interval has passed."""
        schedule_due_companies()

    return SimpleNamespace(run_sync=run_sync, schedule_syncs=schedule_syncs)
