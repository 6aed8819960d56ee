"""Huey tasks for sync: wiring only; the work is in ``services.sync_runner``."""
from __future__ import annotations

import os

from .. import queue


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


# Retry policy on the decorator (Huey 3: waits of 1 s, 2 s, 4 s by default).
RETRIES = int(_env_number("SYNC_RETRIES", 3))
RETRY_DELAY = _env_number("SYNC_RETRY_DELAY", 1)
RETRY_BACKOFF = _env_number("SYNC_RETRY_BACKOFF", 2)


@queue.task(retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF, context=True)
def run_sync(run_id: int, task=None) -> None:
    """Execute one recorded sync run (Customers, then Invoices, under the company lock)."""
    from ..services.sync_runner import execute_run

    execute_run(run_id, retries_left=task.retries if task is not None else 0)


def queue_run(run_id: int, priority: int) -> None:
    """Queue the task for a committed run row."""
    queue.huey.enqueue(run_sync.s(run_id, priority=priority))
