"""One simulated day of 5-minute cycles: does ``sync_run`` grow with work or with time?

Companies are seeded connected and backfilled (``benchmarks.seed``). A child process with
the app's environment then runs ``cycles`` cycles on a simulated clock (time-machine moves
the service's wall clock, the simulator's clock is advanced alongside, as in idle30): each
cycle the real scheduler (``schedule_due_companies``) records and queues a run for every
company due, and the real runner (``execute_run``, what a worker's task calls) executes
each one in this process against the simulator over HTTP. In a few cycles a few companies
get a change in QuickBooks first (a customer renamed), so those runs have data to write.

No Redis (like idle30): the access-token cache's TTL runs on Redis's clock, which no
benchmark can move; tokens come from the database and are refreshed by the simulated
clock. The queue is the embedded one; its tasks are never consumed, the child executes
the recorded runs itself.

The figure: ``sync_run`` rows at the end over (companies + changes made), the changes made
standing for the runs that changed data (a run that re-reads a change it already stored,
as the overlap of CDC windows makes the next cycle do, changed nothing); at most 1.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from . import seed
from .harness import Result, ratio
from .infra import PYTHON, ROOT, Simulator
from .pipeline import Stack

TARGET = ("runs288_rows_vs_bound", 1.0,
          "sync_run rows after a simulated day ÷ (companies + changes made in QuickBooks)", True)
INTERVAL_SECONDS = 5 * 60
CHANGE_EVERY = 24  # every 2 simulated hours one company gets a change


def run(sim: Simulator, companies: int, cycles: int = 288) -> Result:
    realms = sim.generate(companies=companies, customers=3, invoices=3, tie_size=1)
    types = ["customer", "invoice"]
    extra = {"SYNC_OBJECT_TYPES": ",".join(types), "QBO_MONTHLY_CALL_BUDGET": str(10 ** 12)}
    with Stack(sim, "runs288", redis_url=None, extra_env=extra) as stack:
        seeded = seed.run(stack.env, sim, realms, types)
        child = _run_child(stack.env, sim.url, cycles)
        rows = dict(stack.query("SELECT status, count(*) FROM sync_run GROUP BY status"))
        idle = int(stack.query("SELECT coalesce(sum(idle_cycles), 0) FROM company")[0][0])
    total = sum(rows.values())
    bound = companies + child["changes_made"]
    detail: dict[str, Any] = {
        "companies": companies, "cycles": cycles, "simulated_hours": cycles * INTERVAL_SECONDS / 3600,
        "runs_executed": child["runs"], "changes_made": child["changes_made"],
        "runs_the_service_counted_as_changed": child["changed_runs"], "outcomes": child["outcomes"],
        "sync_run_rows": total, "rows_by_status": rows, "idle_cycles_counted": idle, "bound": bound,
        "seconds": child["seconds"], "seed_seconds": seeded["seconds"],
        "how": "real scheduler + real runner in one child process (no worker: the child executes each "
               "recorded run with execute_run), clocks simulated (time-machine + the simulator's clock), "
               f"one company changed every {CHANGE_EVERY} cycles; the default size keeps make bench within "
               "its budget (each run costs a real CDC call and its bookkeeping: ~25-35 ms here), "
               "--runs-companies 1000 runs the issue's size (288,000 runs: hours)"}
    if child["outcomes"].keys() - {"succeeded"}:
        raise RuntimeError(f"some runs did not succeed: {child['outcomes']}")
    return Result(TARGET[0], ratio(total, bound), TARGET[1], TARGET[2], True, detail)


def _run_child(env: dict[str, str], sim_url: str, cycles: int, timeout: float = 3600) -> dict[str, Any]:
    with tempfile.TemporaryFile(mode="w+", prefix="qbosync-bench-runs288-") as err:
        proc = subprocess.run([PYTHON, "-m", "benchmarks.runs_bench", sim_url, str(cycles)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"the cycles failed ({proc.returncode}): {err.read()[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(sim_url: str, cycles: int) -> None:
    from collections import Counter
    from datetime import timedelta

    import requests
    import time_machine
    from sqlalchemy import select, update

    from dashboard import create_app
    from dashboard.extensions import db
    from dashboard.models import Company, RunStatus, SyncRun, utcnow
    from dashboard.services.sync_runner import execute_run
    from dashboard.services.sync_schedule import schedule_due_companies

    admin = requests.Session()

    def sim_clock(advance: float) -> float:
        resp = admin.post(f"{sim_url}/_sandbox/clock", json={"advance_seconds": advance}, timeout=30)
        resp.raise_for_status()
        return float(resp.json()["now"])

    def change(realm: str) -> None:
        customers = admin.get(f"{sim_url}/_sandbox/records/{realm}/Customer", timeout=30)
        customers.raise_for_status()
        first = customers.json()["records"][0]["Id"]
        admin.post(f"{sim_url}/_sandbox/records/{realm}/Customer/{first}",
                   json={"DisplayName": f"Renamed {time.time()}"}, timeout=30).raise_for_status()

    app = create_app(environ=dict(os.environ))
    outcomes: Counter = Counter()
    runs = changed = made = 0
    with app.app_context():
        realms = list(db.session.execute(select(Company.source_id).order_by(Company.source_id)).scalars())
        start = sim_clock(0)
        traveller = time_machine.travel(start, tick=True)
        moved = traveller.start()
        started = time.perf_counter()
        try:
            # Every company due at the first cycle; the scheduler moves each to its next slot.
            db.session.execute(update(Company).values(next_sync_at=utcnow() - timedelta(seconds=1)))
            db.session.commit()
            for k in range(cycles):
                moved.move_to(sim_clock(max(0.0, start + k * INTERVAL_SECONDS - time.time())))
                if k and k % CHANGE_EVERY == 0:
                    change(realms[(k // CHANGE_EVERY) % len(realms)])
                    made += 1
                schedule_due_companies()
                queued = list(db.session.execute(select(SyncRun.id).where(SyncRun.status == RunStatus.QUEUED)
                                                 .order_by(SyncRun.id)).scalars())
                db.session.rollback()
                for run_id in queued:
                    summary = execute_run(run_id)
                    runs += 1
                    status = db.session.execute(select(SyncRun.status).where(SyncRun.id == run_id)).scalar()
                    db.session.rollback()
                    outcomes["succeeded" if summary is not None and status in (None, RunStatus.SUCCEEDED)
                             else str(status)] += 1
                    changed += bool(summary is not None and summary.changed)
        finally:
            traveller.stop()
    print(json.dumps({"runs": runs, "changed_runs": changed, "changes_made": made, "outcomes": dict(outcomes),
                      "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
