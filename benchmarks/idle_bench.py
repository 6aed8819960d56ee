"""Idle for 30 days: the metered calls of ONE company with all 28 object types switched on.

After its backfill the company changes nothing, and a cycle runs every 5 simulated minutes
for ``days`` days (default 3, scaled to 30). Nothing sleeps: the simulator's clock is
advanced 5 minutes before each cycle (``advance_clock``) and the service's clock follows
it. The cycles run in a child process with the app's environment through the service's
own foreground path (``sync_foreground.sync_now``, what ``flask sync now`` runs: claim,
company lock, engine, parity check when due), against PostgreSQL and the simulator over
real HTTP. The child's clock is moved with time-machine, which patches the standard
library's wall clock (``datetime.now``, ``time.time``) and leaves monotonic time alone, so
every ``utcnow()`` of the service reads the simulator's time.

No Redis here: the access-token cache lives in Redis with a TTL on Redis's own clock,
which no benchmark can move; with it, a token expired in simulated time would still be
served from the cache. Without Redis the service reads tokens from the database (the
source of truth) and refreshes them by the simulated clock, as it would in real time.

The simulator's request log, tagged with what each request asked, splits the metered
calls into CDC calls, daily reference-list reads (tax_agency, tax_code, tax_rate read
whole; time_activity queried by timestamp), parity batches (one item per type) and the
rest; throttled attempts and token-endpoint calls (not metered) are counted apart.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

from . import connect
from .breadth_bench import all_object_types
from .harness import Result, ratio
from .infra import PYTHON, ROOT, Simulator
from .pipeline import Stack

INTERVAL_SECONDS = 5 * 60
CYCLES_PER_DAY = 24 * 60 * 60 // INTERVAL_SECONDS  # 288
DAILY_READ_ENTITIES = ("TaxAgency", "TaxCode", "TaxRate")  # small lists CDC does not cover: read whole daily
DAILY_QUERY_ENTITIES = ("TimeActivity",)                  # no CDC: a LastUpdatedTime query daily
TYPES = 28
# The budget: ≤ 9,000 per 30 days for the cycles, plus each day's parity check
# (one COUNT item per type) and its reference-list reads (one call per daily type).
CYCLE_BUDGET = 9_000
DAILY_ALLOWANCE = TYPES + len(DAILY_READ_ENTITIES) + len(DAILY_QUERY_ENTITIES)  # 32
CYCLES = ("idle30_cycle_calls_all_types", CYCLE_BUDGET,
          "metered calls per idle company per 30 days, 28 types, besides daily reads and parity", True)
TOTAL = ("idle30_metered_calls_all_types", CYCLE_BUDGET + 30 * DAILY_ALLOWANCE,
         "metered calls per idle company per 30 days, 28 types, all included", True)
TARGETS = [CYCLES, TOTAL]
_FROM = re.compile(r"\bFROM\s+(\w+)", re.IGNORECASE)


# -- the parent: set up, run the child, read the simulator's log --------------------
def classify(log: list[dict[str, Any]]) -> dict[str, int]:
    """Split a request log into the idle company's kinds of call (metered ones weighted per batch item)."""
    out: Counter = Counter()
    for e in log:
        if str(e.get("outcome", "")).startswith("throttled"):
            out["throttled"] += 1
            out[f"{e['outcome']} ({e['kind']})"] += 1  # which limit, hit by which kind of call
            continue
        weight = int(e.get("weight") or 1)
        out["metered"] += weight
        detail = str(e.get("detail") or "")
        found = _FROM.search(detail)
        entity = found.group(1) if found else ""
        if e.get("status") == 401:
            out["unauthorized"] += 1  # a token the service thought fresh: would mean its clock is off
        if e["kind"] == "cdc":
            out["cdc"] += 1
        elif e["kind"] == "batch":
            out["parity_batches"] += 1
            out["parity_items"] += weight
        elif e["kind"] == "query" and "COUNT(*)" in detail.upper():
            out["count_queries"] += 1
        elif e["kind"] == "query" and entity in DAILY_READ_ENTITIES:
            out["daily_reference_reads"] += 1
        elif e["kind"] == "query" and entity in DAILY_QUERY_ENTITIES:
            out["time_activity_queries"] += 1
        else:
            out["other"] += 1
            out[f"other:{e['kind']}:{entity or e.get('path', '')}"] += 1
    return dict(out)


