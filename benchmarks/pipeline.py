"""Drive the real pipeline: companies connected through OAuth, backfilled by real workers.

A ``Stack`` is one scratch PostgreSQL database and one Huey namespace in Redis, with the
environment every app and worker process of a benchmark shares. ``backfill`` connects
realms (the callback queues their initial backfill), starts ``flask --app wsgi worker``
processes, and waits until the database says every run finished; the worker's peak RSS
comes from ``wait4`` on its own process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import connect
from .infra import PYTHON, REDIS_URL, ROOT, ScratchDatabase, Simulator, app_env, flush_redis_namespace, pg_connect

TERMINAL = ("succeeded", "failed", "cancelled")


class Stack:
    """A scratch database + Redis namespace, and the environment of processes using them."""

    def __init__(self, sim: Simulator, label: str, *, redis_url: str | None = REDIS_URL,
                 extra_env: dict[str, str] | None = None) -> None:
        self.db = ScratchDatabase(label=label)
        self.namespace = f"qbosync-bench-{label}-{os.getpid()}"
        self.redis_url = redis_url
        self.instance = Path(tempfile.mkdtemp(prefix=f"qbosync-bench-{label}-"))
        self.env = app_env(self.db.url, sim.url, redis_url=redis_url, namespace=self.namespace,
                           instance=self.instance, extra=extra_env)

    def __enter__(self) -> "Stack":
        self.db.create(self.env)
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.drop()
        if self.redis_url:
            flush_redis_namespace(self.redis_url, self.namespace)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = pg_connect(self.db.url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()


@dataclass
class Worker:
    """One ``flask --app wsgi worker`` process; ``ready_at`` is when its consumer started."""

    process: subprocess.Popen
    ready_at: float = 0.0
    output: list[str] = field(default_factory=list)
    rusage: Any = None
    reader: threading.Thread | None = None

    def _close_pipe(self) -> None:
        # The reader thread ends at EOF once the process is gone; then the pipe can close.
        if self.reader is not None:
            self.reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stop(self, timeout: float = 30) -> None:
        """Stop gracefully (SIGINT lets the consumer finish its tasks), then reap it for its rusage."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, _status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.rusage = usage
                self.process.returncode = 0
                self._close_pipe()
                return
            time.sleep(0.1)
        self.process.kill()
        _pid, _status, self.rusage = os.wait4(self.process.pid, 0)
        self.process.returncode = -9
        self._close_pipe()

    @property
    def peak_rss_mb(self) -> float:
        return self.rusage.ru_maxrss / 1024 if self.rusage else float("nan")


def start_worker(stack: Stack, threads: int = 4, periodic: bool = False, timeout: float = 60) -> Worker:
    """Start a consumer and return once it prints that it started."""
    args = [PYTHON, "-m", "flask", "--app", "wsgi", "worker", "-w", str(threads)]
    if not periodic:
        args.append("--no-periodic")
    proc = subprocess.Popen(args, cwd=ROOT, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    worker = Worker(proc)
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            worker.output.append(line)
            del worker.output[:-200]  # keep the tail only: a long run logs a lot
            if "Worker started" in line and not ready.is_set():
                worker.ready_at = time.perf_counter()
                ready.set()

    worker.reader = threading.Thread(target=pump, daemon=True)
    worker.reader.start()
    if not ready.wait(timeout):
        worker.stop(5)
        raise RuntimeError("worker did not start:\n" + "".join(worker.output[-40:]))
    return worker


@dataclass
class BackfillRun:
    records: int
    seconds: float
    run_span_seconds: float | None
    peak_rss_mb: float
    connect_seconds: float
    sim_stats: dict[str, Any]

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def wait_for_runs(stack: Stack, realms: list[str], timeout: float, after_id: int = 0) -> float:
    """Poll until every realm's runs (with id > after_id) are terminal; return when that was seen."""
    deadline = time.monotonic() + timeout
    while True:
        rows = stack.query("SELECT company_source_id, status, error_message FROM sync_run "
                           "WHERE id > %s AND company_source_id = ANY(%s)", (after_id, realms))
        pending = [r for r in rows if r[1] not in TERMINAL]
        if rows and not pending and {r[0] for r in rows} >= set(realms):
            failures = [r for r in rows if r[1] != "succeeded"]
            if failures:
                raise RuntimeError(f"{len(failures)} run(s) did not succeed, e.g. {failures[0]}")
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs still active after {timeout}s: {len(pending)} of {len(rows)}")
        time.sleep(0.1)


def run_span(stack: Stack, realms: list[str], after_id: int = 0) -> float | None:
    """Return the seconds from the first run's start to the last run's end, as the runs recorded them."""
    rows = stack.query("SELECT EXTRACT(EPOCH FROM max(finished_at) - min(started_at)) FROM sync_run "
                       "WHERE id > %s AND company_source_id = ANY(%s)", (after_id, realms))
    return float(rows[0][0]) if rows and rows[0][0] is not None else None


def stored_records(stack: Stack, realms: list[str]) -> int:
    rows = stack.query("SELECT (SELECT count(*) FROM customer WHERE company_source_id = ANY(%s)) + "
                       "(SELECT count(*) FROM invoice WHERE company_source_id = ANY(%s))", (realms, realms))
    return int(rows[0][0])


def backfill(stack: Stack, sim: Simulator, realms: list[str], expected_records: int, *, workers: int = 1,
             threads: int = 4, timeout: float = 900) -> BackfillRun:
    """Connect the realms, let real workers backfill them, and time it from consumer start."""
    for realm in realms:
        sim.reset_stats(realm)
    connected = connect.run(stack.env, sim.url, realms)
    procs = [start_worker(stack, threads=threads) for _ in range(workers)]
    started = max(w.ready_at for w in procs)
    try:
        finished = wait_for_runs(stack, realms, timeout)
    finally:
        for w in procs:
            w.stop()
    records = stored_records(stack, realms)
    if records != expected_records:
        raise RuntimeError(f"the pipeline stored {records} records, the simulator holds {expected_records}")
    stats = {realm: sim.stats(realm) for realm in realms[:50]}
    return BackfillRun(records=records, seconds=finished - started, run_span_seconds=run_span(stack, realms),
                       peak_rss_mb=max(w.peak_rss_mb for w in procs), connect_seconds=connected["seconds"],
                       sim_stats=stats)
