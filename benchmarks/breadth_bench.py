"""Breadth backfill: every object type of a realm with real-sized, skewed books, under Intuit's limits.

The realm holds all 28 types, about 105,000 records skewed as real books are: most in
invoices and payments, then lines-heavy journal entries (10 lines each), a tail of other
transactions and small reference lists. It is backfilled by the real pipeline (the OAuth
callback queues the run, a real worker executes it against PostgreSQL and Redis) with
300 ms latency, 500 requests/min, 10/s and 10 concurrent, and judged against Intuit's
floor for the data pages alone. Every table is then compared with the simulator, type by
type, and the simulator's request log says what the backfill asked for besides data pages.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from . import connect
from .backfill_bench import INTUIT_CONCURRENT, INTUIT_LATENCY, INTUIT_PER_MINUTE, theoretical_floor
from .baseline import PAGE_SIZE
from .harness import Result, ratio
from .infra import Simulator
from .pipeline import Stack, run_span, start_worker, wait_for_runs

BREADTH = ("breadth_backfill_vs_floor", 1.3, "× Intuit's floor, all 28 types (≥100k records)", True)

# Customers and invoices come from the classic generator; the other 26 entities from ``counts``.
CUSTOMERS, INVOICES = 7_950, 39_900
JOURNAL_LINES = 10
# Counts are not round on purpose: real books rarely hold an exact multiple of the page size
# (a type that does costs one more, empty, page: the end is confirmed by a short page).
MIX: dict[str, int] = {
    # transactions
    "Payment": 24_870, "JournalEntry": 9_930, "Bill": 4_960, "Purchase": 3_940, "BillPayment": 2_950,
    "SalesReceipt": 1_980, "TimeActivity": 1_960, "Estimate": 1_480, "Deposit": 1_450, "CreditMemo": 510,
    "PurchaseOrder": 470, "Transfer": 310, "RefundReceipt": 190, "VendorCredit": 210,
    # reference lists
    "Vendor": 820, "Item": 410, "Account": 120, "Employee": 50, "Class": 20, "Department": 10, "TaxCode": 10,
    "TaxRate": 10, "PaymentMethod": 6, "Term": 5, "Budget": 3, "TaxAgency": 3,
}
_FROM = re.compile(r"\bFROM\s+(\w+)", re.IGNORECASE)


def all_object_types() -> list[str]:
    """Every object type the service knows, in sync order (SYNC_OBJECT_TYPES for the breadth runs)."""
    from dashboard.sync.specs import SPECS

    return list(SPECS)


def data_pages(counts: dict[str, int], page_size: int = PAGE_SIZE) -> int:
    """The fewest pages any client needs: ceil(records / 1,000) per entity (an empty one still costs one)."""
    return sum(max(1, math.ceil(n / page_size)) for n in counts.values())


def request_breakdown(log: list[dict[str, Any]]) -> dict[str, Any]:
    """Split a request log into data pages, COUNT(*) calls, parity batches, CDC, other and throttled.

    Metered calls are the admitted ones, a batch counting once per item (as Intuit meters it).
    """
    admitted = [e for e in log if not str(e.get("outcome", "")).startswith("throttled")]
    throttled = Counter(f"{e['outcome']} ({e['kind']})" for e in log
                        if str(e.get("outcome", "")).startswith("throttled"))
    kinds: Counter = Counter()
    pages_per_entity: Counter = Counter()
    for e in admitted:
        detail = str(e.get("detail") or "")
        if e["kind"] == "query" and "COUNT(*)" in detail.upper():
            kinds["count"] += 1
        elif e["kind"] == "query":
            kinds["data_pages"] += 1
            found = _FROM.search(detail)
            pages_per_entity[found.group(1) if found else "?"] += 1
        elif e["kind"] == "batch":
            kinds["parity_batches"] += 1
            kinds["parity_items"] += int(e.get("weight") or 1)
        elif e["kind"] == "cdc":
            kinds["cdc"] += 1
        else:
            kinds["other"] += 1
    metered = sum(int(e.get("weight") or 1) for e in admitted)
    return {"metered": metered, "requests": len(log), "throttled": len(log) - len(admitted),
            "data_pages": kinds["data_pages"], "count_calls": kinds["count"],
            "parity_batches": kinds["parity_batches"], "parity_items": kinds["parity_items"], "cdc": kinds["cdc"],
            "other": kinds["other"], "throttled_by_limit": dict(throttled),
            "other_requests": [f"{e['kind']} {e['path']}" for e in admitted
                               if e["kind"] not in ("query", "batch", "cdc")],
            "data_pages_per_entity": dict(sorted(pages_per_entity.items()))}


def timeline(log: list[dict[str, Any]]) -> dict[str, Any]:
    """Say where a backfill's wall time went, from the request log's times (seconds from the first request).

    ``in_flight_seconds`` is the union of the requests' intervals; the rest of the span no
    request was waiting on Intuit (our parsing, database writes, bookkeeping between types).
    ``per_entity`` gives each entity's first start, last end and its calls, in order.
    """
    timed = sorted((e["t"], e["t"] + (e.get("duration") or 0.0), e) for e in log)
    if not timed:
        return {}
    busy, cover_start, cover_end = 0.0, timed[0][0], timed[0][1]
    for start, end, _e in timed[1:]:
        if start > cover_end:
            busy += cover_end - cover_start
            cover_start, cover_end = start, end
        else:
            cover_end = max(cover_end, end)
    busy += cover_end - cover_start
    span = max(end for _s, end, _e in timed) - timed[0][0]
    per_entity: dict[str, dict[str, float]] = {}
    for start, end, e in timed:
        found = _FROM.search(str(e.get("detail") or ""))
        name = found.group(1) if found else e["kind"]
        slot = per_entity.setdefault(name, {"start": round(start, 3), "end": 0.0, "calls": 0})
        slot["end"] = round(max(slot["end"], end), 3)
        slot["calls"] += 1
    return {"span_seconds": span, "in_flight_seconds": busy, "no_request_in_flight_seconds": span - busy,
            "per_entity": per_entity}


def verify_tables(stack: Stack, realm: str, source: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Compare each type's live rows with the simulator's count; raise if any differs."""
    from dashboard.sync.specs import SPECS

    found: dict[str, tuple[int, int]] = {}
    for spec in SPECS.values():
        ours = int(stack.query(f'SELECT count(*) FROM "{spec.table}" WHERE company_source_id = %s '
                               "AND NOT is_deleted", (realm,))[0][0])
        found[spec.name] = (ours, int(source.get(spec.entity, 0)))
    wrong = {name: pair for name, pair in found.items() if pair[0] != pair[1]}
    if wrong:
        raise RuntimeError(f"tables differ from the simulator (ours, source): {wrong}")
    return found


