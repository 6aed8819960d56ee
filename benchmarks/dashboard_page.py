"""Dashboard: SQL statements and render time of the companies page at 10, 10,000 and 50,000 companies.

The parent (``run``) starts this module as a child process with the app's environment
pointed at the scratch database, so the app and its Huey instance are built from that
environment alone. The child (``main``) seeds companies straight into the tables with
PostgreSQL's COPY (every registered object type's sync state per company, a few finished
runs, some failing types, parity drifts, types switched off, running and queued runs,
companies to reconnect), signs an operator in through the real sign-in form, and requests
the page at each size, the smallest first.
"""
from __future__ import annotations

import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from .harness import Result, ratio
from .infra import ROOT, PYTHON

PASSWORD = "bench-password-0123456789"
SMALL = 10
DEFAULT_SIZES = (10_000, 50_000)


def sizes_for(large: int) -> tuple[int, ...]:
    """The sizes measured against the 10-company page: 10,000 (when below ``large``) and ``large``."""
    return tuple(sorted({n for n in DEFAULT_SIZES if n < large} | {large}))


def targets(sizes: Sequence[int] = DEFAULT_SIZES) -> list[tuple[str, float, str, bool]]:
    """One statements target and one render target per size, each against the 10-company page."""
    found = []
    for n in sizes:
        found.append((f"dashboard_queries_{n}_vs_{SMALL}", 1.0, f"× SQL queries per page at {SMALL} companies", True))
        found.append((f"dashboard_render_{n}_vs_{SMALL}", 2.0, f"× render time at {SMALL} companies", True))
    return found


TARGETS = targets()


