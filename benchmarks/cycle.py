"""Queue one incremental cycle for every connected company with the real scheduler.

Run as a child process with the app's environment; prints the number of runs queued and
the seconds it took. It makes every company due now (``next_sync_at``), then calls the
scheduler's own ``schedule_due_companies``: what the periodic task does each minute, without
waiting for the minute to turn.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .infra import PYTHON, ROOT


def run(env: dict[str, str], timeout: float = 600) -> dict:
    """Queue a cycle in a child process and return its summary."""
    proc = subprocess.run([PYTHON, "-m", "benchmarks.cycle"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"queueing the cycle failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from dashboard import create_app
    from dashboard.extensions import db
    from dashboard.models import Company, ConnectionState, utcnow
    from dashboard.services.sync_schedule import schedule_due_companies

    app = create_app(environ=dict(os.environ))
    with app.app_context():
        now = utcnow()
        due = db.session.execute(update(Company).where(Company.connection_state == ConnectionState.CONNECTED)
                                 .values(next_sync_at=now - timedelta(seconds=1))).rowcount
        db.session.commit()
        started = time.perf_counter()
        queued = schedule_due_companies()
        seconds = time.perf_counter() - started
    print(json.dumps({"companies": due, "queued": len(queued), "seconds": seconds}))


if __name__ == "__main__":
    main()