def breadth_backfill(sim: Simulator, mix: dict[str, int] | None = None, customers: int = CUSTOMERS,
                     invoices: int = INVOICES, timeout: float = 900) -> Result:
    """Generate the skewed realm, backfill all 28 types under Intuit's conditions, check and report."""
    realm = sim.generate(companies=1, customers=customers, invoices=invoices, counts=dict(mix or MIX),
                         journal_lines=JOURNAL_LINES)[0]
    source = sim.entity_counts(realm)
    records = sum(source.values())
    pages = data_pages(source)
    floor = theoretical_floor(pages)
    sim.configure(latency=INTUIT_LATENCY, per_minute=INTUIT_PER_MINUTE, max_concurrent=INTUIT_CONCURRENT,
                  rate_limits_enabled=True)
    try:
        with Stack(sim, "breadth", extra_env={"SYNC_OBJECT_TYPES": ",".join(all_object_types())}) as stack:
            sim.reset_stats(realm)
            connect.run(stack.env, sim.url, [realm])
            worker = start_worker(stack, threads=4)
            started = worker.ready_at
            try:
                finished = wait_for_runs(stack, [realm], timeout)
            finally:
                worker.stop()
            tables = verify_tables(stack, realm, source)
            span = run_span(stack, [realm])
    finally:
        sim.configure(latency=0.0)
    seconds = finished - started
    log = sim.request_log(realm)
    breakdown = request_breakdown(log)
    types = len(tables)
    beyond_pages = breakdown["metered"] - pages
    detail = {"records": records, "object_types": types, "records_per_type": source, "data_pages_floor": pages,
              "floor_seconds": floor, "seconds": seconds, "run_span_seconds": span,
              "records_per_second": records / seconds if seconds else None,
              "requests": breakdown, "timeline": timeline(log), "metered_beyond_data_pages": beyond_pages,
              "metered_beyond_data_pages_per_type": beyond_pages / types if types else None,
              "peak_worker_rss_mb": worker.peak_rss_mb, "journal_lines": JOURNAL_LINES}
    return Result(BREADTH[0], ratio(seconds, floor), BREADTH[1], BREADTH[2], BREADTH[3], detail)
