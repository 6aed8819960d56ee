"""Webhooks: verify, store in the inbox, and turn deliveries into incremental syncs.

A verified delivery is first stored in ``webhook_delivery`` (deduplicated by the hash of
its body: Intuit retries), so nothing is lost if the queue is down; draining the inbox
queues one incremental sync per company named, through ``sync_jobs.request_sync``,
which returns the active run instead of queueing twice: a burst becomes one sync.
The 5-minute poll stays; webhooks only make changes show up sooner.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..integrations.qbo import webhooks as qbo_webhooks
from ..models import Company, ConnectionState, RunKind, WebhookDelivery, utcnow
from ..sync.specs import BY_ENTITY, EntitySpec
from . import sync_jobs, sync_store, type_switches

log = logging.getLogger(__name__)

INTEGRATIONS = {"qbo"}
DRAIN_BATCH = 500


class WebhookRejected(Exception):
    """The delivery is refused; nothing was stored or queued."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Accepted:
    delivery_id: int | None
    duplicate: bool
    notifications: int


def receive(integration: str, body: bytes, signature: str | None) -> Accepted:
    """Verify the signature (before parsing anything), check the payload, store it once."""
    if integration not in INTEGRATIONS:
        raise WebhookRejected(f"There is no webhook endpoint for {integration!r}.", 404)
    verifier = current_app.config["SETTINGS"].qbo_webhook_verifier_token
    if not verifier:
        log.error("Webhook refused: QBO_WEBHOOK_VERIFIER_TOKEN is not set")
        raise WebhookRejected("Webhooks are not configured here.", 503)
    if not qbo_webhooks.signature_valid(body, signature, verifier):
        log.warning("Webhook refused: %s intuit-signature", "wrong" if signature else "missing")
        raise WebhookRejected("Missing or wrong intuit-signature.", 401)
    try:
        payload = json.loads(body)
        notifications = qbo_webhooks.parse(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        message = str(exc) if isinstance(exc, qbo_webhooks.WebhookPayloadError) else "the body is not JSON"
        raise WebhookRejected(f"Unreadable webhook payload: {message}.", 400) from None
    digest = hashlib.sha256(body).hexdigest()
    delivery = WebhookDelivery(integration=integration, body_sha256=digest, payload=payload, received_at=utcnow())
    db.session.add(delivery)
    try:
        db.session.commit()
    except IntegrityError:  # the same body again: Intuit retried; it is already in the inbox
        db.session.rollback()
        return Accepted(None, True, len(notifications))
    return Accepted(delivery.id, False, len(notifications))


def drain() -> int:
    """Queue syncs for every unprocessed delivery; return how many were processed.

    Safe to run concurrently and again after a crash: requesting a sync that is already
    queued or running changes nothing.
    """
    deliveries = db.session.execute(
        select(WebhookDelivery).where(WebhookDelivery.processed_at.is_(None))
        .order_by(WebhookDelivery.id).limit(DRAIN_BATCH)).scalars().all()
    if not deliveries:
        return 0
    wanted: dict[str, set[str]] = defaultdict(set)       # realm -> object types
    latest: dict[str, Any] = {}                          # realm -> last delivery time
    realms_of: dict[int, set[str]] = {}
    for delivery in deliveries:
        realms_of[delivery.id] = set()
        for note in qbo_webhooks.parse(delivery.payload):
            spec = _spec_of(note.entity)
            if spec is None:
                log.info("Webhook for %s %s of company %s ignored: that entity is not synced",
                         note.entity, note.operation, note.realm)
                continue
            if note.operation == "Merge" and note.deleted_id:
                _merged_away(spec, note.realm, note.deleted_id, delivery.received_at)
            wanted[note.realm].add(spec.name)
            realms_of[delivery.id].add(note.realm)
            latest[note.realm] = max(latest.get(note.realm, delivery.received_at), delivery.received_at)
    failed = {realm for realm, object_types in wanted.items() if not _request(realm, object_types, latest[realm])}
    done = [d.id for d in deliveries if not (realms_of[d.id] & failed)]
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(done),
                                                     WebhookDelivery.processed_at.is_(None))
                       .values(processed_at=utcnow()))
    db.session.commit()
    return len(done)


def _spec_of(entity: str) -> EntitySpec | None:
    """Find the spec of an entity name (CloudEvents spell it in lower case: "journalentry")."""
    folded = entity.casefold()
    return next((spec for spec in BY_ENTITY.values() if spec.entity.casefold() == folded), None)


def _merged_away(spec: EntitySpec, realm: str, source_id: str, when) -> None:
    """Mark the record a merge removed (a customer merged into another): Intuit sends no tombstone."""
    if sync_store.mark_deleted(spec, realm, [(source_id, when)]):
        log.info("Company %s: %s %s was merged into another; marked deleted", realm, spec.entity, source_id)
    db.session.commit()


def _request(realm: str, object_types: set[str], received_at) -> bool:
    """Queue (or find) the incremental sync for one company; False means try again later."""
    company = db.session.execute(select(Company).where(Company.source_id == realm)).scalar_one_or_none()
    if company is None:
        log.info("Webhook for unknown company %s acknowledged and ignored", realm)
        return True
    db.session.execute(update(Company).where(Company.id == company.id)
                       .values(last_webhook_at=received_at))
    db.session.commit()
    if company.connection_state != ConnectionState.CONNECTED:
        log.info("Webhook for company %s ignored: it is %s", realm, company.connection_state)
        return True
    object_types = set(type_switches.enabled_types(realm, list(object_types)))
    if not object_types:
        log.info("Webhook for company %s ignored: the types it names are switched off", realm)
        return True
    object_type = next(iter(object_types)) if len(object_types) == 1 else None
    try:
        run, created = sync_jobs.request_sync(realm, kind=RunKind.INCREMENTAL, trigger="webhook",
                                              object_type=object_type)
    except sync_jobs.SyncRequestError as exc:
        log.info("Webhook for company %s: no sync queued (%s)", realm, exc)
        return True
    except Exception:
        db.session.rollback()
        log.exception("Webhook for company %s: queueing its sync failed; the inbox keeps it", realm)
        return False
    log.info("Webhook for company %s: %s sync run %s", realm, "queued" if created else "joined", run.id)
    return True
