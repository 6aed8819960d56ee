"""What one idle scheduled run costs a worker: SQL statements, and (optionally) a profile.

Run as a child process with the app's environment over seeded companies (``benchmarks.seed``):
it records a scheduled incremental run for each realm given on stdin and executes them one
after the other in this process, through the worker's own ``execute_run``, counting every
statement sent to the database with an SQLAlchemy event. ``--profile N`` prints the N most
expensive functions (cProfile) to stderr, sorted by ``PROFILE_SORT`` (default cumulative)
and filtered by the regular expression ``PROFILE_FILTER``; ``RUN_COST_SQL=1`` prints every
statement.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from .infra import PYTHON, ROOT


def run(env: dict[str, str], realms: list[str], timeout: float = 300) -> dict[str, Any]:
    """Execute one idle run per realm in a child; return statements per run and seconds per run."""
    proc = subprocess.run([PYTHON, "-m", "benchmarks.run_cost"], cwd=ROOT, env=env, capture_output=True, text=True,
                          input=json.dumps(realms), timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"measuring idle runs failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(profile_top: int = 0) -> None:
    from collections import Counter

    from sqlalchemy import event

    from dashboard import create_app
    from dashboard.extensions import db
    from dashboard.models import RunKind
    from dashboard.services.sync_jobs import record_scheduled_runs
    from dashboard.services.sync_runner import execute_run

    realms = json.loads(sys.stdin.read())
    app = create_app(environ=dict(os.environ))
    with app.app_context():
        runs = record_scheduled_runs({realm: RunKind.INCREMENTAL for realm in realms})
        statements: Counter = Counter()

        def count(conn, cursor, statement, parameters, context, executemany) -> None:
            statements[statement.split(None, 1)[0].upper()] += 1
            if os.environ.get("RUN_COST_SQL"):
                print(statement[:160].replace("\n", " "), file=sys.stderr)

        # The first run warms caches (compiled statements, the token): measured apart.
        execute_run(runs[0].id)
        event.listen(db.engine, "before_cursor_execute", count)
        profiler = None
        if profile_top:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        for run in runs[1:]:
            execute_run(run.id)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler is not None:
            import pstats

            profiler.disable()
            stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats(os.environ.get("PROFILE_SORT", "cumulative"))
            stats.print_stats(os.environ.get("PROFILE_FILTER", ""), profile_top)
        event.remove(db.engine, "before_cursor_execute", count)
    measured = max(1, len(runs) - 1)
    print(json.dumps({"runs": measured, "statements_per_run": sum(statements.values()) / measured,
                      "by_verb_per_run": {k: v / measured for k, v in statements.most_common()},
                      "seconds_per_run": seconds / measured, "cpu_ms_per_run": cpu * 1000 / measured}))


if __name__ == "__main__":
    main(int(sys.argv[sys.argv.index("--profile") + 1]) if "--profile" in sys.argv else 0)
