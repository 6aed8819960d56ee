"""Signed webhook deliveries to a tiny local receiver."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Iterator

import pytest

from sandbox import Simulator

VERIFIER = "verifier-token-123"


class Receiver:
    """Collect POSTed bodies and headers on 127.0.0.1."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/qbo"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _valid(headers: dict[str, str], body: bytes) -> bool:
    expected = base64.b64encode(hmac.new(VERIFIER.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, headers["intuit-signature"])


def test_legacy_notifications_after_mutations(receiver: Receiver) -> None:
    sim = Simulator(companies=2, customers=5, invoices=5, webhook_url=receiver.url, webhook_verifier=VERIFIER,
                    webhook_batch_delay=0.1)
    a, b = sim.realms()
    c = sim.create_customer(a, DisplayName="Zoë O'Brien")
    sim.update_customer(a, c["Id"], Notes="n")
    sim.delete_invoice(b, "1")
    assert sim.wait_webhooks(5)
    events = []
    for headers, body in receiver.received:
        assert _valid(headers, body)
        assert headers["intuit-notification-schema-version"] == "0.1" and headers["intuit-t-id"]
        events += json.loads(body)["eventNotifications"]
    ents = {(n["realmId"], e["name"], e["id"], e["operation"]) for n in events
            for e in n["dataChangeEvent"]["entities"]}
    assert (a, "Customer", c["Id"], "Create") in ents and (a, "Customer", c["Id"], "Update") in ents
    assert (b, "Invoice", "1", "Delete") in ents
    sim.close()


def test_cloudevents_multi_realm_and_toggle(receiver: Receiver) -> None:
    sim = Simulator(companies=2, customers=5, invoices=5, webhook_url=receiver.url, webhook_verifier=VERIFIER,
                    webhook_format="cloudevents", webhook_batch_delay=0.2)
    a, b = sim.realms()
    sim.update_customer(a, "1", Notes="x")
    sim.update_invoice(b, "2", PrivateNote="y")
    assert sim.wait_webhooks(5)
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert _valid(headers, body)
    events = json.loads(body)
    assert isinstance(events, list) and {e["intuitaccountid"] for e in events} == {a, b}
    assert {e["type"] for e in events} == {"qbo.customer.updated.v1", "qbo.invoice.updated.v1"}
    assert all(e["specversion"] == "1.0" and e["id"] and e["intuitentityid"] for e in events)
    sim.configure_webhooks(enabled=False)
    sim.update_customer(a, "1", Notes="silent")
    sim.wait_webhooks(1)
    assert len(receiver.received) == 1
    sim.close()


def test_manual_send_exact_bytes_and_retry() -> None:
    failing = Receiver(status=500)
    sim = Simulator(companies=1, customers=2, invoices=2, webhook_url=failing.url, webhook_verifier=VERIFIER,
                    webhook_retries=2, webhook_retry_delay=0.01)
    raw = b'{"eventNotifications":[{"realmId":"1","dataChangeEvent":{"entities":[]}}]}  '
    rec = sim.send_webhook(raw)
    assert rec["status"] == 500 and len(rec["attempts"]) == 3 and len(failing.received) == 3
    headers, body = failing.received[0]
    assert body == raw and _valid(headers, body)
    failing.close()
