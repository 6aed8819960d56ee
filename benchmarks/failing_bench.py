"""A persistently failing endpoint: how many requests, and how long, until the type shows Failed.

One small company is connected through the OAuth routes and backfilled by a real worker.
Then the simulator answers HTTP 500 to every API request of that realm, for good, and an
operator clicks Resync (a child process signs in and posts the dashboard's own form). The
worker retries as configured (the HTTP layer once in place, the job three more times with
Huey's 1 s, 2 s, 4 s waits); the parent polls ``sync_state`` until the type shows FAILED.

The simulator's request log gives the requests from the first failure to FAILED, and the
time of the last one, which is compared with the moment the database showed FAILED
(both on this machine's clock; the simulator's clock runs at offset 0 here).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from . import connect
from .harness import Result
from .infra import PYTHON, ROOT, Simulator
from .pipeline import Stack, start_worker, wait_for_runs

REQUESTS = ("failing_requests_to_failed", 8, "requests from the first failure to Failed (endpoint failing for good)",
            True)
SECONDS = ("failing_seconds_after_last_retry", 15, "s from the last retry's request to Failed shown", True)
TARGETS = [REQUESTS, SECONDS]
FAILING_TYPE = "invoice"


def resync(env: dict[str, str], realm: str) -> None:
    """Click Resync on the company's page as a signed-in operator (in a child process)."""
    proc = subprocess.run([PYTHON, "-m", "benchmarks.failing_bench", realm], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"the operator's resync failed ({proc.returncode}): {proc.stderr[-3000:]}")


def _failed_at(stack: Stack, realm: str, timeout: float) -> float:
    """Poll until the type shows FAILED; return the epoch time it was first seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = stack.query("SELECT status FROM sync_state WHERE company_source_id = %s AND object_type = %s",
                           (realm, FAILING_TYPE))
        if rows and rows[0][0] == "FAILED":
            return time.time()
        time.sleep(0.05)
    raise TimeoutError(f"{FAILING_TYPE} did not show FAILED within {timeout}s")


def run(sim: Simulator) -> list[Result]:
    realm = sim.generate(companies=1, customers=20, invoices=40, tie_size=1)[0]
    with Stack(sim, "failing") as stack:
        connect.run(stack.env, sim.url, [realm])
        worker = start_worker(stack, threads=2)
        try:
            wait_for_runs(stack, [realm], timeout=300)
            sim.reset_stats(realm)
            sim.admin("POST", "/faults", {"kind": "500", "realm": realm, "probability": 1.0})
            try:
                clicked = time.time()
                resync(stack.env, realm)
                failed_at = _failed_at(stack, realm, timeout=120)
            finally:
                sim.admin("DELETE", "/faults")
            log = sim.request_log(realm)
            state = stack.query("SELECT error_message, attempts FROM sync_state "
                                "WHERE company_source_id = %s AND object_type = %s", (realm, FAILING_TYPE))[0]
            runs = stack.query("SELECT status, attempts, requests FROM sync_run WHERE company_source_id = %s "
                               "ORDER BY id DESC LIMIT 1", (realm,))[0]
        finally:
            worker.stop()
    failures = [e for e in log if e.get("status") is not None and int(e["status"]) >= 500]
    if not failures:
        raise RuntimeError("the simulator saw no failing request")
    first = log.index(failures[0])
    counted = [e for e in log[first:] if float(e["sim_time"]) <= failed_at]
    last = max(float(e["sim_time"]) for e in counted)
    detail: dict[str, Any] = {
        "fault": "HTTP 500 to every API request of the realm, for good (the simulator fails a realm, not one "
                 "entity: the Resync's first request, the CDC call covering customers and invoices, is the "
                 "failing endpoint)",
        "retry_settings": "defaults: QBO_HTTP_RETRIES=1 (0.5 s), SYNC_RETRIES=3 (1 s, 2 s, 4 s); no shortening",
        "requests": len(counted), "failing_requests": len(failures),
        "request_kinds": [e["kind"] for e in counted],
        "offsets_s": [round(float(e["sim_time"]) - float(counted[0]["sim_time"]), 2) for e in counted],
        "click_to_failed_s": failed_at - clicked,
        "first_failure_to_failed_s": failed_at - float(counted[0]["sim_time"]),
        "state_error": state[0], "state_attempts": state[1],
        "run": {"status": runs[0], "attempts": runs[1], "requests": runs[2]}}
    return [Result(REQUESTS[0], len(counted), REQUESTS[1], REQUESTS[2], True, detail),
            Result(SECONDS[0], failed_at - last, SECONDS[1], SECONDS[2], True, detail)]


def main(realm: str) -> None:
    """Sign in as an operator and post the Resync form of ``realm``'s page."""
    from dashboard import create_app
    from dashboard.services.operators import OperatorError, create_operator

    app = create_app(environ=dict(os.environ))
    username = "bench-operator-failing"
    with app.app_context():
        try:
            create_operator(username, connect.PASSWORD)
        except OperatorError:
            pass
    client = app.test_client()
    base, referer = connect.BASE_URL, {"Referer": f"{connect.BASE_URL}/sign-in"}
    page = client.get("/sign-in", base_url=base).get_data(as_text=True)
    signed = client.post("/sign-in", data={"username": username, "password": connect.PASSWORD,
                                           "csrf_token": connect._csrf(page)}, base_url=base, headers=referer)
    if signed.status_code != 302:
        raise RuntimeError(f"sign-in answered {signed.status_code}")
    page = client.get(f"/companies/{realm}", base_url=base)
    if page.status_code != 200:
        raise RuntimeError(f"the company page answered {page.status_code}")
    done = client.post(f"/companies/{realm}/resync", data={"csrf_token": connect._csrf(page.get_data(as_text=True))},
                       base_url=base, headers={"Referer": f"{base}/companies/{realm}"})
    if done.status_code >= 400:
        raise RuntimeError(f"resync answered {done.status_code}: {done.get_data(as_text=True)[:300]}")
    print(json.dumps({"status": done.status_code}))


if __name__ == "__main__":
    main(sys.argv[1])
