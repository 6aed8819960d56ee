"""Deliver Xero webhooks: signed event batches and the intent-to-receive check.

``x-xero-signature`` = base64(HMAC-SHA256(webhook key, raw body)). A subscription
delivers events only after it passed intent to receive (unless
``webhook_require_intent`` is off): a series of empty payloads, some signed
correctly (the receiver must answer 200 with an empty body), some not (401).
"""
from __future__ import annotations

import json
import queue
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from ..webhooks import sign
from .config import XeroConfig
from .dates import event_time

INTENT_PATTERN = (True, False, True, False)  # correctly signed?, in sending order


def _post(url: str, body: bytes, signature: str, timeout: float) -> dict[str, Any]:
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "x-xero-signature": signature,
        "User-Agent": "Xero-Webhooks/1.0 (sandbox)"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return {"status": resp.status, "body_bytes": len(resp.read()), "error": None}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body_bytes": len(exc.read() or b""), "error": None}
    except Exception as exc:  # noqa: BLE001 - any network failure is a failed attempt
        return {"status": None, "body_bytes": 0, "error": type(exc).__name__}


class XeroWebhooks:
    """Queue events and post them in batches to the configured URL."""

    def __init__(self, config: XeroConfig, rng: random.Random) -> None:
        self.config, self.rng = config, rng
        self.lock = threading.Lock()
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.deliveries: list[dict[str, Any]] = []
        self.intent_results: list[dict[str, Any]] = []
        self.active = False
        self.sequence = 0
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def reset_subscription(self) -> None:
        """A new URL or key needs intent to receive again."""
        self.active = False

    def notify(self, category: str, event_type: str, tenant_id: str, resource_id: str, resource_url: str,
               when: float, data: dict[str, Any] | None = None) -> None:
        """Queue one event if a URL is set and the subscription is active."""
        cfg = self.config
        if not cfg.webhook_url or (cfg.webhook_require_intent and not self.active):
            return
        event = {"resourceUrl": resource_url, "resourceId": resource_id, "eventDateUtc": event_time(when),
                 "eventType": event_type, "eventCategory": category, "tenantId": tenant_id,
                 "tenantType": "ORGANISATION"}
        if data is not None:
            event["data"] = data
        self._idle.clear()
        self.queue.put(event)
        with self.lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="xero-webhooks", daemon=True)
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
            time.sleep(self.config.webhook_batch_delay)  # events close together share a delivery
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
                with self.lock:
                    first_seq = self.sequence + 1
                    self.sequence += len(batch)
                self.deliver({"events": batch, "firstEventSequence": first_seq, "lastEventSequence": self.sequence,
                              "entropy": self._entropy()})
            finally:
                if self.queue.empty():
                    self._idle.set()

    def _entropy(self) -> str:
        return secrets.token_urlsafe(15)

    def deliver(self, payload: dict[str, Any] | bytes, key: str | None = None) -> dict[str, Any]:
        """Post a payload signed with the key (the configured one by default); retry non-2xx."""
        url = self.config.webhook_url
        if not url:
            raise ValueError("no webhook URL configured")
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        signature = sign(body, (self.config.webhook_key or "") if key is None else key)
        record: dict[str, Any] = {"url": url, "body": body.decode("utf-8"), "attempts": []}
        for i in range(1 + self.config.webhook_retries):
            attempt = _post(url, body, signature, self.config.webhook_timeout)
            record["attempts"].append(attempt)
            if attempt["status"] is not None and 200 <= attempt["status"] < 300:
                break
            if i < self.config.webhook_retries:
                time.sleep(self.config.webhook_retry_delay)
        record["status"] = record["attempts"][-1]["status"]
        with self.lock:
            self.deliveries.append(record)
        return record

    def intent_to_receive(self) -> dict[str, Any]:
        """Run the check: correct signatures must get 200 + empty body, wrong ones 401."""
        url = self.config.webhook_url
        if not url:
            raise ValueError("no webhook URL configured")
        results = []
        for correct in INTENT_PATTERN:
            body = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                               "entropy": self._entropy()}, separators=(",", ":")).encode()
            key = (self.config.webhook_key or "") if correct else "wrong-" + secrets.token_hex(8)
            got = _post(url, body, sign(body, key), self.config.webhook_timeout)
            ok = got["status"] == 200 and got["body_bytes"] == 0 if correct else got["status"] == 401
            results.append({"signed_correctly": correct, **got, "ok": ok})
        passed = all(r["ok"] for r in results)
        with self.lock:
            self.active = passed
            self.intent_results = results
        return {"passed": passed, "attempts": results}

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
