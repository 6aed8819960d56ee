"""Query language, pagination, ordering and response shapes."""
from __future__ import annotations

import re

import pytest

from sandbox import Simulator
from sandbox.querylang import QueryError, parse

from conftest import ApiClient


def test_select_shape_and_time(api: ApiClient) -> None:
    resp = api.query("SELECT * FROM Customer MAXRESULTS 5")
    assert resp.status_code == 200
    assert resp.headers["intuit_tid"]
    body = resp.get_json()
    qr = body["QueryResponse"]
    assert set(qr) == {"Customer", "startPosition", "maxResults"}  # no totalCount on SELECT
    assert qr["maxResults"] == len(qr["Customer"]) == 5 and qr["startPosition"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", body["time"])
    c = qr["Customer"][0]
    assert isinstance(c["Id"], str) and isinstance(c["SyncToken"], str)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", c["MetaData"]["CreateTime"])


def test_invoice_shape(api: ApiClient) -> None:
    inv = api.rows("select * from Invoice maxresults 1", "Invoice")[0]
    assert set(inv["CustomerRef"]) == {"value", "name"}
    assert inv["Line"][-1]["DetailType"] == "SubTotalLineDetail" and "Id" not in inv["Line"][-1]
    assert inv["TotalAmt"] == pytest.approx(sum(ln["Amount"] for ln in inv["Line"][:-1]))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", inv["TxnDate"]) and inv["DocNumber"] and inv["CurrencyRef"]["value"]
    customers = {c["Id"] for c in api.sim.records(api.realm, "Customer")}
    assert all(i["CustomerRef"]["value"] in customers for i in api.sim.records(api.realm, "Invoice"))


def test_case_insensitive_keywords_and_order_by_forms(api: ApiClient) -> None:
    a = api.rows("select * from cUstomer where metadata.CREATETIME > '2000-01-01T00:00:00Z' "
                 "orderby MetaData.CreateTime desc maxresults 7")
    b = api.rows("SELECT * FROM Customer WHERE MetaData.CreateTime > '2000-01-01T00:00:00-08:00' "
                 "ORDER BY Metadata.CreateTime DESC STARTPOSITION 1 MAXRESULTS 7")
    assert [r["Id"] for r in a] == [r["Id"] for r in b]
    times = [r["MetaData"]["CreateTime"] for r in a]
    assert times == sorted(times, reverse=True)


def test_comparison_operators_and_in(api: ApiClient, sim: Simulator) -> None:
    allc = sim.records(api.realm, "Customer", include_inactive=False)
    pivot = sorted(allc, key=lambda c: c["MetaData"]["LastUpdatedTime"])[len(allc) // 2]
    ts = pivot["MetaData"]["LastUpdatedTime"]
    counts = {}
    for op in ("=", "<", ">", "<=", ">="):
        resp = api.query(f"SELECT COUNT(*) FROM Customer WHERE MetaData.LastUpdatedTime {op} '{ts}'")
        counts[op] = resp.get_json()["QueryResponse"]["totalCount"]
    assert counts["<"] + counts["="] == counts["<="]
    assert counts[">"] + counts["="] == counts[">="]
    assert counts["<"] + counts[">="] == len(allc)
    rows = api.rows(f"select * from Customer where Id in ('{allc[0]['Id']}', '{allc[1]['Id']}') and Active = true")
    assert {r["Id"] for r in rows} == {allc[0]["Id"], allc[1]["Id"]}
    assert api.rows(f"select * from Customer where Id = '{allc[2]['Id']}'")[0]["Id"] == allc[2]["Id"]


def test_utc_and_offset_timestamps_are_equivalent(api: ApiClient) -> None:
    a = api.query("select count(*) from Invoice where MetaData.CreateTime >= '2024-01-01T08:00:00Z'").get_json()
    b = api.query("select count(*) from Invoice where MetaData.CreateTime >= '2024-01-01T00:00:00-08:00'").get_json()
    assert a["QueryResponse"]["totalCount"] == b["QueryResponse"]["totalCount"]


def test_active_default_and_filters(api: ApiClient, sim: Simulator) -> None:
    everything = sim.records(api.realm, "Customer")
    active = [c for c in everything if c["Active"]]
    inactive = [c for c in everything if not c["Active"]]
    assert inactive, "generator should make some inactive customers"
    count = lambda q: api.query(q).get_json()["QueryResponse"]["totalCount"]
    assert count("select count(*) from Customer") == len(active)
    assert count("select count(*) from Customer where Active = false") == len(inactive)
    assert count("select count(*) from Customer where Active in (true, false)") == len(everything)
    ids = [r["Id"] for r in api.rows("select * from Customer maxresults 1000")]
    assert set(ids) == {c["Id"] for c in active}


def test_count_only_total(api: ApiClient) -> None:
    body = api.query("SELECT COUNT(*) FROM Invoice").get_json()
    assert body["QueryResponse"] == {"totalCount": 120}


def test_default_and_capped_max_results() -> None:
    sim = Simulator(companies=1, customers=10, invoices=1300, tie_size=0, rate_limits_enabled=False)
    api = ApiClient(sim)
    assert len(api.rows("select * from Invoice", "Invoice")) == 100
    assert len(api.rows("select * from Invoice maxresults 5000", "Invoice")) == 1000


def test_exactly_1000_records_and_empty_last_page() -> None:
    sim = Simulator(companies=1, customers=5, invoices=1000, tie_size=0, rate_limits_enabled=False)
    api = ApiClient(sim)
    page1 = api.query("select * from Invoice orderby MetaData.CreateTime startposition 1 maxresults 1000").get_json()
    assert page1["QueryResponse"]["maxResults"] == 1000
    page2 = api.query("select * from Invoice orderby MetaData.CreateTime startposition 1001 maxresults 1000")
    assert page2.status_code == 200
    assert page2.get_json()["QueryResponse"] == {}
    assert set(page2.get_json()) == {"QueryResponse", "time"}


def test_ties_broken_by_id_across_pages() -> None:
    sim = Simulator(companies=1, customers=10, invoices=1300, giant_tie=True, rate_limits_enabled=False)
    api = ApiClient(sim)
    invs = sim.records(api.realm, "Invoice")
    shared = max({i["MetaData"]["CreateTime"] for i in invs},
                 key=lambda t: sum(1 for i in invs if i["MetaData"]["CreateTime"] == t))
    tied = sorted(int(i["Id"]) for i in invs if i["MetaData"]["CreateTime"] == shared)
    assert len(tied) >= 1100
    for direction in ("ASC", "DESC"):
        got: list[int] = []
        start = 1
        while True:
            rows = api.rows(f"select * from Invoice where MetaData.CreateTime = '{shared}' "
                            f"orderby MetaData.CreateTime {direction} startposition {start} maxresults 1000",
                            "Invoice")
            got += [int(r["Id"]) for r in rows]
            if len(rows) < 1000:
                break
            start += 1000
        assert got == tied  # Id ascending within the tie, in both directions
    # Paging the whole table with small pages yields each record exactly once.
    ids: list[str] = []
    for start in range(1, 1400, 97):
        ids += [r["Id"] for r in api.rows(f"select * from Invoice orderby MetaData.CreateTime desc "
                                          f"startposition {start} maxresults 97", "Invoice")]
    assert len(ids) == len(set(ids)) == 1300


def test_desc_order_uses_id_tiebreak_in_generic_path(api: ApiClient) -> None:
    rows = api.rows("select * from Invoice orderby TotalAmt desc maxresults 1000", "Invoice")
    keys = [(-r["TotalAmt"], int(r["Id"])) for r in rows]
    assert keys == sorted(keys)


def test_post_query_with_application_text(api: ApiClient) -> None:
    resp = api.http.post(f"/v3/company/{api.realm}/query", data="select count(*) from Customer",
                         headers={**api.headers(), "Content-Type": "application/text"})
    assert resp.status_code == 200 and "totalCount" in resp.get_json()["QueryResponse"]


@pytest.mark.parametrize("statement,code", [
    ("select * form Customer", "4000"),
    ("select * from Customer where", "4000"),
    ("select * from Customer where Id = '1' or Id = '2'", "4000"),
    ("select * from Customer where MetaData.CreateTime > 'not-a-date'", "4000"),
    ("selec * from Customer", "4000"),
    ("select * from Customer maxresults abc", "4000"),
    ("", "4000"),
    ("select * from Customer where Foo = '1'", "4001"),
    ("select * from Customer where Id > '5'", "4001"),
    ("select * from Invoice where Active = true", "4001"),
    ("select * from Customer orderby Nope", "4001"),
])
def test_bad_queries_return_intuit_faults(api: ApiClient, statement: str, code: str) -> None:
    resp = api.query(statement)
    assert resp.status_code == 400
    err = resp.get_json()["Fault"]["Error"][0]
    assert err["code"] == code and resp.get_json()["Fault"]["type"] == "ValidationFault"
    assert ("QueryParserError" if code == "4000" else "QueryValidationError") in err["Detail"]


def test_escaped_apostrophe_and_like(api: ApiClient, sim: Simulator) -> None:
    c = sim.create_customer(api.realm, DisplayName="Zoë O'Brien", GivenName="Zoë", FamilyName="O'Brien")
    rows = api.rows("select * from Customer where DisplayName = 'zoë o\\'brien'")
    assert [r["Id"] for r in rows] == [c["Id"]]
    assert c["Id"] in [r["Id"] for r in api.rows("select * from Customer where DisplayName like 'Zoë O%'")]


def test_parser_unit() -> None:
    q = parse("SELECT * FROM Customer WHERE Id IN ('1','2') AND Active = false ORDER BY Id DESC "
              "STARTPOSITION 11 MAXRESULTS 10")
    assert q.entity == "Customer" and q.start == 11 and q.max_results == 10 and q.order == [("Id", True)]
    assert q.where[0].value == ["1", "2"] and q.where[1].value is False
    with pytest.raises(QueryError):
        parse("select * from Customer where Id = ")
