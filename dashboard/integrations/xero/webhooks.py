"""Xero webhook deliveries: the signature check, the intent-to-receive answer, the payload.

Pure functions of bytes and JSON: no Flask, no database. A delivery names records only
(tenant, resource, id, CREATE or UPDATE — archive, void and delete arrive as UPDATE), so
the caller runs the normal incremental sync of that tenant's resource.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..signatures import hmac_sha256_b64_valid
from .dates import parse_date

SIGNATURE_HEADER = "x-xero-signature"
# Xero's event categories and the Accounting API resource each names.
CATEGORY_RESOURCES = {"CONTACT": "Contacts", "INVOICE": "Invoices", "CREDITNOTE": "CreditNotes"}


class WebhookPayloadError(ValueError):
    """The body is not a webhook payload we understand (message is for the sender)."""


@dataclass(frozen=True)
class Notification:
    """One record change named by a delivery."""

    tenant_id: str
    tenant_type: str
    category: str          # Xero's eventCategory: CONTACT, INVOICE, CREDITNOTE, SUBSCRIPTION, ...
    resource: str | None   # the Accounting API resource (Contacts, ...); None for other categories
    resource_id: str
    event_type: str        # CREATE or UPDATE
    event_date: datetime | None
    resource_url: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the route sends back: Xero wants an empty body, 200 when signed right, else 401."""

    status: int
    body: bytes = b""


def signature_valid(body: bytes, signature: str | None, key: str) -> bool:
    """Check ``x-xero-signature`` = base64(HMAC-SHA256(webhook key, raw body)), in constant time."""
    return hmac_sha256_b64_valid(body, signature, key)


def answer(body: bytes, signature: str | None, key: str) -> Answer:
    """Answer a delivery before reading it, intent-to-receive checks included.

    Xero's intent-to-receive sends empty event lists, some signed right (expecting 200 and
    an empty body) and some wrongly (expecting 401): the signature alone decides, so an
    endpoint that accepts everything fails the check, as Xero means it to.
    """
    return Answer(200) if signature_valid(body, signature, key) else Answer(401)


def is_intent_to_receive(payload: Any) -> bool:
    """True for Xero's probe: no events and sequence numbers 0."""
    return (isinstance(payload, dict) and payload.get("events") == []
            and payload.get("firstEventSequence") == 0 and payload.get("lastEventSequence") == 0)


def _text(value: Any, limit: int = 2048) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def parse(payload: Any) -> list[Notification]:
    """Read a delivery's ``events`` (possibly of several tenants) into notifications."""
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        raise WebhookPayloadError("expected an object with an events list")
    out: list[Notification] = []
    for event in events:
        if not isinstance(event, dict):
            raise WebhookPayloadError("each event must be an object")
        tenant, resource_id = _text(event.get("tenantId"), 64), _text(event.get("resourceId"), 64)
        category, event_type = _text(event.get("eventCategory"), 64), _text(event.get("eventType"), 64)
        if not (tenant and resource_id and category and event_type):
            raise WebhookPayloadError("each event needs tenantId, resourceId, eventCategory and eventType")
        out.append(Notification(
            tenant_id=tenant, tenant_type=_text(event.get("tenantType"), 64) or "", category=category.upper(),
            resource=CATEGORY_RESOURCES.get(category.upper()), resource_id=resource_id,
            event_type=event_type.upper(), event_date=parse_date(event.get("eventDateUtc")),
            resource_url=_text(event.get("resourceUrl"))))
    return out
