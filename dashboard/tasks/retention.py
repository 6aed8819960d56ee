"""Huey task for retention: prune old runs, deliveries, parity checks and audit events daily."""
from __future__ import annotations

import logging
from types import SimpleNamespace

from flask import Flask
from huey import Huey, crontab

from ..queue import in_app_context
from ..services.retention import prune

log = logging.getLogger(__name__)


def declare(huey: Huey, app: Flask) -> SimpleNamespace:
    """Declare the retention task on ``huey``."""

    @huey.periodic_task(crontab(hour="3", minute="17"))  # a quiet hour, off the scheduler's minute
    @in_app_context(app)
    def prune_old_rows() -> None:
        """Delete what is past its retention, in small batches."""
        report = prune()
        log.info("Retention: pruned %s", ", ".join(f"{n} {table}" for table, n in report.deleted.items()))

    return SimpleNamespace(prune_old_rows=prune_old_rows)
