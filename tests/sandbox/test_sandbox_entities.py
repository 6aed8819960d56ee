"""All 28 accounting entities: queries, reads, CDC, writes, delete/deactivate, merge, breadth data."""
from __future__ import annotations

import json
import time
from typing import Any, Iterator

import pytest

from sandbox import ObjectNotFound, SandboxError, Simulator
from sandbox.breadth import tie_time
from sandbox.entities import BY_NAME, CDC_UNSUPPORTED, ENTITIES, ref_ids

from conftest import ApiClient
from test_sandbox_webhooks import VERIFIER, Receiver

ANCHOR = 1_760_000_000 // 86400 * 86400
NAMES = [e.name for e in ENTITIES]
ALL = "Active IN (true, false)"


@pytest.fixture(scope="module")
def wide() -> Iterator[Simulator]:
    """One company with 12 records of every entity (transactions × 2), read-only for its tests."""
    s = Simulator(companies=1, customers=30, invoices=30, tie_size=4, breadth=12, transaction_factor=2, seed=11,
                  anchor=ANCHOR, rate_limits_enabled=False)
    yield s
    s.close()


@pytest.fixture
def fresh() -> Iterator[Simulator]:
    """A company to change (clock at the anchor's day, so CDC sees the generated recent changes)."""
    s = Simulator(companies=1, customers=20, invoices=20, tie_size=3, breadth=6, seed=5, rate_limits_enabled=False)
    yield s
    s.close()


def _where_all(entity: str) -> str:
    return f" WHERE {ALL}" if BY_NAME[entity].active else ""


def test_the_table_names_28_entities_with_kinds_paths_and_cdc_coverage() -> None:
    assert len(ENTITIES) == 28 and len(set(NAMES)) == 28
    assert sorted(CDC_UNSUPPORTED) == ["TaxAgency", "TaxCode", "TaxRate", "TimeActivity"]
    assert BY_NAME["JournalEntry"].path == "journalentry" and BY_NAME["Bill"].kind == "transaction"
    lists = {e.name for e in ENTITIES if e.name_list}
    assert lists == {"Account", "Class", "Department", "Item", "PaymentMethod", "Term", "Budget", "TaxAgency",
                     "TaxCode", "TaxRate", "Customer", "Vendor", "Employee"}
    assert not BY_NAME["TaxAgency"].active and BY_NAME["Vendor"].active


def test_breadth_makes_every_entity_and_counts_match_count_queries(wide: Simulator) -> None:
    api = ApiClient(wide)
    counts = wide.entity_counts(api.realm)
    active = wide.entity_counts(api.realm, include_inactive=False)
    for e in ENTITIES:
        expected = 30 if e.name in ("Customer", "Invoice") else (24 if e.kind == "transaction" else 12)
        assert counts[e.name] == expected, e.name
        everything = api.query(f"SELECT COUNT(*) FROM {e.name}{_where_all(e.name)}").get_json()
        assert everything["QueryResponse"]["totalCount"] == counts[e.name], e.name
        default = api.query(f"select count(*) from {e.name}").get_json()["QueryResponse"]["totalCount"]
        assert default == active[e.name], e.name  # name lists skip inactive records unless asked
    assert any(active[e.name] < counts[e.name] for e in ENTITIES if e.active), "some records should be inactive"


def test_select_pages_every_entity_in_id_order(wide: Simulator) -> None:
    api = ApiClient(wide)
    for name in NAMES:
        ids = [r["Id"] for r in wide.records(api.realm, name)]
        first = api.rows(f"SELECT * FROM {name}{_where_all(name)} ORDERBY Id STARTPOSITION 1 MAXRESULTS 7", name)
        rest = api.rows(f"SELECT * FROM {name}{_where_all(name)} ORDERBY Id STARTPOSITION 8 MAXRESULTS 1000", name)
        assert [r["Id"] for r in first + rest] == ids, name