def daily_events(log: list[dict[str, Any]]) -> dict[str, list[float]]:
    """When each non-CDC call came, in simulated hours since the window's first request."""
    if not log:
        return {}
    t0 = min(float(e.get("sim_time") or 0) for e in log)
    out: dict[str, list[float]] = {}
    for e in log:
        if e["kind"] == "cdc":
            continue
        found = _FROM.search(str(e.get("detail") or ""))
        name = e["kind"] if e["kind"] != "query" else (found.group(1) if found else "query")
        if str(e.get("outcome", "")).startswith("throttled"):
            name += " (throttled)"
        out.setdefault(name, []).append(round((float(e.get("sim_time") or 0) - t0) / 3600, 3))
    return out


def idle_company(sim: Simulator, days: int = 3, interval: int = INTERVAL_SECONDS) -> list[Result]:
    """Backfill one small all-types company, run ``days`` of idle cycles, scale the calls to 30 days."""
    if days < 1:
        raise ValueError("--idle-days must be at least 1")
    realm = sim.generate(companies=1, customers=30, invoices=60, breadth=20)[0]
    sim.configure(latency=0.0, rate_limits_enabled=True)
    env_extra = {"SYNC_OBJECT_TYPES": ",".join(all_object_types()), "SYNC_INTERVAL_MINUTES": str(interval // 60)}
    with Stack(sim, "idle30", redis_url=None, extra_env=env_extra) as stack:
        connect.run(stack.env, sim.url, [realm])
        child = run_cycles(stack.env, sim.url, realm, days, interval)
        runs = stack.query("SELECT status, count(*) FROM sync_run WHERE company_source_id = %s GROUP BY status",
                           (realm,))
    if set(child["outcomes"]) != {"succeeded"} or len(child["types"]) != len(all_object_types()):
        # A failing cycle or a type left out would make the count meaningless.
        raise RuntimeError(f"the idle company did not sync every type in every cycle: {child['outcomes']}, "
                           f"types {child['types']}")
    log = sim.request_log(realm)
    calls = classify(log)
    scale = 30 / days
    cycle_calls = calls.get("metered", 0) - calls.get("parity_items", 0) - calls.get("daily_reference_reads", 0) \
        - calls.get("time_activity_queries", 0)
    detail = {"days_simulated": days, "scaled_by": scale, "cycles": child["cycles"],
              "seconds": child["seconds"], "seconds_per_cycle": child["seconds"] / max(1, child["cycles"]),
              "calls_in_run": calls, "calls_per_30_days": {k: v * scale for k, v in calls.items() if ":" not in k},
              "calls_per_cycle": ratio(calls.get("metered", 0), child["cycles"]),
              "non_cdc_calls_at_hours": daily_events(log),
              "paths": child["paths"], "outcomes": child["outcomes"], "runs_by_status": dict(runs),
              "hours_jumped_to_the_parity_slot": child["jump_hours"],
              "sql_statements_per_cycle": child["sql_statements"] / max(1, child["cycles"]),
              "token_endpoint_requests_during_cycles": child["token_requests"],
              "types": child["types"], "daily_allowance": DAILY_ALLOWANCE,
              "note": "the Id reconciliation of time_activity (a whole read every 30 days) falls inside a "
                      "run of 30 days or more only"}
    return [Result(CYCLES[0], cycle_calls * scale, CYCLES[1], CYCLES[2], CYCLES[3], detail),
            Result(TOTAL[0], calls.get("metered", 0) * scale, TOTAL[1], TOTAL[2], TOTAL[3], detail)]


def run_cycles(env: dict[str, str], sim_url: str, realm: str, days: int, interval: int,
               timeout: float = 1800) -> dict[str, Any]:
    """Run the backfill and the idle cycles in a child process; return its summary."""
    with tempfile.TemporaryFile(mode="w+", prefix="qbosync-bench-idle-") as err:
        proc = subprocess.run([PYTHON, "-m", "benchmarks.idle_bench", sim_url, realm, str(days), str(interval)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"the idle cycles failed ({proc.returncode}): {err.read()[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the child: the service's own code, on the simulator's clock -------------------
def main(sim_url: str, realm: str, days: int, interval: int) -> None:
    import requests
    import time_machine

    from sqlalchemy import select

    from dashboard import create_app
    from dashboard.extensions import db
    from dashboard.models import Company
    from dashboard.services.sync_foreground import sync_now

    admin = requests.Session()

    def token_requests() -> int:  # the OAuth endpoint's calls for this realm (not metered by Intuit)
        resp = admin.get(f"{sim_url}/_sandbox/oauth/stats", params={"realm": realm}, timeout=30)
        resp.raise_for_status()
        return sum(int(v) for v in (resp.json().get("requests") or {}).values())

    def sim_clock(advance: float) -> float:
        resp = admin.post(f"{sim_url}/_sandbox/clock", json={"advance_seconds": advance}, timeout=30)
        resp.raise_for_status()
        return float(resp.json()["now"])

    app = create_app(environ=dict(os.environ))
    with app.app_context():
        backfill = sync_now(realm)  # takes over the run the OAuth callback queued
        if not backfill.ok:
            raise SystemExit(f"backfill failed: {backfill.error}")
        types = sorted(backfill.summary.paths) if backfill.summary else []
        # Start the counted days at the company's daily parity slot (the first one comes 12 to
        # 36 hours after the backfill's own check): the window then holds exactly one check
        # and one read of each daily type per day, whatever the slot's hour. The clocks jump
        # there with no cycle in between (CDC's 30-day look-back covers the gap).
        due = db.session.execute(select(Company.parity_due_at).where(Company.source_id == realm)).scalar_one()
        db.session.rollback()
        now = sim_clock(0)
        jump = max(0.0, due.timestamp() - now) if due is not None else 0.0
        admin.post(f"{sim_url}/_sandbox/stats/reset", json={"realm": realm}, timeout=30).raise_for_status()
        tokens_before = token_requests()
        outcomes: Counter = Counter()
        paths: Counter = Counter()
        statements = _count_statements(db.engine)
        traveller = time_machine.travel(now, tick=True)
        moved = traveller.start()
        started = time.perf_counter()
        cycles = days * 24 * 60 * 60 // interval
        try:
            for k in range(cycles):
                # Cycle k comes at slot + k × 5 minutes, for Intuit and for us. Both clocks also
                # tick in real time while a cycle runs: advancing by what is left of the five
                # minutes keeps a loaded machine from stretching the simulated days.
                target = now + jump + k * interval
                moved.move_to(sim_clock(max(0.0, target - time.time())))
                outcome = sync_now(realm)
                outcomes[outcome.status.value if hasattr(outcome.status, "value") else str(outcome.status)] += 1
                if outcome.summary is not None:
                    paths.update(outcome.summary.paths.values())
                elif outcome.error:
                    outcomes[f"error: {outcome.error[:120]}"] += 1
        finally:
            traveller.stop()
        seconds = time.perf_counter() - started
        tokens = token_requests() - tokens_before
    print(json.dumps({"cycles": cycles, "seconds": seconds, "outcomes": dict(outcomes), "paths": dict(paths),
                      "types": types, "token_requests": tokens, "jump_hours": jump / 3600,
                      "sql_statements": statements[0]}))


def _count_statements(engine) -> list[int]:
    """Count the SQL statements the service sends from now on (what an idle cycle costs our database)."""
    from sqlalchemy import event

    counted = [0]

    def count(*_args) -> None:
        counted[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    return counted


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
