"""The pure sync core, driven with plain values: no database, no network, no queue."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from dashboard.qbo.faults import classify, fault_message, retry_after_seconds
from dashboard.sync import policy
from dashboard.sync.cdc import parse_cdc
from dashboard.sync.cursor import ScanCursor, advance, check_page
from dashboard.sync.errors import (
    BadData, IntuitServerError, ReconnectRequired, RequestRejected, Throttled, TokenRejected,
)
from dashboard.sync.queries import count_query, page_start, scan_query
from dashboard.sync.specs import (
    BY_ENTITY, CDC, SPECS, EntitySpec, SpecError, dependents, depends_on, ordered, register, registered, sync_order,
    unregister,
)
from dashboard.sync.timestamps import format_qbo_time, parse_qbo_time

UTC = timezone.utc
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


CUSTOMER, INVOICE = SPECS["customer"], SPECS["invoice"]
customer_row, invoice_row = CUSTOMER.to_row, INVOICE.to_row


def t(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_timestamps_keep_their_offsets():
    assert parse_qbo_time("2026-01-01T16:00:00-08:00") == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    assert parse_qbo_time("2026-01-02T00:00:00.250Z") == datetime(2026, 1, 2, 0, 0, 0, 250000, tzinfo=UTC)
    with pytest.raises(BadData, match="without a UTC offset"):
        parse_qbo_time("2026-01-02T00:00:00")
    with pytest.raises(BadData):
        parse_qbo_time(None)
    assert format_qbo_time(datetime(2026, 1, 2, 1, 0, tzinfo=timezone(timedelta(hours=1)))) == "2026-01-02T00:00:00+00:00"


def test_queries():
    assert scan_query(CUSTOMER, "MetaData.CreateTime", T0, 1) == (
        "SELECT * FROM Customer WHERE Active IN (true, false) AND MetaData.CreateTime >= "
        "'2026-01-02T03:04:05+00:00' ORDERBY MetaData.CreateTime STARTPOSITION 1 MAXRESULTS 1000")
    assert scan_query(INVOICE, "MetaData.LastUpdatedTime", None, 999, 1000) == (
        "SELECT * FROM Invoice ORDERBY MetaData.LastUpdatedTime STARTPOSITION 999 MAXRESULTS 1000")
    assert count_query(CUSTOMER) == "SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)"
    # Pages overlap by one record; an anchored cursor re-reads its last record first.
    assert [page_start(0, False, k) for k in range(3)] == [1, 1000, 1999]
    assert [page_start(5, True, k) for k in range(2)] == [5, 1004]
    assert [page_start(5, False, k) for k in range(2)] == [6, 1005]


ISSUE_TYPES = """account bill bill_payment budget class credit_memo customer department deposit employee estimate
    invoice item journal_entry payment payment_method purchase purchase_order refund_receipt sales_receipt
    tax_agency tax_code tax_rate term time_activity transfer vendor vendor_credit""".split()


def test_every_quickbooks_type_is_registered_after_what_it_references():
    assert sorted(SPECS) == ISSUE_TYPES and [s.name for s in ordered()] == list(SPECS)
    position = {name: i for i, name in enumerate(SPECS)}
    for spec in SPECS.values():
        assert spec.table == spec.name
        for target in [t for _, _, t in spec.links if t != spec.name] + list(spec.after):
            assert position[target] < position[spec.name], (spec.name, target)
    for later, earlier in [("invoice", "customer"), ("invoice", "item"), ("payment", "invoice"),
                           ("bill", "vendor"), ("bill", "account"), ("bill_payment", "bill"), ("deposit", "payment")]:
        assert position[earlier] < position[later]
    assert SPECS["journal_entry"].label == "Journal entries" and SPECS["class"].label == "Classes"


def test_the_readmes_table_names_every_type_with_its_freshness_and_dependencies():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \| (\w+) \|.*$", readme, re.M)}
    assert sorted(rows) == sorted(SPECS)
    for spec in SPECS.values():
        row = rows[spec.name]
        assert f"| {spec.entity} |" in row
        assert ("every cycle (CDC)" in row) == (spec.refresh == CDC), spec.name
        assert row.rstrip(" |").endswith(", ".join(depends_on(spec)) or "—"), spec.name


def test_once_a_day_types_are_due_a_day_after_their_last_read():
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert policy.refresh_due(None, now)
    assert not policy.refresh_due(now - timedelta(hours=23, minutes=59), now)
    assert policy.refresh_due(now - timedelta(days=1), now)
    assert {s.name for s in SPECS.values() if s.refresh != CDC} == {"tax_agency", "tax_code", "tax_rate",
                                                                    "time_activity"}


def test_specs_order_and_mapping():
    meta = {"CreateTime": "2026-01-01T10:00:00-08:00", "LastUpdatedTime": "2026-01-02T10:00:00-08:00"}
    row = customer_row({"Id": "7", "SyncToken": "3", "Active": False, "DisplayName": "Zoë", "MetaData": meta})
    assert row["source_id"] == "7" and row["sync_token"] == 3 and row["active"] is False
    assert row["source_created_at"] == datetime(2026, 1, 1, 18, tzinfo=UTC)
    assert row["raw_data"]["DisplayName"] == "Zoë"
    inv = invoice_row({"Id": "9", "SyncToken": "0", "TotalAmt": 12.5, "CustomerRef": {"value": "7"},
                       "CurrencyRef": {"value": "USD"}, "MetaData": meta})
    assert inv["customer_source_id"] == "7" and str(inv["total_amt"]) == "12.50" and inv["currency"] == "USD"
    inv = invoice_row({"Id": "9", "TxnDate": "2026-01-05", "DueDate": "", "Balance": "3", "MetaData": meta})
    assert inv["txn_date"] == date(2026, 1, 5) and inv["due_date"] is None and str(inv["balance"]) == "3.00"
    with pytest.raises(BadData, match="Invoice 9 with TxnDate '2026-02-30'"):
        invoice_row({"Id": "9", "TxnDate": "2026-02-30", "MetaData": meta})
    with pytest.raises(BadData, match="Invoice 9 with TotalAmt"):
        invoice_row({"Id": "9", "TotalAmt": "lots", "MetaData": meta})
    with pytest.raises(BadData, match="without an Id"):
        customer_row({"MetaData": meta})


def _spec(name: str, *targets: str) -> EntitySpec:
    return EntitySpec(name=name, entity=name.title(), table=name, to_row=customer_row,
                      links=tuple((f"{t}_source_id", f"{t}_id", t) for t in targets))


def test_sync_order_follows_links_then_names():
    specs = {s.name: s for s in (_spec("payment", "invoice", "customer"), _spec("invoice", "customer", "item"),
                                 _spec("item"), _spec("customer", "customer"), _spec("account"))}
    # A type after every type it links to; independent types by name; a self-link (a parent
    # customer) does not hold its own type back.
    assert [s.name for s in sync_order(specs)] == ["account", "customer", "item", "invoice", "payment"]
    with pytest.raises(SpecError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        sync_order({"a": _spec("a", "b"), "b": _spec("b", "a"), "c": _spec("c")})
    with pytest.raises(SpecError, match="unknown type"):
        sync_order({"a": _spec("a", "nowhere")})


def test_registering_a_spec_reorders_and_checks_the_registry():
    before = list(SPECS)
    with registered(_spec("widget", "invoice"), _spec("gadget", "customer")):
        names = list(SPECS)
        assert names.index("customer") < names.index("gadget") and names.index("invoice") < names.index("widget")
        assert [s.name for s in ordered(["widget", "customer"])] == ["customer", "widget"]
        assert BY_ENTITY["Widget"].name == "widget"
        # Transitive: a Retry of customers re-runs invoices and what links to invoices.
        assert {"gadget", "invoice", "widget"} <= {s.name for s in dependents("customer")}
        assert dependents("widget") == []
        with pytest.raises(SpecError, match="still|unknown type"):
            unregister("invoice")  # widgets still link to invoices
        with pytest.raises(SpecError, match="already registered"):
            register(_spec("widget"))
    assert list(SPECS) == before and "Widget" not in BY_ENTITY
    # A cycle is refused and leaves the registry as it was.
    with pytest.raises(SpecError, match="cycle"):
        register(_spec("x", "y"), _spec("y", "x"))
    with pytest.raises(SpecError, match="share the table customer"):
        register(EntitySpec(name="client", entity="Client", table="customer", to_row=customer_row))
    assert list(SPECS) == before


def test_cursor_advance_with_ties():
    start = ScanCursor()
    # A page ending in three records sharing a time: the tie offset counts them.
    c1 = advance(start, [(t(0), "1"), (t(1), "2"), (t(1), "3"), (t(1), "4")])
    assert c1 == ScanCursor(t(1), 3, "4")
    # A whole page inside the same tie accumulates.
    c2 = advance(c1, [(t(1), str(i)) for i in range(5, 10)])
    assert c2 == ScanCursor(t(1), 8, "9")
    # Leaving the tie resets the offset.
    assert advance(c2, [(t(1), "10"), (t(2), "11")]) == ScanCursor(t(2), 1, "11")
    assert advance(c2, []) == c2
    assert c2.start(0, 1000) == 8 and c2.start(1, 1000) == 1007
    assert c2.without_anchor() == ScanCursor(t(1), 0, None)


def test_page_joins():
    assert check_page(["1", "2"], None, 2) == check_page(["1", "2"], None, 2)
    full = check_page([str(i) for i in range(1000)], "0", 1000)
    assert full.joined and full.fresh == 1 and not full.last
    assert not check_page(["5", "6"], "4", 1000).joined          # a record before vanished
    assert not check_page([], "4", 1000).joined                  # the anchor itself vanished
    assert check_page(["4"], "4", 1000).last                     # only the overlap: the end


def test_path_choice():
    now = t(0)
    assert policy.incremental_path(None, now) == policy.INITIAL
    assert policy.incremental_path(now - timedelta(minutes=5), now) == policy.CDC
    assert policy.incremental_path(now - timedelta(days=29), now) == policy.CDC
    assert policy.incremental_path(now - timedelta(days=29, hours=20), now) == policy.TIMESTAMP
    assert policy.incremental_path(now - timedelta(days=45), now) == policy.TIMESTAMP
    assert policy.long_gap_path(deletable=True) == policy.RECONCILE
    assert policy.long_gap_path(deletable=False) == policy.TIMESTAMP
    assert policy.changed_since(now, timedelta(minutes=5)) == now - timedelta(minutes=5)


def test_due_for_sync_and_spread():
    interval = timedelta(minutes=5)
    firsts = {policy.first_due(T0, interval, f"realm{i}") for i in range(50)}
    assert len(firsts) > 20 and all(T0 <= f < T0 + interval for f in firsts)
    # A company keeps its own cadence, even after missed slots.
    assert policy.next_due(t(0), t(0), interval) == t(300)
    assert policy.next_due(t(0), t(1000), interval) == t(1200)
    assert policy.next_due(t(50), t(0), interval) == t(50)


def test_retry_policy():
    assert policy.RetryPolicy().delays() == [1.0, 2.0, 4.0]
    capped = policy.RetryPolicy(retries=3, delay=1, backoff=2, max_wait=3)
    assert capped.wait(3) == 3 and capped.wait(1, retry_after=2.5) == 2.5 and capped.wait(1, retry_after=99) == 3


def test_error_classification():
    xml = ('<IntuitResponse><Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded'
           '</Message><Detail>Too many requests</Detail></Error></Fault></IntuitResponse>')
    throttled = classify(429, xml, {"Retry-After": "3", "intuit_tid": "tid-1"})
    assert isinstance(throttled, Throttled) and throttled.retryable and throttled.retry_after == 3
    assert "ThrottleExceeded" in throttled.message and throttled.intuit_tid == "tid-1"
    assert isinstance(classify(401, '{"fault":{"error":[{"message":"expired","code":"3200"}]}}'), TokenRejected)
    denied = classify(403, "{}")
    assert isinstance(denied, ReconnectRequired) and not denied.retryable
    assert isinstance(classify(503, "<html>Service Unavailable</html>"), IntuitServerError)
    rejected = classify(400, '{"Fault":{"Error":[{"Message":"bad","Detail":"QueryParserError","code":"4000"}]}}')
    assert isinstance(rejected, RequestRejected) and "QueryParserError (code 4000)" in str(rejected)
    assert classify(200, "{}") is None
    assert not BadData("x").retryable and IntuitServerError("x").retryable
    assert fault_message("<html><body>Gateway   down</body></html>") == "Gateway down"
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT",
                               datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)) == 10
    assert retry_after_seconds("soon") is None


def test_cdc_parsing_and_cap():
    body = {"CDCResponse": [{"QueryResponse": [
        {"Customer": [{"Id": "1"}, {"Id": "2"}]},
        {"Invoice": [{"Id": "5"}, {"domain": "QBO", "status": "Deleted", "Id": "6",
                                   "MetaData": {"LastUpdatedTime": "2026-01-01T00:00:00-08:00"}}]}]}],
        "time": "2026-01-02T00:00:00.000-08:00"}
    result = parse_cdc(body, ["Customer", "Invoice"], cap=1000)
    assert [o["Id"] for o in result.changes["Customer"].live] == ["1", "2"]
    assert result.changes["Invoice"].deleted == [("6", datetime(2026, 1, 1, 8, tzinfo=UTC))]
    assert result.complete == {"Customer", "Invoice"}
    assert result.time == datetime(2026, 1, 2, 8, tzinfo=UTC)
    # At the cap, the last entity present (and any after it) may be cut.
    assert parse_cdc(body, ["Customer", "Invoice"], cap=4).complete == {"Customer"}
    only_customers = {"CDCResponse": [{"QueryResponse": [{"Customer": [{"Id": "1"}, {"Id": "2"}]}]}]}
    assert parse_cdc(only_customers, ["Customer", "Invoice"], cap=2).complete == set()
    empty = {"CDCResponse": [{"QueryResponse": [{}]}], "time": "2026-01-02T00:00:00Z"}
    assert parse_cdc(empty, ["Customer", "Invoice"]).complete == {"Customer", "Invoice"}
    with pytest.raises(BadData):
        parse_cdc({"nope": 1}, ["Customer"])
