"""Intuit webhooks: signature first, inbox before queue, one sync per burst, idempotent."""
from __future__ import annotations

import json
from typing import Iterator

import pytest
from sqlalchemy import func, select, update

from dashboard.extensions import db
from dashboard.models import Company, ConnectionState, RunKind, RunStatus, SyncRun, WebhookDelivery
from dashboard.queue import huey
from sandbox.testing import SandboxServer
from sandbox.webhooks import sign
from tests.conftest import ENV
from tests.support.live import served_over_http

VERIFIER = ENV["QBO_WEBHOOK_VERIFIER_TOKEN"]
REALM, OTHER = "4620816365171234567", "4620816365179999999"


def classic(realm: str = REALM, *entities: tuple[str, str, str]) -> dict:
    entities = entities or (("Invoice", "130", "Update"),)
    return {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [
        {"name": n, "id": i, "operation": op, "lastUpdated": "2026-11-20T10:00:00.000Z"} for n, i, op in entities]}}]}


def cloudevent(realm: str, entity: str, verb: str, entity_id: str = "5") -> dict:
    return {"specversion": "1.0", "id": f"{realm}-{entity}-{entity_id}", "source": "intuit.abc",
            "type": f"qbo.{entity}.{verb}.v1", "datacontenttype": "application/json",
            "time": "2026-11-20T10:00:00.000Z", "intuitentityid": entity_id, "intuitaccountid": realm, "data": {}}


def post(client, payload=None, *, body: bytes | None = None, signature: str | None = "sign", **headers):
    body = body if body is not None else json.dumps(payload).encode()
    if signature == "sign":
        signature = sign(body, VERIFIER)
    if signature is not None:
        headers["intuit-signature"] = signature
    return client.post("/v1/webhooks/qbo", data=body, headers=headers, content_type="application/json")


@pytest.fixture
def companies(db_session):
    for realm in (REALM, OTHER):
        db_session.add(Company(source_id=realm, name=f"Co {realm[-3:]}", connection_state=ConnectionState.CONNECTED))
    db_session.commit()
    return REALM, OTHER


def run_worker_drains() -> list[str]:
    """Do what the worker would with the queue: run drain tasks; return the other tasks' names."""
    others = []
    while (task := huey.dequeue()) is not None:
        if task.name.endswith("drain_webhook_inbox"):
            huey.execute(task)
        else:
            others.append(task.name)
    return others


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _runs() -> list[SyncRun]:
    db.session.expire_all()
    return db.session.execute(select(SyncRun).order_by(SyncRun.id)).scalars().all()


def test_valid_notification_is_stored_then_queues_an_incremental_sync(client, companies, db_session):
    response = post(client, classic())
    assert response.status_code == 200 and response.get_json() == {"status": "accepted", "duplicate": False}
    delivery = db_session.execute(select(WebhookDelivery)).scalar_one()
    assert delivery.processed_at is None and delivery.payload == classic()
    assert _runs() == []  # the web request only stores and hands over
    assert run_worker_drains() == ["run_sync"]
    [run] = _runs()
    assert (run.company_source_id, run.kind, run.trigger, run.object_type, run.status) == \
        (REALM, RunKind.INCREMENTAL, "webhook", "invoice", RunStatus.QUEUED)
    assert _count(WebhookDelivery, WebhookDelivery.processed_at.is_(None)) == 0
    assert db_session.get(Company, db_session.scalar(select(Company.id).where(Company.source_id == REALM))) \
        .last_webhook_at is not None


@pytest.mark.parametrize("signature", [None, "", "bm90IHRoZSBzaWduYXR1cmU=", "sign-other-body"])
def test_missing_or_wrong_signature_is_401_and_stores_nothing(client, companies, signature):
    body = json.dumps(classic()).encode()
    if signature == "sign-other-body":
        signature = sign(body + b" ", VERIFIER)
    response = post(client, body=body, signature=signature)
    assert response.status_code == 401 and response.get_json()["error"] == "rejected"
    assert _count(WebhookDelivery) == 0 and huey.pending_count() == 0


def test_tampered_body_is_401(client, companies):
    body = json.dumps(classic()).encode()
    signature = sign(body, VERIFIER)
    tampered = body.replace(REALM.encode(), OTHER.encode())
    assert post(client, body=tampered, signature=signature).status_code == 401
    assert _count(WebhookDelivery) == 0 and huey.pending_count() == 0


@pytest.mark.parametrize("body", [b"not json at all", b"\xff\xfe\x00", b'{"eventNotifications": 5}',
                                  b'{"hello": "world"}', b'[{"type": "qbo.customer.updated.v1"}]', b""])
