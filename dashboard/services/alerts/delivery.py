"""Deliver alert events: one ``alert_delivery`` row per event and channel (the outbox),
sent by a worker task that drains one channel at a time.

One drain per channel runs at once (a lock per channel, across all workers), sending its
due messages in order, each with ALERT_DELIVERY_TIMEOUT. So a channel that hangs holds
one worker thread, never all of them, and never a sync. A failed attempt is retried
after ALERT_RETRY_DELAY × ALERT_RETRY_BACKOFF^n (a drain is queued for then); after
ALERT_DELIVERY_RETRIES retries the delivery is FAILED for good, logged (without
secrets) and listed on the Alerts page.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, or_, select

from ...config import Settings
from ...extensions import db
from ...locks import LockBusy, hold
from ...models import AlertDelivery, utcnow
from ..work_queue import work_queue
from . import messages
from .channels import DeliveryError, post_webhook, safe_url, send_email

log = logging.getLogger(__name__)

WEBHOOK, EMAIL = "webhook", "email"
PENDING, SENT, FAILED = "pending", "sent", "failed"
DRAIN_LIMIT = 200  # messages one drain sends before it hands over to a fresh task

Clock = Callable[[], datetime]


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
    parts = urlsplit(settings.smtp_url or "")
    host = f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"
    return f"e-mail to {', '.join(settings.alert_email_to)} through {host}"


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


# -- the drain ------------------------------------------------------------------------------------
def _due(channel: str, now: datetime):
    return (AlertDelivery.channel == channel, AlertDelivery.status == PENDING,
            or_(AlertDelivery.next_attempt_at.is_(None), AlertDelivery.next_attempt_at <= now))


def channels_with_due_deliveries(now: datetime) -> list[str]:
    """The channels that have messages waiting to be sent now (a lost drain task is found again)."""
    return list(db.session.scalars(select(AlertDelivery.channel).where(
        AlertDelivery.status == PENDING,
        or_(AlertDelivery.next_attempt_at.is_(None), AlertDelivery.next_attempt_at <= now)).distinct()))


def drain(channel: str, clock: Clock = utcnow) -> int:
    """Send the channel's due messages, oldest first; return how many were sent.

    Returns 0 at once when another drain of this channel holds its lock: that one sends them.
    """
    settings = current_app.config["SETTINGS"]
    timeout = float(current_app.config["ALERT_DELIVERY_TIMEOUT"])
    sent = 0
    try:
        # An SMTP conversation is a few round trips, each within the timeout.
        with hold(f"alerts:deliver:{channel}", ttl=timeout * 4 + 30) as lock:
            for _ in range(DRAIN_LIMIT):
                row = db.session.scalars(select(AlertDelivery).where(*_due(channel, clock()))
                                         .order_by(AlertDelivery.id).limit(1)).first()
                if row is None:
                    break
                delivery_id, event = row.id, dict(row.payload)
                db.session.rollback()  # no transaction held open while a channel answers (or hangs)
                try:
                    send(channel, event, settings)
                except DeliveryError as exc:
                    _failed(delivery_id, str(exc), clock())
                except Exception as exc:  # a bug must not leave a message that is retried forever
                    log.exception("Alert delivery %s (%s) raised", delivery_id, channel)
                    db.session.rollback()
                    _failed(delivery_id, f"Unexpected {type(exc).__name__} while sending.", clock())
                else:
                    _sent(delivery_id, clock())
                    sent += 1
                lock.renew()
            else:
                work_queue().deliver_alerts(channel)  # more than one drain's worth: carry on in a fresh task
    except LockBusy:
        return 0
    _queue_next_retry(channel, clock())
    return sent


def _sent(delivery_id: int, now: datetime) -> None:
    row = db.session.get(AlertDelivery, delivery_id)
    row.attempts += 1
    row.status, row.finished_at, row.next_attempt_at = SENT, now, None
    db.session.commit()
    log.info("Alert delivery %s sent (%s): %s", delivery_id, row.channel, row.title)


def _failed(delivery_id: int, error: str, now: datetime) -> None:
    config = current_app.config
    row = db.session.get(AlertDelivery, delivery_id)
    row.attempts += 1
    row.last_error = error
    if row.attempts > int(config["ALERT_DELIVERY_RETRIES"]):
        row.status, row.finished_at, row.next_attempt_at = FAILED, now, None
        log.error("Alert delivery %s (%s, %s) failed for good after %d attempts: %s", delivery_id, row.channel,
                  row.event, row.attempts, error)
    else:
        wait = float(config["ALERT_RETRY_DELAY"]) * float(config["ALERT_RETRY_BACKOFF"]) ** (row.attempts - 1)
        row.next_attempt_at = now + timedelta(seconds=wait)
        log.warning("Alert delivery %s (%s, %s) failed, retrying in %.1f s: %s", delivery_id, row.channel,
                    row.event, wait, error)
    db.session.commit()


def _queue_next_retry(channel: str, now: datetime) -> None:
    """Queue a drain for when the channel's next retry is due."""
    next_at = db.session.scalar(select(func.min(AlertDelivery.next_attempt_at)).where(
        AlertDelivery.channel == channel, AlertDelivery.status == PENDING, AlertDelivery.next_attempt_at > now))
    db.session.rollback()
    if next_at is not None:
        work_queue().deliver_alerts(channel, delay=max(0.0, (next_at - now).total_seconds()))


# -- `flask alert test` ------------------------------------------------------------------------------
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
