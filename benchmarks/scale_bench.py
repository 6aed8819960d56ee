"""Scale benchmarks: one scheduled cycle over thousands of idle companies, metered calls per month."""
from __future__ import annotations

import os
import time
from typing import Any

import requests

from . import connect, cycle, run_cost, seed
from .breadth_bench import all_object_types
from .harness import Result, ratio
from .infra import Simulator
from .peer import metered_calls
from .pipeline import Stack, start_worker, wait_for_runs

PER_COMPANY = ("scheduler_requests_per_company", 1.0, "requests per idle company per cycle", True)
CYCLE_SHARE = ("scheduler_cycle_vs_interval", 0.25, "× sync interval (wall time of one cycle)", True)
METERED = ("metered_calls_per_idle_company_30d", 9000, "requests per company per 30 days", True)
INTERVAL_SECONDS = 5 * 60
CYCLES_PER_30_DAYS = 30 * 24 * 60 // 5  # 8,640


def _api_requests(sim: Simulator, realms: list[str]) -> tuple[int, int]:
    """Return (metered calls, throttled answers) summed over the realms."""
    total = throttled = 0
    for realm in realms:
        stats = sim.stats(realm)
        total += metered_calls(stats)
        throttled += int(stats.get("throttled", 0))
    return total, throttled


def _requests_of_all(sim: Simulator, realms: list[str]) -> tuple[list[int], int]:
    """Metered calls of each realm (four admin calls at a time) and the throttled answers in all."""
    from concurrent.futures import ThreadPoolExecutor

    shares = [realms[i::4] for i in range(4)]

    def one_share(share: list[str]) -> tuple[list[int], int]:
        own = Simulator.__new__(Simulator)  # the admin API on a session of this thread's own
        own.url, own.http = sim.url, requests.Session()
        counts, throttled = [], 0
        for realm in share:
            stats = own.stats(realm)
            counts.append(metered_calls(stats))
            throttled += int(stats.get("throttled", 0))
        return counts, throttled

    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(one_share, shares))
    return [c for counts, _ in parts for c in counts], sum(t for _, t in parts)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_checked(stack: Stack, companies: int, since: Any, timeout: float) -> float:
    """Poll until every company was checked since ``since`` (database time) and no run is active or
    failed; return when that was seen. Idle scheduled runs leave no row, only ``last_checked_at``."""
    deadline = time.monotonic() + timeout
    while True:
        checked, active, failed = stack.query(
            "SELECT (SELECT count(*) FROM company WHERE last_checked_at >= %s), "
            "(SELECT count(*) FROM sync_run WHERE status IN ('queued', 'running')), "
            "(SELECT count(*) FROM sync_run WHERE status IN ('failed', 'cancelled'))", (since,))[0]
        if failed:
            raise RuntimeError(f"{failed} run(s) failed or were cancelled during the cycle")
        if checked >= companies and not active:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout}s only {checked} of {companies} companies were checked")
        time.sleep(0.1)


def scheduler(sim: Simulator, companies: int, consumers: int = 2, threads: int = 4) -> list[Result]:
    """Seed N backfilled idle companies (all 28 types), then time one scheduled cycle with
    ``consumers`` processes of ``threads`` threads: the scheduler's fan-out, then the runs."""
    realms = sim.generate(companies=companies, customers=1, invoices=1, tie_size=1)
    types = all_object_types()
    detail: dict[str, Any] = {"companies": companies, "consumers": consumers, "threads_per_consumer": threads,
                              "object_types": len(types),
                              "setup": "companies seeded straight into the database (simulator grants, tokens "
                                       "sealed by the app's vault, every type's sync_state backfilled)"}
    # A budget no cycle can reach: the governor must not stretch the idle companies here.
    extra = {"SYNC_OBJECT_TYPES": ",".join(types), "QBO_MONTHLY_CALL_BUDGET": str(10 ** 12)}
    with Stack(sim, "scheduler", extra_env=extra) as stack:
        seeded = seed.run(stack.env, sim, realms, types)
        detail.update(seed_seconds=seeded["seconds"], seed_token_seconds=seeded["token_seconds"])
        workers = [start_worker(stack, threads=threads) for _ in range(consumers)]
        try:
            sim.reset_stats()
            since = stack.query("SELECT now()")[0][0]
            sim_cpu = _cpu_seconds(sim.process.pid)
            worker_cpu = sum(_cpu_seconds(w.process.pid) for w in workers)
            started = time.perf_counter()
            queued = cycle.run(stack.env)
            finished = wait_for_checked(stack, companies, since, timeout=1200)
            detail["simulator_cpu_ms_per_company"] = (_cpu_seconds(sim.process.pid) - sim_cpu) * 1000 / companies
            detail["worker_cpu_ms_per_run"] = (sum(_cpu_seconds(w.process.pid) for w in workers)
                                               - worker_cpu) * 1000 / companies
        finally:
            for w in workers:
                w.stop()
        wall = finished - started
        per_company, throttled = _requests_of_all(sim, realms)
        # What one idle run costs, measured apart: 50 more runs executed in one process.
        detail["idle_run_cost"] = run_cost.run(stack.env, realms[:50])
        kept, idle = stack.query("SELECT (SELECT count(*) FROM sync_run), "
                                 "(SELECT coalesce(sum(idle_cycles), 0) FROM company)")[0]
    requests_total = sum(per_company)
    detail.update({"cycle_seconds": wall, "queue_seconds": queued["seconds"], "queued": queued["queued"],
                   "fan_out_share": ratio(queued["seconds"], wall), "idle_cycles_counted": int(idle),
                   "sync_run_rows_kept": int(kept), "runs_per_second": companies / wall if wall else None,
                   "api_requests": requests_total, "requests_per_company_min": min(per_company),
                   "requests_per_company_max": max(per_company), "throttled": throttled,
                   "interval_seconds": INTERVAL_SECONDS,
                   "peak_worker_rss_mb": max(w.peak_rss_mb for w in workers)})
    return [Result(PER_COMPANY[0], ratio(requests_total, companies), PER_COMPANY[1], PER_COMPANY[2], True, detail),
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
                since = stack.query("SELECT now()")[0][0]
                cycle.run(stack.env)
                wait_for_checked(stack, 1, since, timeout=300)  # an idle cycle keeps no run row
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