def test_where_terms_on_every_entity(wide: Simulator) -> None:
    api = ApiClient(wide)
    count = lambda q: api.query(q).get_json()["QueryResponse"]["totalCount"]  # noqa: E731
    for name in NAMES:
        recs = wide.records(api.realm, name)
        extra = f" AND {ALL}" if BY_NAME[name].active else ""
        pivot = sorted(r["MetaData"]["LastUpdatedTime"] for r in recs)[len(recs) // 2]
        newer = count(f"SELECT COUNT(*) FROM {name} WHERE MetaData.LastUpdatedTime >= '{pivot}'{extra}")
        assert newer == sum(1 for r in recs if _epoch(r["MetaData"]["LastUpdatedTime"]) >= _epoch(pivot)), name
        created = sorted(r["MetaData"]["CreateTime"] for r in recs)[len(recs) // 3]
        older = count(f"SELECT COUNT(*) FROM {name} WHERE MetaData.CreateTime < '{created}'{extra}")
        assert older == sum(1 for r in recs if _epoch(r["MetaData"]["CreateTime"]) < _epoch(created)), name
        picked = [recs[0]["Id"], recs[-1]["Id"]]
        rows = api.rows(f"SELECT * FROM {name} WHERE Id IN ('{picked[0]}', '{picked[1]}'){extra}", name)
        assert sorted(r["Id"] for r in rows) == sorted(picked), name
        desc = api.rows(f"SELECT * FROM {name}{_where_all(name)} ORDERBY MetaData.LastUpdatedTime DESC "
                        "MAXRESULTS 1000", name)
        keys = [(-_epoch(r["MetaData"]["LastUpdatedTime"]), int(r["Id"])) for r in desc]
        assert keys == sorted(keys) and len(desc) == len(recs), name


def test_declared_properties_filter(wide: Simulator) -> None:
    api = ApiClient(wide)
    bill = wide.records(api.realm, "Bill")[0]
    vendor_id = bill["VendorRef"]["value"]
    rows = api.rows(f"SELECT * FROM Bill WHERE VendorRef = '{vendor_id}' MAXRESULTS 1000", "Bill")
    assert rows and {r["VendorRef"]["value"] for r in rows} == {vendor_id}
    assert len(rows) == sum(1 for b in wide.records(api.realm, "Bill") if b["VendorRef"]["value"] == vendor_id)
    item = wide.records(api.realm, "Item")[0]
    found = api.rows(f"select * from Item where Name = '{item['Name']}' and {ALL}", "Item")
    assert [r["Id"] for r in found] == [item["Id"]]
    bad = api.query("SELECT * FROM Transfer WHERE DisplayName = 'x'").get_json()
    assert bad["Fault"]["Error"][0]["code"] == "4001"


def test_read_one_of_every_entity_on_its_lower_case_path(wide: Simulator) -> None:
    api = ApiClient(wide)
    for e in ENTITIES:
        rec = wide.records(api.realm, e.name)[-1]
        resp = api.http.get(f"/v3/company/{api.realm}/{e.path}/{rec['Id']}", headers=api.headers())
        assert resp.status_code == 200, (e.name, resp.get_data(as_text=True))
        assert resp.get_json()[e.name] == rec
    missing = api.http.get(f"/v3/company/{api.realm}/journalentry/99999", headers=api.headers())
    assert missing.status_code == 400 and missing.get_json()["Fault"]["Error"][0]["code"] == "610"


def test_generated_references_name_existing_records(wide: Simulator) -> None:
    realm = wide.realms()[0]
    ids = {name: {r["Id"] for r in wide.records(realm, name)} for name in NAMES}
    for e in ENTITIES:
        for ref in e.refs:
            values = [v for rec in wide.records(realm, e.name) for v in ref_ids(rec, ref)]
            assert values, f"{e.name}.{ref.path} is never filled"
            assert set(values) <= ids[ref.target], f"{e.name}.{ref.path} names missing {ref.target}s"
    # Sub-accounts, classes and departments name a parent of their own kind.
    assert any("ParentRef" in a for a in wide.records(realm, "Account"))
    # In breadth mode the classic invoices' lines name generated Items.
    items = ids["Item"]
    lines = [ln for inv in wide.records(realm, "Invoice") for ln in inv["Line"] if "SalesItemLineDetail" in ln]
    assert lines and {ln["SalesItemLineDetail"]["ItemRef"]["value"] for ln in lines} <= items


def test_breadth_is_deterministic_and_leaves_customers_as_before() -> None:
    def dump(sim: Simulator, name: str) -> list[dict[str, Any]]:
        return sim.records(sim.realms()[0], name)

    kw = dict(companies=1, customers=15, invoices=15, seed=21, anchor=ANCHOR, rate_limits_enabled=False)
    a, b = Simulator(breadth=5, **kw), Simulator(breadth=5, **kw)
    plain, other = Simulator(**kw), Simulator(breadth=5, **{**kw, "seed": 22})
    try:
        for name in NAMES:
            assert dump(a, name) == dump(b, name), name
        assert dump(a, "Bill") != dump(other, "Bill")
        assert dump(a, "Customer") == dump(plain, "Customer")
        assert all(dump(plain, n) == [] for n in NAMES if n not in ("Customer", "Invoice"))
        strip = lambda invs: [{**i, "Line": None} for i in invs]  # noqa: E731 - only ItemRefs differ
        assert strip(dump(a, "Invoice")) == strip(dump(plain, "Invoice"))
    finally:
        for s in (a, b, plain, other):
            s.close()


def test_ties_share_one_timestamp_and_page_by_id() -> None:
    sim = Simulator(companies=1, customers=5, invoices=5, breadth=3, ties={"Item": 1100}, seed=2, anchor=ANCHOR,
                    rate_limits_enabled=False)
    try:
        api = ApiClient(sim)
        items = sim.records(api.realm, "Item")
        assert len(items) == 1100
        stamp = items[0]["MetaData"]["LastUpdatedTime"]
        assert _epoch(stamp) == tie_time(ANCHOR)
        assert all(i["MetaData"]["LastUpdatedTime"] == stamp == i["MetaData"]["CreateTime"] for i in items)
        q = f"SELECT * FROM Item WHERE MetaData.LastUpdatedTime >= '{stamp}' AND {ALL} ORDERBY MetaData.LastUpdatedTime"
        page1 = api.rows(q + " STARTPOSITION 1 MAXRESULTS 1000", "Item")
        page2 = api.rows(q + " STARTPOSITION 1001 MAXRESULTS 1000", "Item")
        assert [int(r["Id"]) for r in page1 + page2] == list(range(1, 1101))
        with pytest.raises(ValueError):
            Simulator(companies=1, customers=1, invoices=1, ties={"Customer": 5})
    finally:
        sim.close()


def test_tied_records_created_now(fresh: Simulator) -> None:
    realm = fresh.realms()[0]
    before = fresh.entity_counts(realm)["Vendor"]
    ids = fresh.create_tied_records(realm, "Vendor", 30)
    vendors = [fresh.get(realm, "Vendor", i) for i in ids]
    assert len({v["MetaData"]["LastUpdatedTime"] for v in vendors}) == 1
    assert abs(_epoch(vendors[0]["MetaData"]["LastUpdatedTime"]) - fresh.now()) < 2
    assert fresh.entity_counts(realm)["Vendor"] == before + 30


def test_breadth_generation_of_100k_records_takes_seconds() -> None:
    started = time.perf_counter()
    sim = Simulator(companies=1, customers=4000, invoices=4000, breadth=3700, seed=9, anchor=ANCHOR,
                    rate_limits_enabled=False)
    elapsed = time.perf_counter() - started
    try:
        assert sum(sim.entity_counts(sim.realms()[0]).values()) >= 100_000
        assert elapsed < 20, f"{elapsed:.1f}s"  # about 4 s on the development machine
    finally:
        sim.close()


# ---- CDC --------------------------------------------------------------------------------
def _cdc(api: ApiClient, entities: str, since: str) -> Any:
    return api.http.get(f"/v3/company/{api.realm}/cdc", query_string={"entities": entities, "changedSince": since},
                        headers=api.headers())


def test_cdc_groups_several_entities_in_request_order_with_tombstones(fresh: Simulator) -> None:
    api = ApiClient(fresh)
    realm = api.realm
    fresh.advance_clock(60)  # past the generated data's latest change
    since = _iso(fresh.now())
    fresh.advance_clock(5)
    account = fresh.create_record(realm, "Account", Name="Petty Cash", AccountType="Bank")
    vendor = fresh.update_record(realm, "Vendor", "2", CompanyName="Renamed Ltd")
    bill_id = fresh.records(realm, "Bill")[0]["Id"]
    fresh.delete_record(realm, "Bill", bill_id)
    resp = _cdc(api, "vendor,Bill,Account,Customer", since)
    assert resp.status_code == 200
    groups = resp.get_json()["CDCResponse"][0]["QueryResponse"]
    assert [next(k for k in g if k[0].isupper()) for g in groups] == ["Vendor", "Bill", "Account"]
    assert [o["Id"] for o in groups[0]["Vendor"]] == [vendor["Id"]] and groups[0]["Vendor"][0]["CompanyName"] == "Renamed Ltd"
    assert groups[1]["Bill"] == [{"domain": "QBO", "status": "Deleted", "Id": bill_id,
                                  "MetaData": {"LastUpdatedTime": groups[1]["Bill"][0]["MetaData"]["LastUpdatedTime"]}}]
    assert groups[2]["Account"][0]["Id"] == account["Id"]


def test_cdc_cap_applies_to_the_whole_response(fresh: Simulator) -> None:
    api = ApiClient(fresh)
    fresh.configure(cdc_max_objects=10)
    since = _iso(fresh.now())
    fresh.advance_clock(5)
    for name in ("Class", "Department", "Term"):
        fresh.create_tied_records(api.realm, name, 6)
    groups = _cdc(api, "Class,Department,Term", since).get_json()["CDCResponse"][0]["QueryResponse"]
    sizes = [len(g[k]) for g in groups for k in g if k[0].isupper()]
    assert sizes == [6, 4]


@pytest.mark.parametrize("entity", CDC_UNSUPPORTED)
def test_cdc_refuses_entities_it_does_not_cover(fresh: Simulator, entity: str) -> None:
    api = ApiClient(fresh)
    resp = _cdc(api, f"Customer,{entity.lower()}", _iso(fresh.now() - 3600))
    assert resp.status_code == 400
    err = resp.get_json()["Fault"]["Error"][0]
    assert err["code"] == "2010" and entity in err["Detail"]


# ---- writes, delete, deactivate --------------------------------------------------------
def _post(api: ApiClient, path: str, body: dict[str, Any], **params: str) -> Any:
    return api.http.post(f"/v3/company/{api.realm}/{path}", data=json.dumps(body), query_string=params,
                         headers={**api.headers(), "Content-Type": "application/json"})


def test_api_create_update_and_reference_checks(fresh: Simulator) -> None:
    api = ApiClient(fresh)
    account = fresh.records(api.realm, "Account")[0]
    made = _post(api, "item", {"Name": "Widget Polish", "Type": "Service",
                               "IncomeAccountRef": {"value": account["Id"]}})
    assert made.status_code == 200, made.get_data(as_text=True)
    item = made.get_json()["Item"]
    assert item["Active"] is True and item["SyncToken"] == "0" and fresh.get(api.realm, "Item", item["Id"]) == item
    missing = _post(api, "item", {"Name": "Ghost", "IncomeAccountRef": {"value": "9999"}})
    assert missing.status_code == 400 and missing.get_json()["Fault"]["Error"][0]["code"] == "610"
    stale = _post(api, "item", {"Id": item["Id"], "SyncToken": "7", "UnitPrice": 3})
    assert stale.get_json()["Fault"]["Error"][0]["code"] == "5010"
    updated = _post(api, "item", {"Id": item["Id"], "SyncToken": "0", "sparse": True, "UnitPrice": 3}).get_json()["Item"]
    assert updated["UnitPrice"] == 3 and updated["SyncToken"] == "1" and updated["Name"] == "Widget Polish"
    entry = _post(api, "journalentry", {"Line": [{"Amount": 5, "DetailType": "JournalEntryLineDetail",
                                                  "JournalEntryLineDetail": {"PostingType": "Debit",
                                                                             "AccountRef": {"value": "424242"}}}]})
    assert entry.get_json()["Fault"]["Error"][0]["code"] == "610"


def test_transactions_delete_and_name_lists_do_not(fresh: Simulator) -> None:
    api = ApiClient(fresh)
    realm = api.realm
    bill = fresh.records(realm, "Bill")[0]
    gone = _post(api, "bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"]}, operation="delete")
    assert gone.status_code == 200 and gone.get_json()["Bill"] == {"status": "Deleted", "domain": "QBO", "Id": bill["Id"]}
    assert bill["Id"] in fresh.deleted_ids(realm, "Bill")
    assert api.rows(f"SELECT * FROM Bill WHERE Id = '{bill['Id']}'", "Bill") == []
    again = _post(api, "bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"]}, operation="delete")
    assert again.status_code == 400 and again.get_json()["Fault"]["Error"][0]["code"] == "610"
    vendor = fresh.records(realm, "Vendor")[0]
    refused = _post(api, "vendor", {"Id": vendor["Id"], "SyncToken": vendor["SyncToken"]}, operation="delete")
    assert refused.status_code == 400 and refused.get_json()["Fault"]["Error"][0]["code"] == "500"
    with pytest.raises(SandboxError):
        fresh.delete_record(realm, "Account", "1")
    with pytest.raises(SandboxError):
        fresh.deactivate_record(realm, "Deposit", "1")
    with pytest.raises(ObjectNotFound):
        fresh.delete_record(realm, "Deposit", "4242")


