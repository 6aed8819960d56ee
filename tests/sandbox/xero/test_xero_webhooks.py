"""Signed Xero webhooks: intent to receive, then contact/invoice events to the configured URL."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from typing import Any, Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from sandbox.testing import SandboxServer

from xero_client import install, xserver  # noqa: F401 (fixtures)

KEY = "xero-webhook-key-123"


class Receiver:
    """A webhook endpoint that verifies x-xero-signature on the raw body (or, naive, accepts all)."""

    def __init__(self, naive: bool = False) -> None:
        self.naive = naive
        self.events: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/webhooks/xero"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def app(self, environ: dict, start_response: Any) -> Any:
        req = Request(environ)
        raw = req.get_data()
        expected = base64.b64encode(hmac.new(KEY.encode(), raw, hashlib.sha256).digest()).decode()
        ok = self.naive or hmac.compare_digest(expected, req.headers.get("x-xero-signature", ""))
        if ok:
            self.events += json.loads(raw)["events"]
        self.statuses.append(200 if ok else 401)
        return Response(b"", status=200 if ok else 401)(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()


def test_intent_to_receive_then_signed_events(xserver: SandboxServer, receiver: Receiver) -> None:
    xero = install(xserver)
    sim = xero.sim
    tenant = sim.tenants()[0]
    sim.configure_webhooks(receiver.url, KEY)
    sim.create(tenant, "Contacts", Name="Before intent")  # not yet subscribed: nothing is sent
    assert sim.wait_webhooks(2) and sim.webhook_deliveries() == []
    intent = sim.intent_to_receive()
    assert intent["passed"] and receiver.statuses == [200, 401, 200, 401] and receiver.events == []
    contact = sim.create(tenant, "Contacts", Name="Kōwhai Plumbing")
    invoice = sim.records(tenant, "Invoices")[0]
    sim.void_invoice(tenant, invoice["InvoiceID"])
    other = sim.tenants()[1]
    sim.update(other, "Contacts", sim.records(other, "Contacts")[0]["ContactID"], Name="Changed")
    assert sim.wait_webhooks(5)
    got = {(e["eventCategory"], e["eventType"], e["resourceId"], e["tenantId"]) for e in receiver.events}
    assert got == {("CONTACT", "CREATE", contact["ContactID"], tenant),
                   ("INVOICE", "UPDATE", invoice["InvoiceID"], tenant),
                   ("CONTACT", "UPDATE", sim.records(other, "Contacts")[0]["ContactID"], other)}
    event = next(e for e in receiver.events if e["eventCategory"] == "INVOICE")
    assert event["resourceUrl"] == f"https://api.xero.com/api.xro/2.0/Invoices/{invoice['InvoiceID']}"
    assert event["tenantType"] == "ORGANISATION" and len(event["eventDateUtc"].split(".")[1]) == 3
    body = json.loads(sim.webhook_deliveries()[0]["body"])
    assert body["firstEventSequence"] == 1 and body["entropy"]
    assert all(d["status"] == 200 for d in sim.webhook_deliveries())


def test_a_receiver_that_accepts_everything_fails_intent(xserver: SandboxServer) -> None:
    naive = Receiver(naive=True)
    naive.thread.start()
    try:
        xero = install(xserver)
        xero.sim.configure_webhooks(naive.url, KEY)
        result = xero.sim.intent_to_receive()
        assert not result["passed"] and [a["ok"] for a in result["attempts"]] == [True, False, True, False]
        xero.sim.create(xero.sim.tenants()[0], "Contacts", Name="Never sent")
        assert xero.sim.wait_webhooks(2) and xero.sim.webhook_deliveries() == []
    finally:
        naive.server.shutdown()


def test_a_forged_delivery_is_refused_by_a_verifying_receiver(xserver: SandboxServer, receiver: Receiver) -> None:
    xero = install(xserver)
    xero.sim.configure_webhooks(receiver.url, KEY)
    forged = xero.sim.webhooks.deliver({"events": [{"resourceId": "x"}], "firstEventSequence": 1,
                                        "lastEventSequence": 1, "entropy": "e"}, key="not-the-key")
    assert forged["status"] == 401 and len(forged["attempts"]) == 3 and receiver.events == []
