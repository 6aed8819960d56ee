"""Huey tasks for webhooks: drain the inbox right away, and every minute as a safety net."""
from __future__ import annotations

from types import SimpleNamespace

from flask import Flask
from huey import Huey, crontab

from ..queue import in_app_context
from ..services.webhooks import drain


def declare(huey: Huey, app: Flask) -> SimpleNamespace:
    """Declare the webhook tasks on ``huey``."""

    @huey.task(retries=3, retry_delay=5)
    @in_app_context(app)
    def drain_webhook_inbox() -> None:
        """Queue the syncs that stored webhook deliveries ask for."""
        drain()

    @huey.periodic_task(crontab(minute="*"))
    @in_app_context(app)
    def drain_webhook_inbox_periodically() -> None:
        """Catch deliveries whose drain task was lost (queue down, worker killed)."""
        drain()

    return SimpleNamespace(drain_webhook_inbox=drain_webhook_inbox,
                           drain_webhook_inbox_periodically=drain_webhook_inbox_periodically)
