"""Does alert delivery slow a sync? A backfill beside a webhook sink that never answers,
against the same backfill with no alert channel.

Each case runs in its own scratch stack with a real ``flask --app wsgi worker`` (4 threads,
scheduler on, so the alert pass runs at start-up). In the hanging case the database holds
10 companies that need reconnecting, so the pass opens 10 alerts (digest threshold lifted:
10 separate messages) whose webhook POSTs go to a local sink that holds every request
open; ALERT_DELIVERY_TIMEOUT is 60 s, longer than the sync. The figure is the median sync
time with the hung sink over the median without a channel (target about 1.0×).
"""
from __future__ import annotations

import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .harness import Result, ratio
from .infra import Simulator
from . import connect
from .pipeline import Stack, start_worker, stored_records, wait_for_runs

TARGET = ("alert_sink_hanging_vs_none", 1.1, "× sync time with no alert channel", True)
PROBLEM_COMPANIES = 10


class HangingSink:
    """A webhook that accepts every POST and never answers until released."""

    def __init__(self) -> None:
        sink = self
        self.release = threading.Event()
        self.arrivals: list[float] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                sink.arrivals.append(time.perf_counter())
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.release.wait(600)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/bench-secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _problems(stack: Stack) -> None:
    """Companies that need reconnecting: each one an alert the pass sends at start-up."""
    for i in range(PROBLEM_COMPANIES):
        stack.query("INSERT INTO company (source_id, integration, name, connection_state, token_version, "
                    "created_at, updated_at) VALUES (%s, 'qbo', %s, 'reconnect_required', 0, now(), now()) "
                    "RETURNING id", (f"88800000{i:02d}", f"Problem company {i}"))


def _one_sync(sim: Simulator, realm: str, expected: int, sink: HangingSink | None) -> dict[str, Any]:
    extra = {"ALERT_DIGEST_THRESHOLD": "100"}
    if sink is not None:
        extra.update({"ALERT_WEBHOOK_URL": sink.url, "ALERT_DELIVERY_TIMEOUT": "60"})
    with Stack(sim, "alerts-hung" if sink else "alerts-none", extra_env=extra) as stack:
        if sink is not None:
            _problems(stack)
            sink.release.clear()
            sink.arrivals.clear()
        connect.run(stack.env, sim.url, [realm])
        worker = start_worker(stack, threads=4, periodic=True)
        try:
            finished = wait_for_runs(stack, [realm], timeout=600)
            hung_during_sync = bool(sink and sink.arrivals and min(sink.arrivals) < finished)
            # One drain per channel: however many messages wait, one POST hangs at a time.
            posts_during_sync = sum(1 for t in sink.arrivals if t < finished) if sink else 0
            pending = int(stack.query("SELECT count(*) FROM alert_delivery WHERE status = 'pending'")[0][0])
        finally:
            if sink is not None:
                sink.release.set()  # let the worker stop without waiting out the timeout
            worker.stop()
        stored = stored_records(stack, [realm])
    if stored != expected:
        raise RuntimeError(f"the sync stored {stored} records, the simulator holds {expected}")
    return {"seconds": finished - worker.ready_at, "posts_during_sync": posts_during_sync,
            "hung_during_sync": hung_during_sync, "deliveries_pending_at_end": pending}


def run(sim: Simulator, customers: int = 2000, invoices: int = 4000, repeats: int = 3) -> Result:
    """Alternate the two cases ``repeats`` times; return the ratio of their medians."""
    realm = sim.generate(companies=1, customers=customers, invoices=invoices)[0]
    sink = HangingSink()
    quiet: list[dict[str, Any]] = []
    hung: list[dict[str, Any]] = []
    try:
        for _ in range(repeats):
            quiet.append(_one_sync(sim, realm, customers + invoices, None))
            hung.append(_one_sync(sim, realm, customers + invoices, sink))
    finally:
        sink.close()
    if not all(h["hung_during_sync"] for h in hung):
        raise RuntimeError(f"the alert pass did not reach the sink before a sync ended: {hung}")
    q, h = statistics.median(r["seconds"] for r in quiet), statistics.median(r["seconds"] for r in hung)
    detail = {"records": customers + invoices, "none_seconds": [r["seconds"] for r in quiet],
              "hanging_seconds": [r["seconds"] for r in hung], "hanging_runs": hung,
              "none_median": q, "hanging_median": h}
    return Result(TARGET[0], ratio(h, q), TARGET[1], TARGET[2], True, detail)
