"""Run the real reaper every second (a child process of a resilience test).

In production the reaper is a periodic task that Huey's scheduler fires once a minute;
the tests call the same ``reap_expired_runs`` every second so a killed run is picked up
in seconds and five kills fit in one test.
"""
from __future__ import annotations

import os
import time


def main() -> None:
    from dashboard import create_app
    from dashboard.extensions import db
    from dashboard.services.sync_schedule import reap_expired_runs

    app = create_app(environ=dict(os.environ))
    while True:
        with app.app_context():
            try:
                reap_expired_runs()
            except Exception:  # the database may be restarting under us: try again next second
                db.session.rollback()
            finally:
                db.session.remove()
        time.sleep(1.0)


if __name__ == "__main__":
    main()
