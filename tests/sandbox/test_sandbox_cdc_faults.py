"""Batch, CDC, mutations, fault injection, latency and the skewed clock."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

import sandbox.api as sandbox_api
from sandbox import ObjectNotFound, Simulator
from sandbox.clock import parse_timestamp

from conftest import ApiClient


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone(timedelta(hours=-8))).strftime("%Y-%m-%dT%H:%M:%S-08:00")


def _cdc(api: ApiClient, since: str, entities: str = "Customer,Invoice"):
    return api.http.get(f"/v3/company/{api.realm}/cdc", query_string={"entities": entities, "changedSince": since},
                        headers=api.headers())


def test_batch_queries(api: ApiClient) -> None:
    body = {"BatchItemRequest": [
        {"bId": "c", "Query": "select * from Customer maxresults 3"},
        {"bId": "n", "Query": "select count(*) from Invoice"},
        {"bId": "bad", "Query": "select * form Invoice"},
    ]}
    r = api.http.post(f"/v3/company/{api.realm}/batch", data=json.dumps(body),
                      headers={**api.headers(), "Content-Type": "application/json"})
    assert r.status_code == 200
    items = {i["bId"]: i for i in r.get_json()["BatchItemResponse"]}
    assert len(items["c"]["QueryResponse"]["Customer"]) == 3
    assert items["n"]["QueryResponse"] == {"totalCount": 120}
    assert items["bad"]["Fault"]["Error"][0]["code"] == "4000"
    assert "time" in r.get_json()


def test_cdc_window_tombstones_and_order(api: ApiClient, sim: Simulator) -> None:
    realm = api.realm
    start = sim.now()
    _ = _cdc(api, _iso(start + 5))
    assert _cdc(api, _iso(start + 5)).get_json()["CDCResponse"] == [{"QueryResponse": [{}]}]
    inv = sim.records(realm, "Invoice")[0]["Id"]
    cust = sim.records(realm, "Customer")[0]["Id"]
    sim.update_customer(realm, cust, Notes="changed")
    sim.delete_invoice(realm, inv)
    sim.advance_clock(2)
    changed = sim.update_invoice(realm, sim.records(realm, "Invoice")[0]["Id"], PrivateNote="x")
    r = _cdc(api, _iso(start - 1))
    assert r.status_code == 200
    groups = r.get_json()["CDCResponse"][0]["QueryResponse"]
    by_entity = {next(k for k in g if k in ("Customer", "Invoice")): g for g in groups}
    assert any(c["Id"] == cust and c["Notes"] == "changed" for c in by_entity["Customer"]["Customer"])
    invoices = by_entity["Invoice"]["Invoice"]
    stub = invoices[-1]
    assert stub == {"domain": "QBO", "status": "Deleted", "Id": inv, "MetaData": {"LastUpdatedTime": stub[
        "MetaData"]["LastUpdatedTime"]}}
    live = [i for i in invoices if i.get("status") != "Deleted"]
    assert live[-1]["Id"] == changed["Id"]
    stamps = [parse_timestamp(i["MetaData"]["LastUpdatedTime"], 0) for i in live]
    assert stamps == sorted(stamps)
    assert inv in sim.deleted_ids(realm, "Invoice")
    # The deleted invoice is gone from queries and reads.
    assert api.query(f"select * from Invoice where Id = '{inv}'").get_json()["QueryResponse"] == {}


def test_cdc_lookback_limit(api: ApiClient, sim: Simulator) -> None:
    r = _cdc(api, _iso(sim.now() - 31 * 86400))
    assert r.status_code == 400 and r.get_json()["Fault"]["type"] == "ValidationFault"
    assert _cdc(api, _iso(sim.now() - 29 * 86400)).status_code == 200


def test_cdc_cap_whole_response() -> None:
    sim = Simulator(companies=1, customers=700, invoices=700, tie_size=0, rate_limits_enabled=False)
    api = ApiClient(sim)
    since = sim.now() - 1
    for c in sim.records(api.realm, "Customer")[:600]:
        sim.update_customer(api.realm, c["Id"], Notes="bulk")
    for i in sim.records(api.realm, "Invoice")[:600]:
        sim.update_invoice(api.realm, i["Id"], PrivateNote="bulk")
    groups = _cdc(api, _iso(since)).get_json()["CDCResponse"][0]["QueryResponse"]
    total = sum(len(g.get("Customer", g.get("Invoice", []))) for g in groups)
    assert total == 1000


def test_mutations_bump_sync_token_and_time(api: ApiClient, sim: Simulator) -> None:
    realm = api.realm
    c = sim.create_customer(realm, DisplayName="Renée D'Angelo")
    assert c["SyncToken"] == "0" and c["Active"] is True
    sim.advance_clock(5)
    u = sim.update_customer(realm, c["Id"], GivenName="Renée")
    assert u["SyncToken"] == "1" and u["MetaData"]["LastUpdatedTime"] > c["MetaData"]["LastUpdatedTime"]
    assert u["MetaData"]["CreateTime"] == c["MetaData"]["CreateTime"]
    d = sim.deactivate_customer(realm, c["Id"])
    assert d["Active"] is False and d["SyncToken"] == "2"
    assert api.query(f"select * from Customer where Id = '{c['Id']}'").get_json()["QueryResponse"] == {}
    inv = sim.create_invoice(realm, c["Id"])
    assert inv["CustomerRef"] == {"value": c["Id"], "name": "Renée D'Angelo"}
    sim.delete_invoice(realm, inv["Id"])
    with pytest.raises(ObjectNotFound) as exc:
        sim.delete_invoice(realm, inv["Id"])
    assert exc.value.code == "610"


def test_api_write_paths(api: ApiClient, sim: Simulator) -> None:
    base = f"/v3/company/{api.realm}"
    r = api.http.post(f"{base}/customer", json={"DisplayName": "Björn Ødegaard"}, headers=api.headers())
    cust = r.get_json()["Customer"]
    r = api.http.post(f"{base}/customer", json={"Id": cust["Id"], "SyncToken": "7", "sparse": True},
                      headers=api.headers())
    assert r.status_code == 400 and r.get_json()["Fault"]["Error"][0]["code"] == "5010"
    inv = api.http.post(f"{base}/invoice", json={"CustomerRef": {"value": cust["Id"]}, "Line": [
        {"Amount": 10.0, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"Qty": 1, "UnitPrice": 10}}]},
        headers=api.headers()).get_json()["Invoice"]
    assert inv["TotalAmt"] == 10.0
    assert api.http.get(f"{base}/invoice/{inv['Id']}", headers=api.headers()).get_json()["Invoice"]["Id"] == inv["Id"]
    d = api.http.post(f"{base}/invoice?operation=delete", json={"Id": inv["Id"], "SyncToken": "0"},
                      headers=api.headers())
    assert d.get_json()["Invoice"] == {"status": "Deleted", "domain": "QBO", "Id": inv["Id"]}
    again = api.http.post(f"{base}/invoice?operation=delete", json={"Id": inv["Id"], "SyncToken": "0"},
                          headers=api.headers())
    assert again.status_code == 400 and again.get_json()["Fault"]["Error"][0]["code"] == "610"


COUNT = "select count(*) from Customer"


def test_fault_schedule_nth_and_next_n(api: ApiClient, sim: Simulator) -> None:
    sim.inject_fault("500", nth=3)
    codes = [api.query(COUNT).status_code for _ in range(4)]
    assert codes == [200, 200, 500, 200]
    other = sim.realms()[1]
    sim.inject_fault("503", realm=api.realm, count=2)
    r = api.query(COUNT)
    assert r.status_code == 503 and r.content_type.startswith("text/html")
    assert api.query(COUNT).status_code == 503
    assert api.query(COUNT).status_code == 200
    assert sim.stats(api.realm)["by_outcome"]["fault:503"] == 2
    assert sim.stats(other)["requests"] == 0


def test_fault_429_truncated_non_json(api: ApiClient, sim: Simulator) -> None:
    sim.inject_fault("429")
    r = api.query(COUNT)
    assert r.status_code == 429 and r.get_json()["Fault"]["Error"][0]["code"] == "3001"
    sim.inject_fault("truncated")
    r = api.query("select * from Customer")
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.data)
    sim.inject_fault("non_json")
    r = api.query(COUNT)
    assert r.status_code == 200 and r.content_type.startswith("text/html") and r.data.startswith(b"<!DOCTYPE")
    assert api.query(COUNT).status_code == 200


def test_fault_probability_is_seeded() -> None:
    def run() -> list[int]:
        api = ApiClient(Simulator(companies=1, customers=3, invoices=3, seed=11, rate_limits_enabled=False))
        api.sim.inject_fault("500", probability=0.4)
        return [api.query(COUNT).status_code for _ in range(20)]
    a = run()
    assert a == run() and 500 in a and 200 in a


def test_fault_slow_and_latency(api: ApiClient, sim: Simulator, monkeypatch) -> None:
    slept: list[float] = []  # the delays the gateway waits, recorded instead of waited
    monkeypatch.setattr(sandbox_api, "time", SimpleNamespace(sleep=slept.append))
    assert api.query(COUNT).status_code == 200 and slept == []
    sim.inject_fault("slow", delay=0.3)  # the next request only
    assert api.query(COUNT).status_code == 200 and slept == [0.3]
    sim.set_latency(0.2)
    assert api.query(COUNT).status_code == 200 and slept == [0.3, 0.2]


def test_fault_access_token_revoked_early(api: ApiClient, sim: Simulator) -> None:
    sim.inject_fault("revoke_token")
    r = api.query(COUNT)
    assert r.status_code == 401 and r.get_json()["fault"]["error"][0]["code"] == "3200"
    assert api.query(COUNT).status_code == 401


def test_token_endpoint_fault(api: ApiClient, sim: Simulator) -> None:
    sim.inject_fault("503", target="oauth")
    r = api.http.post("/oauth2/v1/tokens/bearer", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert r.status_code == 503


def test_skewed_clock_drives_times(api: ApiClient, sim: Simulator) -> None:
    sim.set_clock_offset(-3 * 3600)
    before = time.time() - 3 * 3600
    body = api.query(COUNT).get_json()
    c = sim.create_customer(api.realm, DisplayName="Skewed Søren")
    after = time.time() - 3 * 3600
    # Three hours behind real time, read between two looks at the real clock
    # (the answer's time to the millisecond, MetaData to the second).
    assert int(before * 1000) <= round(parse_timestamp(body["time"], 0) * 1000) <= after * 1000
    assert int(before) <= parse_timestamp(c["MetaData"]["CreateTime"], 0) <= after
    # CDC windows use the simulated clock too: 29 days before simulated now is fine.
    assert _cdc(api, _iso(sim.now() - 29 * 86400)).status_code == 200


def test_generator_is_deterministic() -> None:
    anchor = 1_700_000_000
    a = Simulator(companies=2, customers=40, invoices=40, anchor=anchor, seed=9)
    b = Simulator(companies=2, customers=40, invoices=40, anchor=anchor, seed=9)
    assert a.realms() == b.realms()
    r = a.realms()[0]
    assert a.records(r, "Invoice") == b.records(r, "Invoice")
    names = " ".join(c["DisplayName"] for c in a.records(r, "Customer"))
    assert "'" in names and any(ch in names for ch in "éëöüø")
    assert all(len(x) == 16 and x.isdigit() for x in a.realms())
