"""Backfill benchmarks: throughput against the raw baseline, Intuit's conditions, memory."""
from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from .baseline import PAGE_SIZE, run_baseline
from .harness import Result, ratio
from .infra import Simulator
from .pipeline import BackfillRun, Stack, backfill

THROUGHPUT = ("backfill_throughput_vs_baseline", 0.7, "× baseline records/s", False)
LATENCY = ("backfill_latency_vs_floor", 1.2, "× theoretical minimum wall time", True)
MEMORY = ("backfill_memory_10x_vs_1x", 1.25, "× peak worker RSS at base size", True)
INTUIT_LATENCY, INTUIT_PER_MINUTE, INTUIT_CONCURRENT = 0.3, 500, 10


def data_pages(customers: int, invoices: int) -> int:
    """Return the fewest 1,000-record pages any client needs for this data set."""
    return math.ceil(customers / PAGE_SIZE) + math.ceil(invoices / PAGE_SIZE)


def theoretical_floor(pages: int) -> float:
    """Return max(pages / (500 / 60 s), pages × 0.3 s / 10): Intuit's limits make nothing faster."""
    return max(pages / (INTUIT_PER_MINUTE / 60), pages * INTUIT_LATENCY / INTUIT_CONCURRENT)


def _run_summary(run: BackfillRun) -> dict[str, Any]:
    out = asdict(run)
    out["records_per_second"] = run.records_per_second
    out["sim_stats"] = next(iter(run.sim_stats.values()), {})
    return out


def throughput(sim: Simulator, realm: str, records: int) -> tuple[Result, BackfillRun]:
    """Time the raw baseline and the pipeline on the same realm, in this order, in one run."""
    per_second = int(sim.configure()["per_second"])
    with Stack(sim, "throughput") as stack:
        base = run_baseline(sim.url, realm, sim.tokens(realm)["access_token"], stack.db.url, per_second=per_second)
        if base.records != records:
            raise RuntimeError(f"baseline fetched {base.records} records, the simulator holds {records}")
        run = backfill(stack, sim, [realm], records)
    detail = {"baseline": asdict(base) | {"records_per_second": base.records_per_second},
              "pipeline": _run_summary(run)}
    measured = ratio(run.records_per_second, base.records_per_second)
    return Result(THROUGHPUT[0], measured, THROUGHPUT[1], THROUGHPUT[2], THROUGHPUT[3], detail), run


def under_intuit_conditions(sim: Simulator, realm: str, customers: int, invoices: int) -> tuple[Result, BackfillRun]:
    """Backfill with 300 ms latency, 500/min, 10/s and 10 concurrent; compare with the floor."""
    sim.configure(latency=INTUIT_LATENCY, per_minute=INTUIT_PER_MINUTE, max_concurrent=INTUIT_CONCURRENT,
                  rate_limits_enabled=True)
    try:
        with Stack(sim, "latency") as stack:
            run = backfill(stack, sim, [realm], customers + invoices)
    finally:
        sim.configure(latency=0.0)
    pages = data_pages(customers, invoices)
    floor = theoretical_floor(pages)
    stats = next(iter(run.sim_stats.values()), {})
    detail = {"pipeline": _run_summary(run), "data_pages": pages, "floor_seconds": floor,
              "requests_made": stats.get("requests"), "throttled": stats.get("throttled"),
              "peak_concurrency": stats.get("peak_admitted_concurrency")}
    return Result(LATENCY[0], ratio(run.seconds, floor), LATENCY[1], LATENCY[2], LATENCY[3], detail), run


def memory(sim: Simulator, base_customers: int, base_invoices: int, factor: int = 10) -> Result:
    """Compare the worker's peak RSS for a backfill `factor`× the base size with the base size."""
    peaks: dict[str, Any] = {}
    for label, scale in (("base", 1), ("scaled", factor)):
        realm = sim.generate(companies=1, customers=base_customers * scale, invoices=base_invoices * scale)[0]
        with Stack(sim, f"memory{scale}") as stack:
            run = backfill(stack, sim, [realm], (base_customers + base_invoices) * scale)
        peaks[label] = {"records": run.records, "peak_rss_mb": run.peak_rss_mb, "seconds": run.seconds}
    measured = ratio(peaks["scaled"]["peak_rss_mb"], peaks["base"]["peak_rss_mb"])
    return Result(MEMORY[0], measured, MEMORY[1], MEMORY[2], MEMORY[3], peaks)
