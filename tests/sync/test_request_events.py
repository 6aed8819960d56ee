"""Every request to Intuit reaches the client's observers (the budget and the metrics count them)."""
from __future__ import annotations

from datetime import timedelta

from dashboard.models import utcnow
from dashboard.qbo.client import QboClient, RequestEvent
from dashboard.sync.policy import RetryPolicy
from tests.sync.conftest import connect, generate


def _client(sandbox_server, realm: str, observers) -> QboClient:
    token = sandbox_server.sim.issue_tokens(realm)["access_token"]
    return QboClient(sandbox_server.url, realm, lambda: token, lambda _stale: token,
                     policy=RetryPolicy(retries=2, delay=0.0, backoff=1.0, max_wait=0.0),
                     sleep=lambda _s: None, observers=observers)


def test_observers_see_each_request_with_its_kind_status_and_items(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm = generate(sim, customers=3, invoices=2)
    connect(sim, realm)
    seen: list[RequestEvent] = []
    client = _client(sandbox_server, realm, [seen.append])
    sim.inject_fault("500", realm=realm, count=1)
    client.query("SELECT * FROM Customer")
    client.batch_query({"a": "SELECT COUNT(*) FROM Customer", "b": "SELECT COUNT(*) FROM Invoice"})
    client.cdc(["Customer", "Invoice"], utcnow() - timedelta(days=1))
    assert [(e.kind, e.status, e.items) for e in seen] == [
        ("query", 500, 1), ("query", 200, 1), ("batch", 200, 2), ("cdc", 200, 1)]
    assert all(e.realm == realm and e.seconds >= 0 for e in seen)
    assert seen[1].intuit_tid  # the simulator sends one, as Intuit does
    assert sim.stats(realm)["requests"] == len(seen)


def test_a_failing_observer_never_fails_the_request(qbo_app, sandbox_server):
    realm = generate(sandbox_server.sim, customers=2, invoices=0)
    seen: list[str] = []

    def broken(_event: RequestEvent) -> None:
        raise RuntimeError("the metrics backend is down")

    client = _client(sandbox_server, realm, [broken, lambda e: seen.append(e.kind)])
    body = client.query("SELECT * FROM Customer")
    assert len(body["QueryResponse"]["Customer"]) == 2 and seen == ["query"]