def test_signed_but_unreadable_body_is_400(client, companies, body):
    response = post(client, body=body)
    assert response.status_code == 400 and "Unreadable webhook payload" in response.get_json()["message"]
    assert _count(WebhookDelivery) == 0 and huey.pending_count() == 0


def test_oversized_body_is_413_before_it_is_read(client, companies, app):
    body = json.dumps(classic(REALM, *[("Invoice", str(i), "Update") for i in range(6000)])).encode()
    assert len(body) > 256 * 1024
    response = post(client, body=body)
    assert response.status_code == 413
    assert _count(WebhookDelivery) == 0 and huey.pending_count() == 0


def test_burst_of_100_notifications_queues_one_sync(client, companies):
    for i in range(100):
        assert post(client, classic(REALM, ("Invoice", str(i), "Create"))).status_code == 200
    assert _count(WebhookDelivery) == 100
    tasks = run_worker_drains()
    assert tasks == ["run_sync"]
    assert len(_runs()) == 1
    assert _count(WebhookDelivery, WebhookDelivery.processed_at.is_(None)) == 0


def test_duplicate_delivery_changes_nothing(client, companies):
    body = json.dumps(classic()).encode()
    assert post(client, body=body).get_json()["duplicate"] is False
    run_worker_drains()
    before = [(r.id, r.status) for r in _runs()]
    again = post(client, body=body)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert _count(WebhookDelivery) == 1 and huey.pending_count() == 0
    assert [(r.id, r.status) for r in _runs()] == before


def test_unknown_realms_and_unsynced_entities_are_acknowledged_and_ignored(client, companies):
    payload = {"eventNotifications": [
        classic("1111111111")["eventNotifications"][0],
        classic(REALM, ("Account", "3", "Update"), ("Vendor", "4", "Create"))["eventNotifications"][0]]}
    assert post(client, payload).status_code == 200
    assert run_worker_drains() == []
    assert _runs() == [] and _count(WebhookDelivery, WebhookDelivery.processed_at.is_(None)) == 0


def test_cloudevents_delivery_naming_two_companies_queues_a_sync_for_each(client, companies):
    payload = [cloudevent(REALM, "customer", "updated"), cloudevent(REALM, "invoice", "deleted"),
               cloudevent(OTHER, "customer", "created")]
    assert post(client, payload).status_code == 200
    assert run_worker_drains() == ["run_sync", "run_sync"]
    runs = {r.company_source_id: r for r in _runs()}
    # Both types changed for REALM: one run covers every object type (customers first).
    assert runs[REALM].object_type is None and runs[OTHER].object_type == "customer"


def test_disconnected_company_gets_no_sync_but_its_webhook_time(client, companies, db_session):
    db_session.execute(update(Company).values(connection_state=ConnectionState.DISCONNECTED))
    db_session.commit()
    assert post(client, classic()).status_code == 200
    assert run_worker_drains() == []
    assert _runs() == []
    assert db_session.scalar(select(Company.last_webhook_at).where(Company.source_id == REALM)) is not None


def test_inbox_survives_a_lost_drain_task(app, client, companies):
    assert post(client, classic()).status_code == 200
    huey.flush()  # the queue lost its task (Redis restarted, worker killed)
    app.extensions["tasks"].drain_webhook_inbox_periodically.call_local()
    assert len(_runs()) == 1


@pytest.fixture
def live_app(app) -> Iterator[str]:
    """Serve our app on a loopback port so the simulator can post to it."""
    with served_over_http(app) as url:
        yield url


@pytest.mark.parametrize("fmt", ["legacy", "cloudevents"])
def test_simulator_signed_webhook_after_a_change_queues_a_sync(live_app, db_session, fmt):
    with SandboxServer(companies=1, customers=3, invoices=3, webhook_url=f"{live_app}/v1/webhooks/qbo",
                       webhook_verifier=VERIFIER, webhook_format=fmt, webhook_batch_delay=0.05) as sandbox:
        realm = sandbox.sim.realms()[0]
        db_session.add(Company(source_id=realm, connection_state=ConnectionState.CONNECTED))
        db_session.commit()
        customer = sandbox.sim.records(realm, "Customer")[0]
        sandbox.sim.create_invoice(realm, customer["Id"])
        assert sandbox.sim.wait_webhooks(10)
        [delivery] = sandbox.sim.webhook_deliveries()
        assert delivery.get("status") == 200, delivery
    assert _count(WebhookDelivery) == 1
    assert run_worker_drains() == ["run_sync"]
    [run] = _runs()
    assert (run.company_source_id, run.trigger, run.object_type) == (realm, "webhook", "invoice")