def test_deactivated_name_lists_leave_default_queries(fresh: Simulator) -> None:
    api = ApiClient(fresh)
    realm = api.realm
    for name in ("Vendor", "Account", "Employee", "TaxCode"):
        rec = next(r for r in fresh.records(realm, name) if r["Active"])
        if name == "Vendor":  # through the API: a sparse update with Active=false
            resp = _post(api, "vendor", {"Id": rec["Id"], "SyncToken": rec["SyncToken"], "Active": False})
            assert resp.status_code == 200 and resp.get_json()["Vendor"]["Active"] is False
        else:
            fresh.deactivate_record(realm, name, rec["Id"])
        ids = lambda q: {r["Id"] for r in api.rows(q, name)}  # noqa: E731
        assert rec["Id"] not in ids(f"SELECT * FROM {name} MAXRESULTS 1000")
        assert rec["Id"] in ids(f"SELECT * FROM {name} WHERE Active = false MAXRESULTS 1000")
        assert rec["Id"] in ids(f"SELECT * FROM {name} WHERE {ALL} MAXRESULTS 1000")
        assert fresh.get(realm, name, rec["Id"])["SyncToken"] == str(int(rec["SyncToken"]) + 1)
    with pytest.raises(SandboxError):
        fresh.deactivate_record(realm, "TaxAgency", "1")  # no Active field


