"""Intuit webhook deliveries: the signature check and both payload formats.

Pure functions of bytes and JSON: no Flask, no database. A payload carries no field
values (and deletes are not trusted from it): it only says which company and which
entity type changed, so the caller can run the normal incremental sync.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any


class WebhookPayloadError(ValueError):
    """The body is not a webhook payload we understand (message is for the sender)."""


@dataclass(frozen=True)
class Notification:
    """One entity change named by a delivery."""

    realm: str
    entity: str        # Intuit's entity name, e.g. "Customer"
    entity_id: str | None
    operation: str     # "Create", "Update", "Delete", ... (CloudEvents verbs are mapped)
    deleted_id: str | None = None  # a Merge: the Id of the record merged away


def signature_valid(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """Check ``intuit-signature`` = base64(HMAC-SHA256(raw body, verifier token))."""
    if not signature or not verifier_token:
        return False
    expected = base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


_VERBS = {"created": "Create", "updated": "Update", "deleted": "Delete", "merged": "Merge",
          "voided": "Void", "emailed": "Emailed"}


def parse(payload: Any) -> list[Notification]:
    """Read the classic ``eventNotifications`` object or a CloudEvents 1.0 array."""
    if isinstance(payload, dict) and "eventNotifications" in payload:
        return _classic(payload["eventNotifications"])
    if isinstance(payload, list):
        return _cloudevents(payload)
    raise WebhookPayloadError("expected an object with eventNotifications or a CloudEvents array")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def _classic(notifications: Any) -> list[Notification]:
    if not isinstance(notifications, list):
        raise WebhookPayloadError("eventNotifications must be a list")
    out: list[Notification] = []
    for item in notifications:
        realm = _text(item.get("realmId")) if isinstance(item, dict) else None
        event = item.get("dataChangeEvent") if isinstance(item, dict) else None
        entities = event.get("entities") if isinstance(event, dict) else None
        if realm is None or not isinstance(entities, list):
            raise WebhookPayloadError("each notification needs a realmId and dataChangeEvent.entities")
        for entity in entities:
            name = _text(entity.get("name")) if isinstance(entity, dict) else None
            if name is None:
                raise WebhookPayloadError("each entity needs a name")
            out.append(Notification(realm, name, _text(entity.get("id")), _text(entity.get("operation")) or "",
                                    _text(entity.get("deletedId"))))
    return out


def _cloudevents(events: list[Any]) -> list[Notification]:
    out: list[Notification] = []
    for event in events:
        if not isinstance(event, dict):
            raise WebhookPayloadError("each CloudEvent must be an object")
        realm = _text(event.get("intuitaccountid"))
        kind = event.get("type")
        parts = kind.split(".") if isinstance(kind, str) else []
        # type: qbo.<entity>.<verb>.v1
        if realm is None or len(parts) < 3 or parts[0] != "qbo":
            raise WebhookPayloadError("each CloudEvent needs intuitaccountid and a qbo.<entity>.<verb> type")
        entity = parts[1][:1].upper() + parts[1][1:]
        data = event.get("data")
        out.append(Notification(realm, entity, _text(event.get("intuitentityid")), _VERBS.get(parts[2], parts[2]),
                                _text(data.get("deletedId")) if isinstance(data, dict) else None))
    return out
