"""Processes for fault-injection tests: an app stack on private servers, workers to kill.

The test process runs the Intuit simulator (in a thread) and the private PostgreSQL /
Redis servers; the service runs as real child processes (``flask --app wsgi worker``,
the OAuth connect flow) pointed at them, so killing or restarting anything never
touches the machine's shared servers or the pytest process itself.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import psycopg2

from benchmarks import connect
from benchmarks.infra import app_env
from benchmarks.pipeline import TERMINAL, Worker, start_worker

ROOT = Path(__file__).resolve().parents[2]


class Stack:
    """One database on a private PostgreSQL and one Huey namespace on a (private) Redis."""

    def __init__(self, pg, redis_url: str, sim_url: str, extra_env: dict[str, str] | None = None) -> None:
        self.pg = pg
        self.db_name = f"resilience_{uuid.uuid4().hex[:8]}"
        self.db_url = pg.create_database(self.db_name)
        self.namespace = f"qbosync-resilience-{uuid.uuid4().hex[:8]}"
        self.instance = Path(tempfile.mkdtemp(prefix="qbosync-resilience-"))
        env = {
            # Short leases (and the reaper loop below): a killed run resumes in seconds, not minutes.
            "SYNC_LEASE_SECONDS": "4", "SYNC_RETRY_DELAY": "0.5", "SYNC_RETRIES": "5", "QBO_THROTTLE_WAIT": "0.5",
        }
        env.update(extra_env or {})
        self.env = app_env(self.db_url, sim_url, redis_url=redis_url, namespace=self.namespace,
                           instance=self.instance, extra=env)
        self.workers: list[Worker] = []
        proc = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        self.reaper = subprocess.Popen([sys.executable, "-m", "tests.resilience.reaper"], cwd=ROOT, env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # ---- database ---------------------------------------------------------------------------
    def query(self, sql: str, params: tuple = (), retries: int = 50) -> list[tuple]:
        """Run a read; wait through a database restart instead of failing the test on it."""
        for attempt in range(retries):
            try:
                conn = psycopg2.connect(self.db_url, connect_timeout=2)
            except psycopg2.OperationalError:
                time.sleep(0.2)
                continue
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchall()
            except psycopg2.OperationalError:
                time.sleep(0.2)
            finally:
                conn.close()
        raise RuntimeError(f"database unreachable for {retries} attempts")

    def scalar(self, sql: str, params: tuple = ()) -> Any:
        return self.query(sql, params)[0][0]

    def records(self, realm: str) -> int:
        return int(self.scalar("SELECT (SELECT count(*) FROM customer WHERE company_source_id = %s) + "
                               "(SELECT count(*) FROM invoice WHERE company_source_id = %s)", (realm, realm)))

    def stored(self, realm: str, table: str) -> dict[str, int]:
        """Return {source_id: sync_token} of one table for one company."""
        rows = self.query(f"SELECT source_id, sync_token FROM {table} WHERE company_source_id = %s", (realm,))
        return {str(sid): token for sid, token in rows}

    def duplicates(self, realm: str, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) - count(DISTINCT source_id) FROM {table} "
                               "WHERE company_source_id = %s", (realm,)))

    def sync_states(self, realm: str) -> dict[str, tuple]:
        rows = self.query("SELECT object_type, status, is_initial_backfill_completed, error_message "
                          "FROM sync_state WHERE company_source_id = %s AND enabled", (realm,))
        return {r[0]: r[1:] for r in rows}

    def company(self, realm: str) -> tuple:
        return self.query("SELECT connection_state, connection_error FROM company WHERE source_id = %s",
                          (realm,))[0]

    # ---- processes ----------------------------------------------------------------------------
    def connect(self, sim_url: str, realms: list[str]) -> None:
        """Connect companies through the OAuth routes (the callback queues the backfill)."""
        connect.run(self.env, sim_url, realms)

    def start_worker(self, threads: int = 2, periodic: bool = False) -> Worker:
        worker = start_worker(self, threads=threads, periodic=periodic)
        self.workers.append(worker)
        return worker

    def kill(self, worker: Worker) -> None:
        """SIGKILL a worker: no cleanup, no goodbye, whatever it held stays held."""
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=10)
        worker._close_pipe()
        self.workers.remove(worker)

    def stop_all(self) -> None:
        for worker in list(self.workers):
            worker.stop(timeout=15)
        self.workers.clear()

    def close(self) -> None:
        self.stop_all()
        self.reaper.kill()
        self.reaper.wait(timeout=10)
        try:
            conn = psycopg2.connect(self.pg.url)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            conn.close()
        except psycopg2.Error:
            pass

    # ---- waiting ------------------------------------------------------------------------------
    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        tail = "".join(line for w in self.workers for line in w.output[-30:])
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\nworker output:\n{tail}")

    def backfill_done(self, realm: str) -> bool:
        states = self.sync_states(realm)
        return len(states) >= 2 and all(s[0] == "SUCCEEDED" and s[1] for s in states.values())

    def runs_settled(self, realm: str) -> bool:
        rows = self.query("SELECT status FROM sync_run WHERE company_source_id = %s", (realm,))
        return bool(rows) and all(r[0] in TERMINAL for r in rows)


def assert_equals_source(stack: Stack, sim, realm: str) -> None:
    """The database holds exactly the simulator's records (ids and versions), once each."""
    for entity, table in (("Customer", "customer"), ("Invoice", "invoice")):
        source = {str(r["Id"]): int(r["SyncToken"]) for r in sim.records(realm, entity)}
        stored = stack.stored(realm, table)
        assert stack.duplicates(realm, table) == 0, f"duplicate {table} rows"
        missing = source.keys() - stored.keys()
        extra = stored.keys() - source.keys()
        assert not missing and not extra, f"{table}: {len(missing)} missing, {len(extra)} unexpected"
        stale = [sid for sid, token in source.items() if stored[sid] != token]
        assert not stale, f"{table}: {len(stale)} rows at an old SyncToken, e.g. {stale[:3]}"


class QueryRecorder:
    """WSGI middleware around the simulator that remembers every data page it served.

    The simulator's own request log has paths only; a page is identified by its query
    text (its cursor or start position), so this records the statement of each
    ``SELECT *`` answered with 200.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.pages: list[str] = []

    def __call__(self, environ, start_response):
        from urllib.parse import parse_qs

        statement = ""
        if environ.get("PATH_INFO", "").endswith("/query"):
            statement = parse_qs(environ.get("QUERY_STRING", "")).get("query", [""])[0]
            if environ.get("REQUEST_METHOD") == "POST":
                # Intuit also takes the statement as the POST body; read it and hand it on.
                import io

                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(body)
                statement = body.decode("utf-8", "replace")
        status_box: list[str] = []

        def recording_start_response(status, headers, exc_info=None):
            status_box.append(status)
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start_response)
        if statement and "count(" not in statement.lower() and status_box and status_box[0].startswith("200"):
            self.pages.append(" ".join(statement.split()))
        return result

    def refetched(self) -> int:
        """Return how many page fetches repeated a page already served."""
        return len(self.pages) - len(set(self.pages))


def record_queries(server) -> QueryRecorder:
    """Wrap a running SandboxServer's app so every served page is recorded."""
    recorder = QueryRecorder(server.app.wsgi_app)
    server.app.wsgi_app = recorder
    return recorder
