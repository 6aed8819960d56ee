"""Huey tasks for webhooks: drain the inbox right away, and every minute as a safety net."""
from __future__ import annotations

from huey import crontab

from .. import queue


@queue.task(retries=3, retry_delay=5)
def drain_webhook_inbox() -> None:
    """Queue the syncs that stored webhook deliveries ask for."""
    from ..services.webhooks import drain

    drain()


@queue.periodic_task(crontab(minute="*"))
def drain_webhook_inbox_periodically() -> None:
    """Catch deliveries whose drain task was lost (queue down, worker killed)."""
    from ..services.webhooks import drain

    drain()
