"""SIGKILL the consumer at random moments of a backfill: nothing lost, nothing duplicated."""
from __future__ import annotations

import math
import random
import time

import pytest

from .harness import assert_equals_source

pytestmark = [pytest.mark.services, pytest.mark.slow]

KILLS = 5
PAGE_SIZE = 300
IN_FLIGHT = 4  # SYNC_PAGE_CONCURRENCY's default


def test_consumer_killed_five_times_mid_backfill_ends_equal_to_source(sandbox_server, make_stack):
    # Pages of 300 records (9,000 records: about 31 pages), each answered after 500 ms. Pages
    # fetched together land together and the kill comes within 0.3 s of a landing, before the
    # next wave can land: one worker's life commits at most one burst of IN_FLIGHT pages, and
    # 5 kills x 4 pages < 31 pages leaves work for every kill however the machine schedules us.
    server = sandbox_server(customers=3000, invoices=6000, latency=0.5, seed=8)
    realm = server.sim.realms()[0]
    stack = make_stack(server.url, SYNC_PAGE_SIZE=str(PAGE_SIZE))
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
        time.sleep(rng.uniform(0.0, 0.2))
        stack.kill(worker)
        kills += 1
        worker = stack.start_worker()

    stack.wait_until(lambda: stack.backfill_done(realm) and stack.runs_settled(realm), 180,
                     "the backfill to finish after the kills")
    assert_equals_source(stack, server.sim, realm)
    assert server.recorder.pages, "the simulator served no data page: the recorder saw nothing"
    # Each kill may lose the one page in flight (fetched, not yet committed); no more.
    # A kill loses at most the pages in flight (fetched, not yet committed): the resumed run
    # starts from the committed cursor, so no page is asked for twice in the same words...
    assert server.recorder.refetched() <= kills, server.recorder.pages
    # ...and the pages served stay within the uninterrupted count plus what was in flight.
    uninterrupted = sum(math.ceil(n / (PAGE_SIZE - 1)) + IN_FLIGHT for n in (3000, 6000))
    assert len(server.recorder.pages) <= uninterrupted + kills * IN_FLIGHT, server.recorder.pages
