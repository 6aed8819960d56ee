"""The fast page path (index slices, pre-rendered orjson bytes, one join) answers exactly
what the plain path answered: every record filtered and sorted in full, each rendered
with ``json.dumps`` when asked, the body assembled piece by piece.

The reference reads the same records at the moment of the query, so a record's cached
bytes that outlived a change of its data would show up as a difference.
"""
from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings, strategies as st

from sandbox import Simulator
from sandbox.api import query_body
from sandbox.engine import execute
from sandbox.querylang import QueryError, parse

from conftest import ApiClient

SIM = Simulator(companies=1, customers=300, invoices=600, tie_size=60, breadth=25, seed=11,
                rate_limits_enabled=False)
API = ApiClient(SIM)
REALM = API.realm
COMPANY = SIM.company(REALM)

# Entities with a filter and a sort key the indexes do not cover (scan path, rendering alike).
EXTRA: dict[str, tuple[str, str]] = {
    "Customer": ("DisplayName LIKE '%a%'", "DisplayName"),
    "Invoice": ("TotalAmt > 400", "TotalAmt"),
    "Item": ("Name LIKE '%1%'", "Name"),
    "Account": ("Classification = 'Asset'", "Name"),
    "Vendor": ("Balance >= 0", "DisplayName"),
    "Bill": ("TotalAmt < 2000", "DocNumber"),
    "Payment": ("TotalAmt >= 10", "TxnDate"),
    "JournalEntry": ("Adjustment = false", "TxnDate"),
}
ENTITIES = sorted(EXTRA)
TIME_FIELDS = ("MetaData.CreateTime", "MetaData.LastUpdatedTime")
ACTIVE = (None, "Active = true", "Active = false", "Active IN (true, false)", "Active IN (false)")


def old_style(text: str) -> dict[str, Any]:
    """The QueryResponse as the plain path built it: full scan and sort, json.dumps per record."""
    q = parse(text)
    with SIM.lock:
        res = execute(COMPANY, q, SIM.config.default_max_results, SIM.config.max_results_cap, use_indexes=False)
        parts = ([json.dumps(r.data, ensure_ascii=False, separators=(",", ":")).encode("utf-8") for r in res.rows]
                 if res.rows is not None else None)
    if res.count is not None:
        body = b'{"totalCount":%d}' % res.count
    elif not parts:
        body = b"{}"
    else:
        body = (b'{"' + res.entity.encode() + b'":[' + b",".join(parts) +
                b'],"startPosition":%d,"maxResults":%d}' % (res.start, len(parts)))
    return json.loads(body)


def served(text: str) -> dict[str, Any]:
    """The QueryResponse the simulator serves over its HTTP API."""
    resp = API.query(text)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"QueryResponse", "time"}
    return body["QueryResponse"]


def stamps(entity: str) -> list[str]:
    recs = SIM.records(REALM, entity)
    return sorted({r["MetaData"][f] for r in recs for f in ("CreateTime", "LastUpdatedTime")})


@st.composite
def statements(draw: st.DrawFn) -> str:
    """A statement of the shapes clients send: time bounds, Active, a filter, an order, a page."""
    entity = draw(st.sampled_from(ENTITIES))
    extra_filter, extra_order = EXTRA[entity]
    where = []
    if draw(st.booleans()):
        field = draw(st.sampled_from(TIME_FIELDS))
        op = draw(st.sampled_from(["=", "<", ">", "<=", ">="]))
        where.append(f"{field} {op} '{draw(st.sampled_from(stamps(entity)))}'")
    if COMPANY.tables[entity].has_active:
        active = draw(st.sampled_from(ACTIVE))
        if active:
            where.append(active)
    if draw(st.integers(0, 3)) == 0:
        where.append(extra_filter)
    if draw(st.integers(0, 5)) == 0:
        ids = draw(st.lists(st.integers(1, 700), min_size=1, max_size=6))
        where.append(f"Id IN ({', '.join(repr(str(i)) for i in ids)})")
    count = draw(st.integers(0, 5)) == 0
    text = f"SELECT {'COUNT(*)' if count else '*'} FROM {entity}"
    if where:
        text += " WHERE " + " AND ".join(where)
    order = draw(st.sampled_from(["", "Id", *TIME_FIELDS, extra_order]))
    if order:
        text += f" ORDERBY {order}" + draw(st.sampled_from(["", " ASC", " DESC"]))
    if draw(st.booleans()):
        text += f" STARTPOSITION {draw(st.integers(1, 700))}"
    if draw(st.booleans()):
        text += f" MAXRESULTS {draw(st.sampled_from([0, 1, 7, 100, 999, 1000, 1500]))}"
    return text


@settings(max_examples=250, deadline=None)
@given(text=statements())
def test_fast_path_answers_what_the_plain_path_answered(text: str) -> None:
    assert served(text) == old_style(text)


