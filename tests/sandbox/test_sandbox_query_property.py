"""Property test: indexed query paths agree with a brute-force evaluation."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from sandbox import Simulator
from sandbox.clock import parse_timestamp

from conftest import ApiClient

SIM = Simulator(companies=1, customers=150, invoices=10, tie_size=40, seed=5, rate_limits_enabled=False)
API = ApiClient(SIM)
ALL = SIM.records(API.realm, "Customer")
FIELDS = {"MetaData.CreateTime": "CreateTime", "MetaData.LastUpdatedTime": "LastUpdatedTime"}
STAMPS = sorted({c["MetaData"][f] for c in ALL for f in ("CreateTime", "LastUpdatedTime")})


def _key(c: dict, field: str) -> float:
    return int(c["Id"]) if field == "Id" else parse_timestamp(c["MetaData"][FIELDS[field]], 0)


@settings(max_examples=60, deadline=None)
@given(
    where_field=st.sampled_from(list(FIELDS)),
    op=st.sampled_from(["=", "<", ">", "<=", ">="]),
    stamp=st.sampled_from(STAMPS),
    order_field=st.sampled_from(["Id", *FIELDS]),
    desc=st.booleans(),
    active=st.sampled_from([None, "Active = true", "Active = false", "Active IN (true, false)"]),
    start=st.integers(1, 160),
    size=st.integers(1, 60),
)
def test_query_matches_brute_force(where_field: str, op: str, stamp: str, order_field: str, desc: bool,
                                   active: str | None, start: int, size: int) -> None:
    where = f"{where_field} {op} '{stamp}'" + (f" AND {active}" if active else "")
    stmt = (f"select * from Customer where {where} orderby {order_field} {'desc' if desc else 'asc'} "
            f"startposition {start} maxresults {size}")
    got = [r["Id"] for r in API.rows(stmt)]
    x = parse_timestamp(stamp, 0)
    cmp = {"=": lambda v: v == x, "<": lambda v: v < x, ">": lambda v: v > x,
           "<=": lambda v: v <= x, ">=": lambda v: v >= x}[op]
    want_active = {None: {True}, "Active = true": {True}, "Active = false": {False},
                   "Active IN (true, false)": {True, False}}[active]
    rows = [c for c in ALL if c["Active"] in want_active and cmp(_key(c, where_field))]
    rows.sort(key=lambda c: ((-1 if desc else 1) * _key(c, order_field), int(c["Id"])))
    assert got == [c["Id"] for c in rows][start - 1: start - 1 + size]
    count = API.query(f"select count(*) from Customer where {where}").get_json()["QueryResponse"]["totalCount"]
    assert count == len(rows)