# ---- merge and webhooks ------------------------------------------------------------------
def test_merge_moves_transactions_and_deactivates_the_merged_customer(fresh: Simulator) -> None:
    realm = fresh.realms()[0]
    receiver = Receiver()
    try:
        fresh.configure_webhooks(url=receiver.url, verifier=VERIFIER, enabled=True)
        fresh.configure(webhook_batch_delay=0.05)
        active = [c for c in fresh.records(realm, "Customer") if c["Active"]]
        survivor, merged = active[0], active[1]
        fresh.create_record(realm, "Estimate", CustomerRef={"value": merged["Id"]}, Line=[], TotalAmt=0)
        refs = _customer_refs(fresh, realm)
        held = [key for key, cid in refs.items() if cid == merged["Id"]]
        assert held
        out = fresh.merge_customers(realm, survivor["Id"], merged["Id"])
        after = _customer_refs(fresh, realm)
        assert all(after[key] == survivor["Id"] for key in held)
        assert merged["Id"] not in after.values()
        gone = fresh.get(realm, "Customer", merged["Id"])
        assert gone["Active"] is False and gone["Balance"] == 0
        assert out["Balance"] == pytest.approx(survivor["Balance"] + merged["Balance"])
        assert fresh.wait_webhooks(5)
        events = [e for _h, body in receiver.received
                  for n in json.loads(body)["eventNotifications"] for e in n["dataChangeEvent"]["entities"]]
        merges = [e for e in events if e["operation"] == "Merge"]
        assert merges == [{"name": "Customer", "id": survivor["Id"], "operation": "Merge",
                           "lastUpdated": merges[0]["lastUpdated"], "deletedId": merged["Id"]}]
        updates = {(e["name"], e["id"]) for e in events if e["operation"] == "Update"}
        assert updates == set(held)
        with pytest.raises(SandboxError):
            fresh.merge_customers(realm, survivor["Id"], survivor["Id"])
        with pytest.raises(ObjectNotFound):
            fresh.merge_customers(realm, merged["Id"], survivor["Id"])  # the merged-away one is inactive
    finally:
        receiver.close()


