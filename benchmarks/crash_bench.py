"""Crash recovery: a worker SIGKILLed mid-backfill, a new one started at once; how soon the backfill resumes.

The README promises that a dead worker's run resumes within its lease plus 5 s (every
worker reaps as it starts and then every half lease, at least every 5 s). This kills the
worker at a random moment after a page landed, starts another at once, and times the gap
from the kill to the next committed record, as an operator would see it. The figure is
the slowest resume over the kills divided by (lease + 5 s); the backfill must still end
equal to the source, and the pages served beyond an uninterrupted backfill are reported.
"""
from __future__ import annotations

import math
import random
import time

from .harness import Result, ratio
from .infra import Simulator
from .pipeline import Stack, start_worker, stored_records, wait_for_runs
from . import connect

RESUME = ("crash_resume_vs_lease_plus_5s", 1.0, "× (lease + 5 s), slowest resume after a SIGKILL", True)
LEASE_SECONDS = 8
PAGE_SIZE = 300
CUSTOMERS, INVOICES = 3000, 6000


def _records(stack: Stack, realm: str) -> int:
    return stored_records(stack, [realm])


def _wait(condition, timeout: float, what: str, poll: float = 0.05) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(poll)
    return time.monotonic()


def run(sim: Simulator, kills: int = 3, seed: int = 8) -> Result:
    realm = sim.generate(companies=1, customers=CUSTOMERS, invoices=INVOICES, seed=seed)[0]
    sim.configure(latency=0.5)
    rng = random.Random(seed)
    resumes: list[float] = []
    try:
        with Stack(sim, "crash", extra_env={"SYNC_LEASE_SECONDS": str(LEASE_SECONDS),
                                            "SYNC_PAGE_SIZE": str(PAGE_SIZE)}) as stack:
            sim.reset_stats(realm)
            connect.run(stack.env, sim.url, [realm])
            worker = start_worker(stack, threads=4)
            try:
                for _ in range(kills):
                    seen = _records(stack, realm)
                    _wait(lambda: _records(stack, realm) > seen, 120, "a page to land")
                    time.sleep(rng.uniform(0.0, 0.2))
                    at_kill = _records(stack, realm)
                    if at_kill >= CUSTOMERS + INVOICES:
                        raise RuntimeError("the backfill ended before the kills: make it longer")
                    worker.process.kill()
                    killed = time.monotonic()
                    worker.stop(5)
                    worker = start_worker(stack, threads=4)
                    resumed = _wait(lambda: _records(stack, realm) > at_kill, 120, "the backfill to resume")
                    resumes.append(resumed - killed)
                wait_for_runs(stack, [realm], 300)
            finally:
                worker.stop()
            stored = _records(stack, realm)
    finally:
        sim.configure(latency=0.0)
    if stored != CUSTOMERS + INVOICES:
        raise RuntimeError(f"stored {stored} records after the kills, the simulator holds {CUSTOMERS + INVOICES}")
    pages = sum(1 for e in sim.request_log(realm) if e["kind"] == "query")
    uninterrupted = sum(math.ceil(n / (PAGE_SIZE - 1)) for n in (CUSTOMERS, INVOICES))
    bound = LEASE_SECONDS + 5
    detail = {"kills": kills, "lease_seconds": LEASE_SECONDS, "resume_seconds": [round(r, 2) for r in resumes],
              "pages_served": pages, "pages_uninterrupted": uninterrupted,
              "pages_fetched_again": pages - uninterrupted, "records": stored,
              "note": "resume = SIGKILL to the next committed record, a new worker started at once"}
    return Result(RESUME[0], ratio(max(resumes), bound), RESUME[1], RESUME[2], RESUME[3], detail)