def run(env: dict[str, str], large: int = DEFAULT_SIZES[-1], repeats: int = 15,
        sizes: Sequence[int] | None = None) -> list[Result]:
    """Start the child, read its JSON line, and judge both figures at every size."""
    sizes = tuple(sizes or sizes_for(large))
    proc = subprocess.run([PYTHON, "-m", "benchmarks.dashboard_page", str(repeats), str(SMALL), *map(str, sizes)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"dashboard child exited {proc.returncode}: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    small = data[str(SMALL)]
    results = []
    for (queries_name, q_target, q_unit, _), (render_name, r_target, r_unit, _) in \
            zip(targets(sizes)[::2], targets(sizes)[1::2]):
        n = queries_name.split("_")[2]
        detail = {"small": small, "large": data[n], "seed": data["seed"]}
        results.append(Result(queries_name, ratio(data[n]["queries"], small["queries"]), q_target, q_unit, True,
                              detail))
        results.append(Result(render_name, ratio(data[n]["median_ms"], small["median_ms"]), r_target, r_unit,
                              True, detail))
    return results


# ---- child process ------------------------------------------------------------------------

def _at(moment: datetime) -> str:
    return moment.isoformat()


class _Seed:
    """The rows of companies start..stop-1, as COPY input, with a realistic mix of states.

    Per company: every registered type's sync state (most synced, some records each), three
    finished runs and two records of each of customer and invoice. Some companies have
    something to show: one failed type in 20, a parity failure in 89, three types switched
    off in 31, a running run (one type backfilling) in 40, a queued run in 45, reconnect
    required in 50, disconnected in 97.
    """

    def __init__(self, start: int, stop: int, now: datetime) -> None:
        from dashboard.sync import specs

        self.start, self.stop, self.now = start, stop, now
        self.types = [spec.name for spec in specs.ordered()]

    @staticmethod
    def realm(i: int) -> str:
        return f"{9_100_000_000_000_000 + i}"

    def companies(self) -> Iterable[tuple]:
        now = self.now
        for i in range(self.start, self.stop):
            state = "reconnect_required" if i % 50 == 7 else "disconnected" if i % 97 == 13 else "connected"
            error = "Intuit refused the refresh token (invalid_grant)" if state == "reconnect_required" else None
            yield (self.realm(i), f"Bench Company {i:05d}", "qbo", state, error, _at(now - timedelta(days=30)),
                   _at(now + timedelta(seconds=(i * 7) % 300)), 0, _at(now - timedelta(minutes=i % 5)), i % 288,
                   _at(now), _at(now))

    COMPANY_COLUMNS = ("source_id", "name", "integration", "connection_state", "connection_error", "connected_at",
                       "next_sync_at", "token_version", "last_checked_at", "idle_cycles", "created_at", "updated_at")

    def sync_states(self) -> Iterable[tuple]:
        now = self.now
        synced_at, checked_at = _at(now - timedelta(minutes=3)), _at(now - timedelta(hours=5))
        first = _at(now - timedelta(days=30))
        n_types = len(self.types)
        for i in range(self.start, self.stop):
            realm = self.realm(i)
            failed_type = self.types[i % n_types] if i % 20 == 3 else None
            drift_type = self.types[(i + 5) % n_types] if i % 89 == 5 else None
            off = set(self.types[(i + k) % n_types] for k in (1, 9, 17)) if i % 31 == 4 else set()
            running_type = self.types[(i + 3) % n_types] if i % 40 == 9 else None
            for t_index, object_type in enumerate(self.types):
                records = (i * 31 + t_index * 17) % 5000
                if object_type == running_type:
                    yield (realm, object_type, "IN_PROGRESS", False, _at(now - timedelta(minutes=4)),
                           _at(now - timedelta(seconds=20)), None, records // 2, records, None, None, 0, None,
                           True, None, None, None, 0, 0, first, _at(now))
                elif object_type == failed_type:
                    yield (realm, object_type, "FAILED", True, first, _at(now - timedelta(minutes=8)), synced_at,
                           records, records, "Intuit answered 500 three times", "server", 3,
                           _at(now - timedelta(minutes=8)), True, checked_at, records, records, 0, 0, first, _at(now))
                else:
                    drifts = 2 if object_type == drift_type else 0
                    yield (realm, object_type, "SUCCEEDED", True, first, synced_at, synced_at, records, records,
                           None, None, 0, None, object_type not in off, checked_at, records + (drifts and 3),
                           records, drifts, 0, first, _at(now))

    STATE_COLUMNS = ("company_source_id", "object_type", "status", "is_initial_backfill_completed",
                     "initial_attempt_time", "last_attempt_time", "last_successful_sync_time", "records_synced",
                     "records_total", "error_message", "error_kind", "attempts", "last_failed_at", "enabled",
                     "parity_checked_at", "parity_source_count", "parity_local_count", "parity_drifts",
                     "backfill_tie_offset", "created_at", "updated_at")

    def runs(self) -> Iterable[tuple]:
        now = self.now
        for i in range(self.start, self.stop):
            realm = self.realm(i)
            for k, kind in enumerate(("backfill", "incremental", "incremental")):
                at = now - timedelta(days=30) if k == 0 else now - timedelta(hours=6 * k)
                failed = k == 2 and i % 20 == 3
                yield (realm, None, kind, "failed" if failed else "succeeded", "schedule", _at(at),
                       _at(at + timedelta(seconds=40)), 1, 3 + k, 1, 2, "Intuit answered 500 three times" if failed
                       else None, _at(at), _at(at))
            if i % 40 == 9:
                at = now - timedelta(minutes=4)
                yield (realm, None, "incremental", "running", "schedule", _at(at), None, 1, 0, 3, 4, None, _at(at),
                       _at(at))
            elif i % 45 == 10:
                yield (realm, None, "incremental", "queued", "operator", None, None, 0, 0, 0, 0, None, _at(now),
                       _at(now))

    RUN_COLUMNS = ("company_source_id", "object_type", "kind", "status", "trigger", "started_at", "finished_at",
                   "attempts", "records_written", "pages", "requests", "error_message", "created_at", "updated_at")

    def customers(self) -> Iterable[tuple]:
        for i in range(self.start, self.stop):
            for n in (1, 2):
                yield (self.realm(i), str(n), f"Customer {n}", json.dumps({"Id": str(n), "DisplayName": f"Customer {n}"}),
                       True, False, 0, _at(self.now), _at(self.now))

    CUSTOMER_COLUMNS = ("company_source_id", "source_id", "display_name", "raw_data", "active", "is_deleted",
                        "sync_token", "created_at", "updated_at")

    def invoices(self) -> Iterable[tuple]:
        for i in range(self.start, self.stop):
            for n in (1, 2):
                yield (self.realm(i), str(n), str(n), json.dumps({"Id": str(n)}), False, 0, _at(self.now),
                       _at(self.now))

    INVOICE_COLUMNS = ("company_source_id", "source_id", "customer_source_id", "raw_data", "is_deleted",
                       "sync_token", "created_at", "updated_at")


def _copy(cursor, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
    """COPY rows into table (CSV: None is NULL, an unquoted empty field)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)
    return count


def _seed(db, start: int, stop: int) -> dict[str, int]:
    """Insert companies start..stop-1 and their rows; return how many rows went into each table."""
    seed = _Seed(start, stop, datetime.now(timezone.utc))
    written = {}
    raw = db.engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            for table, columns, rows in (("company", seed.COMPANY_COLUMNS, seed.companies()),
                                         ("sync_state", seed.STATE_COLUMNS, seed.sync_states()),
                                         ("sync_run", seed.RUN_COLUMNS, seed.runs()),
                                         ("customer", seed.CUSTOMER_COLUMNS, seed.customers()),
                                         ("invoice", seed.INVOICE_COLUMNS, seed.invoices())):
                written[table] = _copy(cursor, table, columns, rows)
        raw.commit()
    finally:
        raw.close()
    # A live database has planner statistics and a visibility map (index-only scans need
    # it); freshly bulk-loaded tables have neither until autovacuum gets to them, which
    # would make the timing depend on when it runs.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE company, sync_state, sync_run, customer, invoice")
    return written


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
    """Seed, sign in, and measure at each size (growing the same database); print one JSON line."""
    repeats, sizes = int(argv[0]), sorted(int(a) for a in argv[1:])
    from dashboard import create_app
    from dashboard.extensions import db
    from dashboard.services.operators import create_operator

    app = create_app({"WTF_CSRF_ENABLED": True}, environ=dict(os.environ))
    with app.app_context():
        create_operator("bench", PASSWORD)
    client = _signed_in_client(app)
    out: dict[str, Any] = {"seed": {}}
    seeded = 0
    for size in sizes:
        started = time.perf_counter()
        with app.app_context():
            rows = _seed(db, seeded, size)
        seeded = size
        out["seed"][str(size)] = {**rows, "seconds": round(time.perf_counter() - started, 1)}
        out[str(size)] = _measure(app, client, db, repeats)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
