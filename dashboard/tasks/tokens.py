"""Huey tasks for tokens: keep every connected company's tokens fresh ahead of time."""
from __future__ import annotations

import logging

from huey import crontab

from .. import queue

log = logging.getLogger(__name__)


@queue.periodic_task(crontab(minute="*/5"))
def refresh_expiring_tokens() -> None:
    """Refresh tokens ahead of expiry, so idle companies stay connected."""
    from ..services.connections import refresh_tokens_ahead

    report = refresh_tokens_ahead()
    if report.refreshed or report.reconnect_required or report.failed:
        log.info("Token refresh ahead of expiry: %d refreshed, %d need reconnecting, %d failed",
                 report.refreshed, report.reconnect_required, report.failed)
