"""What the Alerts page shows: the channels, the open problems, and deliveries that failed
or are still trying (plain data; the template only renders)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import Alert, AlertDelivery
from . import delivery

SHOWN = 100                       # rows per table
FAILURES_SHOWN_FOR = timedelta(days=7)


@dataclass(frozen=True)
class AlertsPage:
    channels: tuple[str, ...]     # where alerts go, in words (no secrets)
    open_alerts: tuple[Alert, ...]
    failed: tuple[AlertDelivery, ...]
    pending: tuple[AlertDelivery, ...]
    recently_resolved: tuple[Alert, ...]


def alerts_page(now: datetime) -> AlertsPage:
    settings = current_app.config["SETTINGS"]
    channels = tuple(delivery.describe_channel(settings, c) for c in delivery.configured_channels(settings))
    open_alerts = db.session.scalars(select(Alert).where(Alert.resolved_at.is_(None))
                                     .order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(SHOWN)).all()
    failed = db.session.scalars(
        select(AlertDelivery).where(AlertDelivery.status == delivery.FAILED,
                                    AlertDelivery.created_at >= now - FAILURES_SHOWN_FOR)
        .order_by(AlertDelivery.created_at.desc(), AlertDelivery.id.desc()).limit(SHOWN)).all()
    pending = db.session.scalars(
        select(AlertDelivery).where(AlertDelivery.status == delivery.PENDING)
        .order_by(AlertDelivery.created_at.desc(), AlertDelivery.id.desc()).limit(SHOWN)).all()
    resolved = db.session.scalars(
        select(Alert).where(Alert.resolved_at.is_not(None), Alert.resolved_at >= now - timedelta(days=1))
        .order_by(Alert.resolved_at.desc(), Alert.id.desc()).limit(SHOWN)).all()
    return AlertsPage(channels, tuple(open_alerts), tuple(failed), tuple(pending), tuple(resolved))
