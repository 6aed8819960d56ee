"""Xero's limits with their headers and 429s, injected faults, and per-tenant stats."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sandbox.testing import SandboxServer

from xero_client import XeroClient, install, xserver  # noqa: F401 (fixtures)


def _connected(server: SandboxServer, **options) -> XeroClient:
    client = install(server, rate_limits_enabled=True, **options)
    client.connect(client.sim.tenants())
    return client


def test_minute_limit_per_tenant_with_headers(xserver: SandboxServer) -> None:
    xero = _connected(xserver)
    t1, t2, _ = xero.sim.tenants()
    remaining = []
    for _ in range(60):
        resp = xero.get("Accounts", t1)
        assert resp.status_code == 200
        remaining.append(int(resp.headers["X-MinLimit-Remaining"]))
    assert remaining == list(range(59, -1, -1))
    assert resp.headers["X-DayLimit-Remaining"] == "4940" and resp.headers["X-AppMinLimit-Remaining"] == "9940"
    refused = xero.get("Accounts", t1)
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert xero.get("Accounts", t2).status_code == 200  # another tenant has its own window
    xero.sim.advance_clock(60)
    assert xero.get("Accounts", t1).status_code == 200
    stats = xero.sim.stats(t1)
    assert stats["by_endpoint"] == {"Accounts": 62} and stats["throttled_by_problem"] == {"minute": 1}
    assert stats["by_status"] == {"200": 61, "429": 1}


def test_day_limit_is_a_setting_and_answers_day(xserver: SandboxServer) -> None:
    xero = _connected(xserver, per_day=5)
    tenant = xero.sim.tenants()[0]
    assert [xero.get("Contacts", tenant).status_code for _ in range(5)] == [200] * 5
    refused = xero.get("Contacts", tenant)
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "day"
    assert refused.headers["X-DayLimit-Remaining"] == "0" and refused.headers["X-MinLimit-Remaining"] == "55"
    assert int(refused.headers["Retry-After"]) > 86000


def test_app_minute_limit_spans_tenants(xserver: SandboxServer) -> None:
    xero = _connected(xserver, app_per_minute=3)
    t1, t2, t3 = xero.sim.tenants()
    assert [xero.get("Accounts", t).status_code for t in (t1, t2, t3)] == [200] * 3
    refused = xero.get("Accounts", t1)
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "appminute"


def test_five_concurrent_per_tenant(xserver: SandboxServer) -> None:
    xero = _connected(xserver, latency=0.4)
    tenant = xero.sim.tenants()[0]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: xero.get("Accounts", tenant).status_code, range(8)))
    stats = xero.sim.stats(tenant)
    assert stats["peak_concurrency"] <= 5
    assert statuses.count(429) == stats["throttled_by_problem"].get("concurrent", 0) >= 1
    assert statuses.count(200) == stats["by_status"]["200"]


def test_limits_switch_off(xserver: SandboxServer) -> None:
    xero = install(xserver, per_minute=2)
    xero.connect(xero.sim.tenants()[:1])
    assert {xero.get("Accounts", xero.sim.tenants()[0]).status_code for _ in range(5)} == {200}


def test_faults_per_endpoint_for_n_requests(xserver: SandboxServer) -> None:
    xero = install(xserver)
    xero.connect(xero.sim.tenants()[:1])
    tenant = xero.sim.tenants()[0]
    xero.sim.inject_fault("503", target="Invoices", count=2)
    xero.sim.inject_fault("500", target="Payments", count=1, tenant=tenant)
    xero.sim.inject_fault("401", target="Contacts", count=1)
    first, second = xero.get("Invoices", tenant), xero.get("Invoices", tenant)
    assert [first.status_code, second.status_code] == [503, 503] and first.text == "The Organisation is offline"
    assert xero.get("Accounts", tenant).status_code == 200  # other endpoints unaffected
    assert xero.get("Invoices", tenant).status_code == 200
    assert [xero.get("Payments", tenant).status_code for _ in range(2)] == [500, 200]
    expired = xero.get("Contacts", tenant)
    assert expired.status_code == 401 and expired.json()["Detail"].startswith("TokenExpired")
    assert xero.get("Contacts", tenant).status_code == 200
    assert xero.sim.stats(tenant)["by_status"] == {"503": 2, "200": 4, "500": 1, "401": 1}
    xero.sim.inject_fault("maintenance", target="api", count=1)
    assert "maintenance" in xero.get("Items", tenant).text


def test_admin_endpoints_over_http(xserver: SandboxServer) -> None:
    xero = install(xserver)
    base = xserver.url + "/_sandbox/xero"
    tenant = xero.sim.tenants()[0]
    assert xero.http.get(base + "/health").json()["tenants"] == xero.sim.tenants()
    made = xero.http.post(f"{base}/records/{tenant}/Contacts", json={"Name": "Ōtaki Orchards"}).json()
    assert made["ContactStatus"] == "ACTIVE" and xero.sim.get(tenant, "Contacts", made["ContactID"])["Name"] == \
        "Ōtaki Orchards"
    url = xero.http.get(base + "/authorize", params={"tenant": tenant, "state": "z"}).json()["redirect_url"]
    assert "code=" in url and "state=z" in url
    assert [c["tenantId"] for c in xero.http.get(base + "/connections").json()] == [tenant]
    xero.http.post(base + "/faults", json={"kind": "503", "target": "Contacts", "count": 1})
    assert xero.http.get(base + "/faults").json()[0]["kind"] == "503"
    assert xero.http.post(base + "/clock", json={"advance_seconds": 10}).status_code == 200
    assert xero.http.get(f"{base}/stats/{tenant}").json()["requests"] == 0


def test_default_app_makes_its_xero_simulator_on_first_use() -> None:
    with SandboxServer(companies=1, customers=2, invoices=2, tie_size=1) as server:
        assert server.xero is None
        import requests
        health = requests.get(server.url + "/_sandbox/xero/health").json()
        assert server.xero is not None and health["tenants"] == server.xero.tenants() and len(health["tenants"]) == 2
