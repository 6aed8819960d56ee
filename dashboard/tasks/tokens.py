"""Huey tasks for tokens: keep every connected company's tokens fresh ahead of time."""
from __future__ import annotations

import logging
from types import SimpleNamespace

from flask import Flask
from huey import Huey, crontab

from ..queue import in_app_context
from ..services.connections import refresh_tokens_ahead

log = logging.getLogger(__name__)


def declare(huey: Huey, app: Flask) -> SimpleNamespace:
    """Declare the token tasks on ``huey``."""

    @huey.periodic_task(crontab(minute="*/5"))
    @in_app_context(app)
    def refresh_expiring_tokens() -> None:
        """Refresh tokens ahead of expiry, so idle companies stay connected."""
        report = refresh_tokens_ahead()
        if report.refreshed or report.reconnect_required or report.failed:
            log.info("Token refresh ahead of expiry: %d refreshed, %d need reconnecting, %d failed",
                     report.refreshed, report.reconnect_required, report.failed)

    return SimpleNamespace(refresh_expiring_tokens=refresh_expiring_tokens)
