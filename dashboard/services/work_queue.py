"""The queue port: how services ask for background work without knowing the task layer.

The task layer installs an implementation on the app at start-up
(``dashboard.tasks.install``); services call ``work_queue()``. Tests can install a
recording one instead and drive services without Huey. The ``sync_run`` row stays the
outbox: it is committed before ``run_sync`` is called, and the reaper re-queues what a
lost enqueue left behind.
"""
from __future__ import annotations

from typing import Protocol

from flask import Flask, current_app

EXTENSION = "work_queue"


class WorkQueue(Protocol):
    def run_sync(self, run_id: int, priority: int) -> None:
        """Queue the execution of the committed sync run ``run_id``."""

    def run_syncs(self, runs: list[tuple[int, int]]) -> None:
        """Queue many committed runs, ``(run_id, priority)`` each, in as few round trips as can be."""

    def drain_webhooks(self) -> None:
        """Queue a drain of the webhook inbox."""

    def deliver_alerts(self, channel: str, delay: float = 0.0) -> None:
        """Queue a drain of ``channel``'s pending alert deliveries, in ``delay`` seconds."""


def install(app: Flask, queue: WorkQueue) -> None:
    """Make ``queue`` the app's work queue."""
    app.extensions[EXTENSION] = queue


def work_queue() -> WorkQueue:
    """Return the current app's work queue."""
    try:
        return current_app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError("No work queue is installed on this app (create_app installs one)") from None
