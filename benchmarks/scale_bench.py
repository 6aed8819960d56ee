"""Scale benchmarks: one scheduled cycle over thousands of idle companies, metered calls per month."""
from __future__ import annotations

import time
from typing import Any

from . import connect, cycle
from .harness import Result, ratio
from .infra import Simulator
from .peer import metered_calls
from .pipeline import Stack, start_worker, wait_for_runs

PER_COMPANY = ("scheduler_requests_per_company", 1.1, "requests per idle company per cycle", True)
CYCLE_SHARE = ("scheduler_cycle_vs_interval", 0.5, "× sync interval (wall time of one cycle)", True)
METERED = ("metered_calls_per_idle_company_30d", 9000, "requests per company per 30 days", True)
INTERVAL_SECONDS = 5 * 60
CYCLES_PER_30_DAYS = 30 * 24 * 60 // 5  # 8,640


def _max_run_id(stack: Stack) -> int:
    return int(stack.query("SELECT coalesce(max(id), 0) FROM sync_run")[0][0])


def _api_requests(sim: Simulator, realms: list[str]) -> tuple[int, int]:
    """Return (metered calls, throttled answers) summed over the realms."""
    total = throttled = 0
    for realm in realms:
        stats = sim.stats(realm)
        total += metered_calls(stats)
        throttled += int(stats.get("throttled", 0))
    return total, throttled


def scheduler(sim: Simulator, companies: int, consumers: int = 2, threads: int = 4) -> list[Result]:
    """Backfill N tiny companies, then time one incremental cycle with `consumers` processes."""
    realms = sim.generate(companies=companies, customers=1, invoices=1, tie_size=1)
    detail: dict[str, Any] = {"companies": companies, "consumers": consumers, "threads_per_consumer": threads}
    with Stack(sim, "scheduler") as stack:
        detail["connect_seconds"] = connect.run(stack.env, sim.url, realms)["seconds"]
        workers = [start_worker(stack, threads=threads) for _ in range(consumers)]
        try:
            t0 = time.perf_counter()
            wait_for_runs(stack, realms, timeout=1200)
            detail["initial_backfill_seconds"] = time.perf_counter() - t0
            sim.reset_stats()
            after = _max_run_id(stack)
            started = time.perf_counter()
            queued = cycle.run(stack.env)
            finished = wait_for_runs(stack, realms, timeout=1200, after_id=after)
        finally:
            for w in workers:
                w.stop()
        wall = finished - started
        requests, throttled = _api_requests(sim, realms)
        runs = int(stack.query("SELECT count(*) FROM sync_run WHERE id > %s", (after,))[0][0])
    detail.update({"cycle_seconds": wall, "queue_seconds": queued["seconds"], "runs": runs,
                   "jobs_per_second": runs / wall if wall else None, "api_requests": requests,
                   "throttled": throttled, "interval_seconds": INTERVAL_SECONDS,
                   "peak_worker_rss_mb": max(w.peak_rss_mb for w in workers)})
    return [Result(PER_COMPANY[0], ratio(requests, companies), PER_COMPANY[1], PER_COMPANY[2], True, detail),
            Result(CYCLE_SHARE[0], ratio(wall, INTERVAL_SECONDS), CYCLE_SHARE[1], CYCLE_SHARE[2], True, detail)]


def metered(sim: Simulator, cycles: int = 4) -> Result:
    """Count requests over a few idle cycles of one company and extrapolate to 8,640 cycles."""
    realm = sim.generate(companies=1, customers=30, invoices=60)[0]
    with Stack(sim, "metered") as stack:
        connect.run(stack.env, sim.url, [realm])
        worker = start_worker(stack, threads=2)
        try:
            wait_for_runs(stack, [realm], timeout=300)
            sim.reset_stats()
            per_cycle = []
            for _ in range(cycles):
                before, _ = _api_requests(sim, [realm])
                after = _max_run_id(stack)
                cycle.run(stack.env)
                wait_for_runs(stack, [realm], timeout=300, after_id=after)
                now, _ = _api_requests(sim, [realm])
                per_cycle.append(now - before)
        finally:
            worker.stop()
    tokens = sim.oauth_stats(realm)
    average = sum(per_cycle) / len(per_cycle)
    detail = {"requests_per_cycle": per_cycle, "cycles_per_30_days": CYCLES_PER_30_DAYS,
              "token_endpoint_requests_during_cycles": tokens.get("requests"),
              "note": "token refreshes (one per hour of access-token life) hit the OAuth endpoint, "
                      "which Intuit does not meter as an API call"}
    return Result(METERED[0], average * CYCLES_PER_30_DAYS, METERED[1], METERED[2], True, detail)
