"""Huey tasks: wiring only, a few lines each that call a service.

``install`` declares every task on an app's Huey instance (with the retry policy of
the app's settings) and installs the queue port the services use to ask for work.
"""
from __future__ import annotations

from types import SimpleNamespace

from flask import Flask
from huey import Huey

from ..services import work_queue
from . import alerts, retention, sync, tokens, webhooks

EXTENSION = "tasks"


class HueyWorkQueue:
    """The queue port on Huey: each request is one task message."""

    def __init__(self, huey: Huey, tasks: SimpleNamespace) -> None:
        self.huey, self.tasks = huey, tasks

    def run_sync(self, run_id: int, priority: int) -> None:
        self.huey.enqueue(self.tasks.run_sync.s(run_id, priority=priority))

    def drain_webhooks(self) -> None:
        self.tasks.drain_webhook_inbox()

    def deliver_alerts(self, channel: str, delay: float = 0.0) -> None:
        if delay > 0:
            self.tasks.deliver_alerts.schedule((channel,), delay=delay)
        else:
            self.tasks.deliver_alerts(channel)


def install(app: Flask, huey: Huey) -> SimpleNamespace:
    """Declare the tasks on ``huey`` for ``app`` and make them the app's work queue."""
    declared = SimpleNamespace(**vars(sync.declare(huey, app)), **vars(tokens.declare(huey, app)),
                               **vars(webhooks.declare(huey, app)), **vars(retention.declare(huey, app)),
                               **vars(alerts.declare(huey, app)))
    app.extensions[EXTENSION] = declared
    work_queue.install(app, HueyWorkQueue(huey, declared))
    return declared
