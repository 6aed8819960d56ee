"""Deliver alert events: one ``alert_delivery`` row per event and channel (the outbox),
sent by a worker task that retries with backoff; a delivery that fails for good is
recorded (and logged, without secrets) for the Alerts page.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from flask import current_app

from ...config import Settings
from ...extensions import db
from ...models import AlertDelivery, utcnow
from . import messages
from .channels import DeliveryError, post_webhook, safe_url, send_email

log = logging.getLogger(__name__)

WEBHOOK, EMAIL = "webhook", "email"
PENDING, SENT, FAILED = "pending", "sent", "failed"


def configured_channels(settings: Settings) -> list[str]:
    """The channels alerts go to (none configured: alerts are only on the dashboard)."""
    channels = []
    if settings.alert_webhook_url:
        channels.append(WEBHOOK)
    if settings.smtp_url and settings.alert_email_to:
        channels.append(EMAIL)
    return channels


def describe_channel(settings: Settings, channel: str) -> str:
    """Say where a channel sends, without its secrets."""
    if channel == WEBHOOK:
        return f"webhook ({settings.alert_webhook_format}) to {safe_url(settings.alert_webhook_url or '')}"
    host = _smtp_host(settings.smtp_url or "")
    return f"e-mail to {', '.join(settings.alert_email_to)} through {host}"


def _smtp_host(smtp_url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(smtp_url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"


def record(events: list[Mapping[str, Any]], settings: Settings, now: datetime) -> list[AlertDelivery]:
    """Add one pending delivery per event and configured channel to the session (not committed)."""
    rows = [AlertDelivery(channel=channel, event=event["event"], title=messages.summary(event)[:500],
                          payload=dict(event), status=PENDING, attempts=0, created_at=now)
            for event in events for channel in configured_channels(settings)]
    db.session.add_all(rows)
    return rows


def send(channel: str, event: Mapping[str, Any], settings: Settings) -> None:
    """Send one event to one channel now; raise DeliveryError when the channel does not take it."""
    timeout = float(current_app.config["ALERT_DELIVERY_TIMEOUT"])
    if channel == WEBHOOK:
        if not settings.alert_webhook_url:
            raise DeliveryError("ALERT_WEBHOOK_URL is no longer set.")
        post_webhook(settings.alert_webhook_url, messages.webhook_body(settings.alert_webhook_format, event), timeout)
    elif channel == EMAIL:
        if not settings.smtp_url or not settings.alert_email_to:
            raise DeliveryError("SMTP_URL or ALERT_EMAIL_TO is no longer set.")
        subject, text = messages.email(event)
        send_email(settings.smtp_url, settings.alert_email_from or "qbosync@localhost", settings.alert_email_to,
                   subject, text, timeout)
    else:
        raise DeliveryError(f"Unknown alert channel {channel!r}.")


def deliver(delivery_id: int, final: bool, now: datetime | None = None) -> bool:
    """Try one pending delivery once. Return True when sent (or nothing is left to do).

    A failure is recorded; when ``final`` (no retry left) the delivery is FAILED for good
    and logged as an error; otherwise DeliveryError is raised so the task retries.
    """
    row = db.session.get(AlertDelivery, delivery_id)
    if row is None or row.status != PENDING:
        db.session.rollback()
        return True
    channel, event = row.channel, dict(row.payload)
    db.session.rollback()  # no transaction held open while a channel answers (or hangs)
    settings = current_app.config["SETTINGS"]
    try:
        send(channel, event, settings)
    except DeliveryError as exc:
        _finish(delivery_id, FAILED if final else PENDING, str(exc), now)
        if final:
            log.error("Alert delivery %s (%s, %s) failed for good: %s", delivery_id, channel, event["event"], exc)
            return False
        log.warning("Alert delivery %s (%s, %s) failed, will retry: %s", delivery_id, channel, event["event"], exc)
        raise
    _finish(delivery_id, SENT, None, now)
    log.info("Alert delivery %s sent (%s): %s", delivery_id, channel, messages.summary(event))
    return True


def _finish(delivery_id: int, status: str, error: str | None, now: datetime | None) -> None:
    row = db.session.get(AlertDelivery, delivery_id)
    row.attempts += 1
    row.status = status
    if error is not None:
        row.last_error = error
    if status != PENDING:
        row.finished_at = now or utcnow()
    db.session.commit()


@dataclass(frozen=True)
class ChannelCheck:
    channel: str
    where: str
    ok: bool
    detail: str


def send_test(now: datetime | None = None) -> list[ChannelCheck]:
    """Send a test alert to every configured channel now, in the foreground; say how each went."""
    settings = current_app.config["SETTINGS"]
    event = messages.test_event(now or utcnow(), settings.alert_base_url)
    outcomes = []
    for channel in configured_channels(settings):
        where = describe_channel(settings, channel)
        try:
            send(channel, event, settings)
        except DeliveryError as exc:
            outcomes.append(ChannelCheck(channel, where, False, str(exc)))
        else:
            outcomes.append(ChannelCheck(channel, where, True, "sent"))
    return outcomes
