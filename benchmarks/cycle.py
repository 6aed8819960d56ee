"""Queue one incremental cycle for every connected company, as the 5-minute scheduler does.

Run as a child process with the app's environment; prints the number of runs queued and
the seconds it took. The queueing goes through the service the scheduler itself uses
(``request_sync``), so the work the consumers then do is exactly a scheduled cycle.
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
    from sqlalchemy import select

    from dashboard import create_app
    from dashboard.extensions import db
    from dashboard.models import Company, ConnectionState, RunKind
    from dashboard.services.sync_jobs import request_sync

    app = create_app(environ=dict(os.environ))
    with app.app_context():
        realms = db.session.scalars(select(Company.source_id).where(
            Company.connection_state == ConnectionState.CONNECTED).order_by(Company.id)).all()
        started = time.perf_counter()
        created = sum(1 for realm in realms
                      if request_sync(realm, kind=RunKind.INCREMENTAL, trigger="schedule")[1])
        seconds = time.perf_counter() - started
    print(json.dumps({"companies": len(realms), "queued": created, "seconds": seconds}))


if __name__ == "__main__":
    main()
