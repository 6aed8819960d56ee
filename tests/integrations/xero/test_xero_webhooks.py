"""Xero webhooks: the signature, the intent-to-receive answer and the payload parser, checked
against the simulator's real deliveries over HTTP."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from dashboard.integrations.xero import webhooks
from dashboard.integrations.xero.webhooks import Notification, WebhookPayloadError

KEY = "xero-webhook-key-for-tests"


def _sign(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


class Receiver:
    """The route-to-be in miniature: answer from the signature alone, then parse what was accepted."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.answers: list[tuple[int, bytes]] = []
        self.probes = 0
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/webhooks/xero"

    def app(self, environ: dict, start_response: Any) -> Any:
        req = Request(environ)
        raw = req.get_data()
        answer = webhooks.answer(raw, req.headers.get(webhooks.SIGNATURE_HEADER), KEY)
        self.answers.append((answer.status, answer.body))
        if answer.status == 200:
            payload = json.loads(raw)
            self.probes += webhooks.is_intent_to_receive(payload)
            self.notifications += webhooks.parse(payload)
        return Response(answer.body, status=answer.status)(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()


def test_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"ABC"}'
    assert webhooks.signature_valid(body, _sign(body), KEY)
    assert webhooks.signature_valid(body, " " + _sign(body) + "\n", KEY)  # header whitespace
    assert not webhooks.signature_valid(body + b" ", _sign(body), KEY)  # re-serialised bodies differ
    assert not webhooks.signature_valid(body, _sign(body, "other"), KEY)
    assert not webhooks.signature_valid(body, None, KEY) and not webhooks.signature_valid(body, "", KEY)
    assert not webhooks.signature_valid(body, _sign(body, ""), "")  # no key configured: nothing verifies
    assert webhooks.answer(body, _sign(body), KEY) == webhooks.Answer(200, b"")
    assert webhooks.answer(body, "forged", KEY) == webhooks.Answer(401, b"")


def test_parse_events_of_several_tenants() -> None:
    payload = {"events": [
        {"resourceUrl": "https://api.xero.com/api.xro/2.0/Contacts/717f2bfc", "resourceId": "717f2bfc",
         "eventDateUtc": "2024-06-21T01:15:39.902", "eventType": "UPDATE", "eventCategory": "CONTACT",
         "tenantId": "c2cc9b6e", "tenantType": "ORGANISATION"},
        {"resourceId": "9a1", "eventDateUtc": "2024-06-21T01:15:40.000", "eventType": "CREATE",
         "eventCategory": "CREDITNOTE", "tenantId": "other", "tenantType": "ORGANISATION",
         "data": {"Type": "ACCPAYCREDIT", "Status": "DRAFT"}},
        {"resourceId": "s1", "eventDateUtc": "2024-06-21T01:15:41.000", "eventType": "UPDATE",
         "eventCategory": "SUBSCRIPTION", "tenantId": "app", "tenantType": "APPLICATION"}],
        "firstEventSequence": 1, "lastEventSequence": 3, "entropy": "x"}
    got = webhooks.parse(payload)
    assert got[0] == Notification("c2cc9b6e", "ORGANISATION", "CONTACT", "Contacts", "717f2bfc", "UPDATE",
                                  datetime(2024, 6, 21, 1, 15, 39, 902000, tzinfo=timezone.utc),
                                  "https://api.xero.com/api.xro/2.0/Contacts/717f2bfc")
    assert [(n.tenant_id, n.resource, n.event_type) for n in got[1:]] == [
        ("other", "CreditNotes", "CREATE"), ("app", None, "UPDATE")]
    assert webhooks.parse({"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "e"}) == []
    for bad in ([], {"events": "x"}, {"events": [{"tenantId": "t"}]}, {"events": [1]}):
        with pytest.raises(WebhookPayloadError):
            webhooks.parse(bad)


def test_intent_to_receive_then_signed_deliveries_from_the_simulator(server, sim, receiver: Receiver) -> None:
    t1, t2, _ = sim.tenants()
    sim.configure_webhooks(receiver.url, KEY)
    intent = sim.intent_to_receive()
    assert intent["passed"] and [s for s, _ in receiver.answers] == [200, 401, 200, 401]
    assert all(body == b"" for _, body in receiver.answers) and receiver.probes == 2
    contact = sim.create(t1, "Contacts", Name="Kōwhai Plumbing")
    invoice = sim.records(t2, "Invoices")[0]["InvoiceID"]
    sim.delete_invoice(t2, invoice)
    assert sim.wait_webhooks(5)
    got = {(n.tenant_id, n.resource, n.resource_id, n.event_type) for n in receiver.notifications}
    assert got == {(t1, "Contacts", contact["ContactID"], "CREATE"), (t2, "Invoices", invoice, "UPDATE")}
    assert all(n.event_date is not None for n in receiver.notifications)
    assert all(d["status"] == 200 for d in sim.webhook_deliveries())