def test_webhooks_for_any_entity(fresh: Simulator) -> None:
    realm = fresh.realms()[0]
    receiver = Receiver()
    try:
        fresh.configure_webhooks(url=receiver.url, verifier=VERIFIER, enabled=True, fmt="cloudevents")
        fresh.configure(webhook_batch_delay=0.05)
        dep = fresh.create_record(realm, "Department", Name="Annex")
        fresh.update_record(realm, "Department", dep["Id"], Name="Annex 2")
        fresh.deactivate_record(realm, "Department", dep["Id"])
        fresh.delete_record(realm, "JournalEntry", "1")
        assert fresh.wait_webhooks(5)
        events = [e for _h, body in receiver.received for e in json.loads(body)]
        assert [(e["type"], e["intuitentityid"]) for e in events] == [
            ("qbo.department.created.v1", dep["Id"]), ("qbo.department.updated.v1", dep["Id"]),
            ("qbo.department.deleted.v1", dep["Id"]), ("qbo.journalentry.deleted.v1", "1")]
    finally:
        receiver.close()


def _customer_refs(sim: Simulator, realm: str) -> dict[tuple[str, str], str]:
    """(entity, id) -> the customer id a record references (one per record in generated data)."""
    out = {}
    for e in ENTITIES:
        for ref in e.refs_to("Customer"):
            for rec in sim.records(realm, e.name):
                for value in ref_ids(rec, ref):
                    out[(e.name, rec["Id"])] = value
    return out


def _epoch(stamp: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(stamp).timestamp()


def _iso(epoch: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(int(epoch), timezone.utc).isoformat()
