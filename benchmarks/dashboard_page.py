"""Dashboard: SQL queries and render time of the companies page at 10 and at 5,000 companies.

The parent (``run``) starts this module as a child process with the app's environment
pointed at the scratch database, so the app and its Huey instance are built from that
environment alone. The child (``main``) seeds companies straight into the tables (with
sync states, runs and a few records each, so every aggregate on the page has rows to
read), signs an operator in through the real sign-in form, and requests the page.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from .harness import Result, ratio
from .infra import ROOT, PYTHON

TARGETS = [("dashboard_queries_5000_vs_10", 1.0, "× SQL queries per page at 10 companies", True),
           ("dashboard_render_5000_vs_10", 2.0, "× render time at 10 companies", True)]
PASSWORD = "bench-password-0123456789"


def run(env: dict[str, str], small: int = 10, large: int = 5000, repeats: int = 15) -> list[Result]:
    """Start the child, read its JSON line, and judge both figures."""
    proc = subprocess.run([PYTHON, "-m", "benchmarks.dashboard_page", str(small), str(large), str(repeats)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"dashboard child exited {proc.returncode}: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    s, l = data[str(small)], data[str(large)]
    detail = {"small": s, "large": l}
    return [
        Result(TARGETS[0][0], ratio(l["queries"], s["queries"]), TARGETS[0][1], TARGETS[0][2], True, detail),
        Result(TARGETS[1][0], ratio(l["median_ms"], s["median_ms"]), TARGETS[1][1], TARGETS[1][2], True, detail),
    ]


# ---- child process ------------------------------------------------------------------------

def _seed(db, start: int, stop: int) -> None:
    """Insert companies start..stop-1 with two sync states, a run and two records of each type."""
    from sqlalchemy import insert

    from dashboard.models import (
        Company, ConnectionState, Customer, Invoice, RunKind, RunStatus, SyncRun, SyncState, SyncStatus,
    )

    now = datetime.now(timezone.utc)
    states = [ConnectionState.CONNECTED, ConnectionState.CONNECTED, ConnectionState.RECONNECT_REQUIRED]
    companies, sync_states, runs, customers, invoices = [], [], [], [], []
    for i in range(start, stop):
        realm = f"{9_100_000_000_000_000 + i}"
        companies.append({"source_id": realm, "name": f"Bench Company {i:05d}", "integration": "qbo",
                          "connection_state": states[i % 3], "connected_at": now - timedelta(days=1),
                          "next_sync_at": now + timedelta(minutes=5), "token_version": 0,
                          "created_at": now, "updated_at": now})
        for object_type in ("customer", "invoice"):
            failed = i % 7 == 0 and object_type == "invoice"
            sync_states.append({
                "company_source_id": realm, "object_type": object_type,
                "status": SyncStatus.FAILED if failed else SyncStatus.SUCCEEDED,
                "is_initial_backfill_completed": True, "initial_attempt_time": now - timedelta(days=1),
                "last_attempt_time": now - timedelta(minutes=2), "records_synced": 2, "records_total": 2,
                "last_successful_sync_time": now - timedelta(minutes=2), "attempts": 1 if failed else 0,
                "error_message": "Intuit answered 500 three times" if failed else None,
                "backfill_tie_offset": 0, "created_at": now, "updated_at": now})
        runs.append({"company_source_id": realm, "kind": RunKind.INCREMENTAL, "status": RunStatus.SUCCEEDED,
                     "trigger": "schedule", "started_at": now - timedelta(minutes=2), "finished_at": now,
                     "attempts": 1, "records_written": 0, "pages": 1, "requests": 1,
                     "created_at": now, "updated_at": now})
        for n in range(2):
            raw = {"Id": str(n + 1), "DisplayName": f"Customer {n}"}
            customers.append({"company_source_id": realm, "source_id": str(n + 1), "display_name": raw["DisplayName"],
                              "raw_data": raw, "active": True, "is_deleted": False, "sync_token": 0,
                              "created_at": now, "updated_at": now})
            invoices.append({"company_source_id": realm, "source_id": str(n + 1), "customer_source_id": str(n + 1),
                             "raw_data": {"Id": str(n + 1)}, "is_deleted": False, "sync_token": 0,
                             "created_at": now, "updated_at": now})
    with db.engine.begin() as conn:
        for model, rows in ((Company, companies), (SyncState, sync_states), (SyncRun, runs),
                            (Customer, customers), (Invoice, invoices)):
            for chunk in range(0, len(rows), 2000):
                conn.execute(insert(model), rows[chunk:chunk + 2000])
    # A live database has planner statistics and a visibility map (index-only scans need
    # it); freshly bulk-loaded tables have neither until autovacuum gets to them, which
    # would make the timing depend on when it runs.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE company, sync_state, sync_run, customer, invoice")


def _signed_in_client(app):
    import re

    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
        re.search(r'name="csrf-token" content="([^"]+)"', page)
    resp = client.post("/sign-in", data={"username": "bench", "password": PASSWORD,
                                         "csrf_token": token.group(1) if token else ""})
    if resp.status_code != 302:
        raise RuntimeError(f"sign-in failed: {resp.status_code}")
    return client


def _measure(app, client, db, repeats: int) -> dict[str, Any]:
    from flask import url_for
    from sqlalchemy import event

    with app.test_request_context():
        path = url_for("companies.index")
    counter = {"n": 0}

    def count(*_args: Any) -> None:
        counter["n"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        client.get(path)  # warm caches (templates, statement cache) before timing
        per_request, timings = [], []
        for _ in range(repeats):
            counter["n"] = 0
            started = time.perf_counter()
            resp = client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
            if resp.status_code != 200:
                raise RuntimeError(f"GET {path} answered {resp.status_code}")
            per_request.append(counter["n"])
        body = resp.get_data()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    if len(set(per_request)) != 1:
        raise RuntimeError(f"query count varies between identical requests: {per_request}")
    return {"queries": per_request[0], "median_ms": statistics.median(timings), "min_ms": min(timings),
            "bytes": len(body), "path": path}


def main(argv: list[str]) -> None:
    """Seed, sign in, and measure at each size; print one JSON line."""
    small, large, repeats = int(argv[0]), int(argv[1]), int(argv[2])
    from dashboard import create_app
    from dashboard.extensions import db
    from dashboard.services.operators import create_operator

    app = create_app({"WTF_CSRF_ENABLED": True}, environ=dict(os.environ))
    with app.app_context():
        create_operator("bench", PASSWORD)
        _seed(db, 0, small)
    client = _signed_in_client(app)
    out = {str(small): _measure(app, client, db, repeats)}
    with app.app_context():
        _seed(db, small, large)
    out[str(large)] = _measure(app, client, db, repeats)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
