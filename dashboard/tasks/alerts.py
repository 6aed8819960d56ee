"""Huey tasks for alerts: a pass every minute, and a drain of each channel's outbox."""
from __future__ import annotations

from types import SimpleNamespace

from flask import Flask
from huey import Huey, crontab

from ..queue import in_app_context
from ..services.alerts import delivery
from ..services.alerts.reconcile import reconcile


def declare(huey: Huey, app: Flask) -> SimpleNamespace:
    """Declare the alert tasks on ``huey``."""

    @huey.periodic_task(crontab(minute="*"))
    @in_app_context(app)
    def check_alerts() -> None:
        """Every minute: open, remind and resolve alerts; queue the drains of waiting messages."""
        reconcile()

    # No Huey retries: a failed message is retried on its own schedule (``next_attempt_at``)
    # by a drain queued for then, while the others go on.
    @huey.task()
    @in_app_context(app)
    def deliver_alerts(channel: str) -> None:
        """Send one channel's waiting alert messages (one drain per channel at a time)."""
        delivery.drain(channel)

    return SimpleNamespace(check_alerts=check_alerts, deliver_alerts=deliver_alerts)