def test_the_backfill_pages_match_page_by_page() -> None:
    """Every page of the service's backfill statements, overlapping by one record, as it reads them."""
    for entity, where in (("Customer", " WHERE Active IN (true, false)"), ("Invoice", ""),
                          ("Item", " WHERE Active IN (true, false)")):
        for field in TIME_FIELDS:
            start, seen = 1, set()
            while True:
                text = f"SELECT * FROM {entity}{where} ORDERBY {field} STARTPOSITION {start} MAXRESULTS 100"
                got = served(text)
                assert got == old_style(text)
                if not got:
                    break
                seen |= {r["Id"] for r in got[entity]}
                start += 99
            assert seen == {r["Id"] for r in SIM.records(REALM, entity)}  # inactive ones included


def _all_pages_match(entities: list[str]) -> None:
    for entity in entities:
        for text in (f"SELECT * FROM {entity} WHERE Active IN (true, false) ORDERBY MetaData.LastUpdatedTime "
                     f"MAXRESULTS 1000" if COMPANY.tables[entity].has_active else
                     f"SELECT * FROM {entity} ORDERBY MetaData.LastUpdatedTime MAXRESULTS 1000",
                     f"SELECT COUNT(*) FROM {entity}"):
            assert served(text) == old_style(text)


def test_changes_are_served_at_once_never_from_stale_bytes() -> None:
    sim = Simulator(companies=1, customers=40, invoices=80, tie_size=10, breadth=8, seed=12,
                    rate_limits_enabled=False)
    api = ApiClient(sim)
    realm = api.realm
    company = sim.company(realm)

    def matches(entity: str) -> None:
        # The same comparison as above, on this simulator.
        text = (f"SELECT * FROM {entity}" + (" WHERE Active IN (true, false)" if company.tables[entity].has_active
                                             else "") + " ORDERBY MetaData.LastUpdatedTime MAXRESULTS 1000")
        resp = api.query(text)
        assert resp.status_code == 200
        q = parse(text)
        with sim.lock:
            res = execute(company, q, 1000, 1000, use_indexes=False)
            want = [json.loads(json.dumps(r.data)) for r in res.rows or []]
        assert resp.get_json()["QueryResponse"].get(entity, []) == want

    try:
        for entity in ("Customer", "Invoice", "Vendor", "Bill", "Item"):
            matches(entity)  # every record served once: its bytes are cached from here on
        sim.advance_clock(120)
        sim.update_record(realm, "Customer", 3, DisplayName="Renamed Ltd")
        sim.update_record(realm, "Vendor", 2, CompanyName="Other Co")
        sim.update_invoice(realm, 5, Balance=0)
        sim.deactivate_record(realm, "Item", 1)
        sim.delete_record(realm, "Bill", 1)
        sim.create_record(realm, "Vendor", DisplayName="Newcomer")
        sim.merge_customers(realm, 4, 6)
        sim.create_tied_records(realm, "Vendor", 5)
        for entity in ("Customer", "Invoice", "Vendor", "Bill", "Item"):
            matches(entity)
        renamed = api.rows("SELECT * FROM Customer WHERE Id = '3'")
        assert renamed[0]["DisplayName"] == "Renamed Ltd" and renamed[0]["SyncToken"] != "0"
        sim.generate(companies=1, customers=30, invoices=30, seed=13)
        api2 = ApiClient(sim)
        assert len(api2.rows("SELECT * FROM Customer WHERE Active IN (true, false) MAXRESULTS 1000")) == 30
    finally:
        sim.close()


def test_batch_items_are_the_same_pages() -> None:
    texts = ["SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY MetaData.CreateTime "
             "STARTPOSITION 11 MAXRESULTS 50", "SELECT COUNT(*) FROM Invoice", "SELECT * FROM Item WHERE Active = false"]
    resp = API.http.post(f"/v3/company/{REALM}/batch", headers=API.headers(),
                         json={"BatchItemRequest": [{"bId": str(n), "Query": t} for n, t in enumerate(texts)]})
    assert resp.status_code == 200
    items = resp.get_json()["BatchItemResponse"]
    assert [item["QueryResponse"] for item in items] == [old_style(t) for t in texts]
    assert [json.loads(query_body(SIM, COMPANY, t)) for t in texts] == [old_style(t) for t in texts]


def test_a_bad_statement_is_refused_alike() -> None:
    for text in ("SELECT * FROM Customer WHERE Nope = 1", "SELECT * FROM Nothing", "SELECT name FROM Invoice"):
        resp = API.query(text)
        assert resp.status_code == 400
        try:
            old_style(text)
        except QueryError as exc:
            assert resp.get_json()["Fault"]["Error"][0]["code"] == exc.code
        else:
            raise AssertionError(f"the plain path accepted {text!r}")


def test_a_record_orjson_cannot_write_is_served_as_before() -> None:
    sim = Simulator(companies=1, customers=5, invoices=5, seed=14, rate_limits_enabled=False)
    api = ApiClient(sim)
    try:
        resp = api.http.post(f"/v3/company/{api.realm}/vendor", headers=api.headers(),
                             data='{"DisplayName": "Big Numbers Inc", "Balance": 123456789012345678901234567890}',
                             content_type="application/json")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        vendors = api.rows("SELECT * FROM Vendor WHERE DisplayName = 'Big Numbers Inc'", "Vendor")
        assert [v["Balance"] for v in vendors] == [123456789012345678901234567890]
    finally:
        sim.close()
