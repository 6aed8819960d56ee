"""Deliver signed webhook notifications from a background thread."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from .clock import format_utc_millis
from .config import SandboxConfig
from .responses import new_tid

_VERB = {"Create": "created", "Update": "updated", "Delete": "deleted", "Merge": "merged", "Void": "voided"}


def sign(body: bytes, verifier: str) -> str:
    """Return base64(HMAC-SHA256(body, verifier)) as in `intuit-signature`."""
    return base64.b64encode(hmac.new(verifier.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Event:
    """Describe one entity change to notify about."""

    realm: str
    entity: str
    id: str
    operation: str
    when: float  # simulated epoch seconds
    deleted_id: str | None = None  # a Merge: the Id of the record merged away


def legacy_payload(events: list[Event]) -> dict[str, Any]:
    """Group events per realm into the classic eventNotifications payload."""
    by_realm: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        entity = {"name": e.entity, "id": e.id, "operation": e.operation, "lastUpdated": format_utc_millis(e.when)}
        if e.deleted_id is not None:
            entity["deletedId"] = e.deleted_id
        by_realm.setdefault(e.realm, []).append(entity)
    return {"eventNotifications": [{"realmId": r, "dataChangeEvent": {"entities": ents}}
                                   for r, ents in by_realm.items()]}


def cloudevents_payload(events: list[Event]) -> list[dict[str, Any]]:
    """Build a CloudEvents 1.0 array; one delivery may span several realms."""
    return [{
        "specversion": "1.0", "id": str(uuid.uuid4()),
        "source": "intuit." + base64.urlsafe_b64encode(e.realm.encode()).decode().rstrip("="),
        "type": f"qbo.{e.entity.lower()}.{_VERB.get(e.operation, e.operation.lower())}.v1",
        "datacontenttype": "application/json", "time": format_utc_millis(e.when),
        "intuitentityid": e.id, "intuitaccountid": e.realm,
        "data": {} if e.deleted_id is None else {"deletedId": e.deleted_id},
    } for e in events]


class WebhookDispatcher:
    """Queue events and post them, batched, to the configured URL."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.queue: queue.Queue[Event | None] = queue.Queue()
        self.deliveries: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def notify(self, event: Event) -> None:
        """Enqueue an event if delivery is on and a URL is configured."""
        if not (self.config.webhook_enabled and self.config.webhook_url):
            return
        self._idle.clear()
        self.queue.put(event)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self.lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=1.0)
            except queue.Empty:
                self._idle.set()
                continue
            if first is None:
                return
            # Intuit batches events that occur close together into one delivery.
            time.sleep(self.config.webhook_batch_delay)
            batch = [first]
            while True:
                try:
                    ev = self.queue.get_nowait()
                except queue.Empty:
                    break
                if ev is None:
                    self.queue.put(None)
                    break
                batch.append(ev)
            try:
                if self.config.webhook_format == "cloudevents":
                    self.send(cloudevents_payload(batch))
                else:
                    self.send(legacy_payload(batch))
            finally:
                if self.queue.empty():
                    self._idle.set()

    def send(self, payload: Any, url: str | None = None, verifier: str | None = None,
             retries: int | None = None) -> dict[str, Any]:
        """Post a payload (dict/list or exact bytes) signed with the verifier; retry on failure."""
        url = url or self.config.webhook_url
        verifier = verifier if verifier is not None else (self.config.webhook_verifier or "")
        if not url:
            raise ValueError("no webhook URL configured")
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "intuit-signature": sign(body, verifier),
            "intuit-created-time": format_utc_millis(time.time()),
            "intuit-t-id": new_tid(),
            "intuit-notification-schema-version": "0.1",
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": "intuit_notification_server/0.1",
        }
        attempts = 1 + (self.config.webhook_retries if retries is None else retries)
        record: dict[str, Any] = {"url": url, "bytes": len(body), "attempts": [], "body": body.decode("utf-8")}
        for i in range(attempts):
            status, error = None, None
            try:
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.config.webhook_timeout) as resp:
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except Exception as exc:  # noqa: BLE001 - any network failure counts as a failed attempt
                error = type(exc).__name__
            record["attempts"].append({"status": status, "error": error})
            # Intuit retries on 5xx/408/timeouts; anything 2xx ends the delivery.
            if status is not None and 200 <= status < 300:
                break
            if i + 1 < attempts:
                time.sleep(self.config.webhook_retry_delay)
        record["status"] = record["attempts"][-1]["status"]
        with self.lock:
            self.deliveries.append(record)
        return record

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until queued events are delivered (for tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue.empty() and self._idle.wait(0.05):
                return True
        return False

    def stop(self) -> None:
        """Stop the background thread."""
        if self._thread and self._thread.is_alive():
            self.queue.put(None)
            self._thread.join(timeout=2)
