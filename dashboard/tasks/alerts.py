"""Huey tasks for alerts: a pass every minute, and each delivery on its own with retries."""
from __future__ import annotations

import logging
from types import SimpleNamespace

from flask import Flask, current_app
from huey import Huey, crontab
from huey.api import Task, TaskWrapper

from ..queue import in_app_context
from ..services.alerts import delivery
from ..services.alerts.reconcile import reconcile

log = logging.getLogger(__name__)


def declare(huey: Huey, app: Flask) -> SimpleNamespace:
    """Declare the alert tasks on ``huey``, their retry policy read from ``app``'s settings."""
    config = app.config

    @huey.periodic_task(crontab(minute="*"))
    @in_app_context(app)
    def check_alerts() -> None:
        """Every minute: open, remind and resolve alerts; queue their messages."""
        reconcile()

    # Its own task per message: a channel that hangs holds one worker thread for at most
    # ALERT_DELIVERY_TIMEOUT per attempt, and never a sync. The retry policy travels with
    # each message (``delivery_message``); these are the defaults.
    @huey.task(retries=int(config["ALERT_DELIVERY_RETRIES"]), retry_delay=config["ALERT_RETRY_DELAY"],
               retry_backoff=config["ALERT_RETRY_BACKOFF"], context=True)
    @in_app_context(app)
    def deliver_alert(delivery_id: int, task=None) -> None:
        """Send one recorded alert message; raise (so Huey retries with backoff) while retries are left."""
        delivery.deliver(delivery_id, final=task is None or task.retries <= 0)

    return SimpleNamespace(check_alerts=check_alerts, deliver_alert=deliver_alert)


def delivery_message(task: TaskWrapper, delivery_id: int) -> Task:
    """The task message of one delivery, with the current settings' retry policy."""
    config = current_app.config
    return task.s(delivery_id, retries=int(config["ALERT_DELIVERY_RETRIES"]),
                  retry_delay=float(config["ALERT_RETRY_DELAY"]), retry_backoff=float(config["ALERT_RETRY_BACKOFF"]))
