"""Huey tasks for tokens: keep every connected company's tokens fresh ahead of time."""
from __future__ import annotations

import logging

from huey import crontab

from .. import queue

log = logging.getLogger(__name__)


@queue.periodic_task(crontab(minute="*/5"))
def refresh_expiring_tokens() -> None:
    """Refresh tokens ahead of expiry, so idle companies stay connected."""
    from ..services.tokens import refresh_due_tokens

    report = refresh_due_tokens()
    if report.refreshed or report.reconnect_required or report.failed:
        log.info("Token refresh ahead of expiry: %d refreshed, %d need reconnecting, %d failed",
                 report.refreshed, report.reconnect_required, report.failed)
