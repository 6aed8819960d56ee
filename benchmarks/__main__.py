"""Run the benchmarks (``make bench``): print a table and write benchmarks/results.json.

Every speed figure is a ratio to a baseline measured in this same run (the raw
requests + COPY script, the theoretical floor, tap-quickbooks, the page at 10 companies),
so the figures compare across machines. Needs PostgreSQL and Redis on loopback
(``BENCH_DATABASE_URL``, ``BENCH_REDIS_URL``); creates and drops its own database.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from . import (alert_sink_bench, backfill_bench, breadth_bench, crash_bench, dashboard_page, failing_bench,
               idle_bench, peer, runs_bench, scale_bench)
from .harness import Result, format_table, guarded, write_results
from .infra import Simulator, app_env, ScratchDatabase

ALL = ("throughput", "peer", "latency", "memory", "metered", "scheduler", "dashboard", "alerts", "breadth", "idle30",
       "failing", "runs288", "crash")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=20_000, help="customers in the backfill data set")
    p.add_argument("--invoices", type=int, default=40_000, help="invoices in the backfill data set")
    p.add_argument("--memory-base", type=int, default=3_000,
                   help="records (1/3 customers, 2/3 invoices) of the small memory run; the large one is 10×")
    p.add_argument("--companies", type=int, default=10_000, help="idle companies in the scheduler cycle")
    p.add_argument("--consumers", type=int, default=2, help="consumer processes in the scheduler cycle")
    p.add_argument("--runs-companies", type=int, default=10,
                   help="companies in runs288 (each runs every cycle: 1,000 means 288,000 runs, hours)")
    p.add_argument("--runs-cycles", type=int, default=288, help="5-minute cycles in runs288 (288: one day)")
    p.add_argument("--cycles", type=int, default=4, help="idle cycles counted for the metered-calls figure")
    p.add_argument("--idle-days", type=int, default=3,
                   help="simulated days of 5-minute idle cycles in idle30 (scaled to 30 days)")
    p.add_argument("--dashboard-large", type=int, default=50_000,
                   help="companies in the largest dashboard case (10,000 is measured too when below it)")
    p.add_argument("--only", action="append", choices=ALL, help="run only these benchmarks (repeatable)")
    p.add_argument("--skip", action="append", choices=ALL, default=[], help="skip these benchmarks")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    chosen = [name for name in (args.only or ALL) if name not in args.skip]
    results: list[Result] = []
    started = time.perf_counter()

    def step(name: str, targets, run) -> None:
        t0 = time.perf_counter()
        print(f"== {name} ...", flush=True)
        results.extend(guarded(targets, run))
        print(f"   {name}: {time.perf_counter() - t0:.1f}s", flush=True)

    records = args.customers + args.invoices
    needs_sim = set(chosen) - {"dashboard"}
    if needs_sim:
        with Simulator(customers=args.customers, invoices=args.invoices) as sim:
            realm = sim.realms()[0]
            state: dict = {}

            def throughput() -> list[Result]:
                result, run = backfill_bench.throughput(sim, realm, records)
                state["throughput"] = run
                return [result]

            def versus_tap() -> list[Result]:
                run = state.get("throughput")
                if run is None:
                    raise RuntimeError("needs the throughput run (our figures) first")
                return peer.compare(sim, realm, records, run.records_per_second, next(iter(run.sim_stats.values())))

            def latency() -> list[Result]:
                result, run = backfill_bench.under_intuit_conditions(sim, realm, args.customers, args.invoices)
                state["latency"] = (run, result.detail["floor_seconds"])
                return [result]

            def versus_tap_latency() -> list[Result]:
                if "latency" not in state:
                    raise RuntimeError("needs the latency run (our figures) first")
                run, floor = state["latency"]
                return [peer.compare_under_latency(sim, realm, records, run.records_per_second, floor)]

            base_c = args.memory_base // 3
            plan = [
                ("throughput", [backfill_bench.THROUGHPUT], throughput),
                ("peer", [peer.SPEED, peer.CALLS], versus_tap),
                ("latency", [backfill_bench.LATENCY], latency),
                ("peer", [peer.SPEED_LATENCY], versus_tap_latency),
                ("memory", [backfill_bench.MEMORY],
                 lambda: [backfill_bench.memory(sim, base_c, args.memory_base - base_c)]),
                ("metered", [scale_bench.METERED], lambda: [scale_bench.metered(sim, args.cycles)]),
                ("scheduler", [scale_bench.PER_COMPANY, scale_bench.CYCLE_SHARE],
                 lambda: scale_bench.scheduler(sim, args.companies, args.consumers)),
                ("alerts", [alert_sink_bench.TARGET], lambda: [alert_sink_bench.run(sim)]),
                ("failing", failing_bench.TARGETS, lambda: failing_bench.run(sim)),
                ("runs288", [runs_bench.TARGET],
                 lambda: [runs_bench.run(sim, args.runs_companies, args.runs_cycles)]),
                # These two regenerate the simulator's data: they come after the classic realm's benchmarks.
                ("breadth", [breadth_bench.BREADTH], lambda: [breadth_bench.breadth_backfill(sim)]),
                ("idle30", idle_bench.TARGETS, lambda: idle_bench.idle_company(sim, args.idle_days)),
                ("crash", [crash_bench.RESUME], lambda: [crash_bench.run(sim)]),
            ]
            for name, targets, run in plan:
                if name in chosen:
                    step(name, targets, run)
    if "dashboard" in chosen:
        step("dashboard", dashboard_page.targets(dashboard_page.sizes_for(args.dashboard_large)),
             lambda: _dashboard(args.dashboard_large))

    write_results(results)
    print()
    print(format_table(results))
    print(f"\n{sum(r.met for r in results)}/{len(results)} targets met in {time.perf_counter() - started:.0f}s; "
          f"wrote benchmarks/results.json")
    return 0


def _dashboard(large: int) -> list[Result]:
    db = ScratchDatabase(label="dashboard")
    # The dashboard needs no queue or simulator: the embedded queue keeps Redis out of it.
    env = app_env(db.url, "http://127.0.0.1:9", redis_url=None, namespace=f"qbosync-bench-dashboard",
                  instance=Path(tempfile.mkdtemp(prefix="qbosync-bench-dashboard-")))
    db.create(env)
    try:
        return dashboard_page.run(env, large=large)
    finally:
        db.drop()


if __name__ == "__main__":
    sys.exit(main())
