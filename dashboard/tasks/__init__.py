"""Huey tasks: wiring only, a few lines each that call a service.

``install`` declares every task on an app's Huey instance (with the retry policy of
the app's settings) and installs the queue port the services use to ask for work.
"""
from __future__ import annotations

import copy
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

    def run_syncs(self, runs: list[tuple[int, int]]) -> None:
        """Enqueue many runs; on Redis through one pipeline (a scheduler cycle of 10,000
        companies is then a few round trips, not 10,000)."""
        storage = self.huey.storage
        conn = getattr(storage, "conn", None)
        if conn is None or not hasattr(conn, "pipeline"):  # SqliteHuey: one insert each, local anyway
            for run_id, priority in runs:
                self.run_sync(run_id, priority)
            return
        pipe = conn.pipeline(transaction=False)
        batch = copy.copy(storage)  # the same storage, writing into the pipeline
        batch.conn = pipe
        for run_id, priority in runs:
            task = self.tasks.run_sync.s(run_id, priority=priority)
            batch.enqueue(self.huey.serialize_task(task), task.priority)
        pipe.execute()

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
