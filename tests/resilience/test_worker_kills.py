"""SIGKILL the consumer at random moments of a backfill: nothing lost, nothing duplicated."""
from __future__ import annotations

import random
import time

import pytest

from .harness import assert_equals_source

pytestmark = [pytest.mark.services, pytest.mark.slow]

KILLS = 5


def test_consumer_killed_five_times_mid_backfill_ends_equal_to_source(sandbox_server, make_stack):
    # 3 + 6 pages of 1,000, each answered after 200 ms: long enough to kill five times mid-way.
    server = sandbox_server(customers=3000, invoices=6000, latency=0.2, seed=8)
    realm = server.sim.realms()[0]
    stack = make_stack(server.url)
    stack.connect(server.url, [realm])
    rng = random.Random(8)

    worker = stack.start_worker()
    kills = 0
    seen = 0
    while kills < KILLS:
        # Kill only after a new page landed, at a random moment of the next one, so every
        # kill interrupts real work rather than a worker still waiting for its lease.
        stack.wait_until(lambda: stack.records(realm) > seen or stack.backfill_done(realm), 90,
                         "progress between kills")
        assert not stack.backfill_done(realm), f"backfill finished after only {kills} kills; make it longer"
        seen = stack.records(realm)
        time.sleep(rng.uniform(0.0, 0.35))
        stack.kill(worker)
        kills += 1
        worker = stack.start_worker()

    stack.wait_until(lambda: stack.backfill_done(realm) and stack.runs_settled(realm), 180,
                     "the backfill to finish after the kills")
    assert_equals_source(stack, server.sim, realm)
    assert server.recorder.pages, "the simulator served no data page: the recorder saw nothing"
    # Each kill may lose the one page in flight (fetched, not yet committed); no more.
    assert server.recorder.refetched() <= kills, server.recorder.pages
