"""The benchmarks' accounting of a request log, on a log the simulator really recorded.

The breadth benchmark splits a backfill's requests into data pages, COUNT(*) calls,
parity batches and the rest; the idle benchmark splits an idle company's into CDC calls,
daily reference-list reads, parity items and throttled attempts. Both read the log's
``detail`` (what each request asked), so these drive the simulator over HTTP the way the
service does (statements POSTed, a batch of counts, a CDC call) and check the split.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sandbox import Simulator

from benchmarks.breadth_bench import data_pages, request_breakdown, timeline
from benchmarks.idle_bench import classify
from conftest import ApiClient


def _post_query(api: ApiClient, statement: str, status: int = 200) -> None:
    resp = api.http.post(f"/v3/company/{api.realm}/query", data=statement,
                         headers={**api.headers(), "Content-Type": "application/text"})
    assert resp.status_code == status, resp.get_data(as_text=True)


def _batch_counts(api: ApiClient, entities: list[str]) -> None:
    items = [{"bId": e, "Query": f"SELECT COUNT(*) FROM {e}"} for e in entities]
    resp = api.http.post(f"/v3/company/{api.realm}/batch", json={"BatchItemRequest": items}, headers=api.headers())
    assert resp.status_code == 200, resp.get_data(as_text=True)


def _cdc(api: ApiClient, sim: Simulator, entities: str) -> None:
    since = datetime.fromtimestamp(sim.now() - 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    resp = api.http.get(f"/v3/company/{api.realm}/cdc", query_string={"entities": entities, "changedSince": since},
                        headers=api.headers())
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_a_backfill_log_splits_into_pages_counts_and_parity() -> None:
    sim = Simulator(companies=1, customers=5, invoices=5, breadth=2, seed=8, rate_limits_enabled=False)
    api = ApiClient(sim)
    sim.reset_stats()
    _post_query(api, "SELECT COUNT(*) FROM Invoice")
    _post_query(api, "SELECT * FROM Invoice ORDERBY MetaData.CreateTime STARTPOSITION 1 MAXRESULTS 1000")
    _post_query(api, "select count(*) from JournalEntry")
    _post_query(api, "SELECT * FROM JournalEntry STARTPOSITION 1 MAXRESULTS 1000")
    _batch_counts(api, ["Invoice", "JournalEntry", "Bill"])
    log = sim.request_log(api.realm)

    split = request_breakdown(log)
    assert (split["data_pages"], split["count_calls"], split["parity_batches"], split["parity_items"]) == (2, 2, 1, 3)
    assert split["metered"] == 7 and split["throttled"] == 0 and split["other"] == 0
    assert split["data_pages_per_entity"] == {"Invoice": 1, "JournalEntry": 1}
    spent = timeline(log)
    assert list(spent["per_entity"]) == ["Invoice", "JournalEntry", "batch"]
    assert 0 <= spent["in_flight_seconds"] <= spent["span_seconds"]
    assert data_pages({"Invoice": 2500, "Term": 0, "Bill": 1000}) == 3 + 1 + 1


def test_an_idle_log_splits_into_cdc_daily_reads_parity_and_throttles() -> None:
    # Three requests per "second" of an hour: the fourth is throttled however slow this machine is.
    sim = Simulator(companies=1, customers=5, invoices=5, breadth=2, seed=9, per_second=3, second_window=3600)
    api = ApiClient(sim)
    sim.reset_stats()
    _cdc(api, sim, "Customer,Invoice,Bill")
    _post_query(api, "SELECT * FROM TaxCode STARTPOSITION 1 MAXRESULTS 1000")
    _post_query(api, "SELECT * FROM TimeActivity WHERE MetaData.LastUpdatedTime >= '2026-11-01T00:00:00Z'")
    _post_query(api, "SELECT * FROM TaxRate STARTPOSITION 1 MAXRESULTS 1000", status=429)
    calls = classify(sim.request_log(api.realm))
    assert calls["cdc"] == 1 and calls["daily_reference_reads"] == 1 and calls["time_activity_queries"] == 1
    assert calls["throttled"] == 1 and calls["throttled:per_second (query)"] == 1
    assert calls["metered"] == 3 and "other" not in calls
