"""Redis and PostgreSQL going away mid-sync: the work recovers and nothing is half-written."""
from __future__ import annotations

import pytest

from .harness import assert_equals_source

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _start_backfill(sandbox_server, make_stack, **data):
    server = sandbox_server(latency=0.15, **data)
    realm = server.sim.realms()[0]
    stack = make_stack(server.url)
    stack.connect(server.url, [realm])
    stack.start_worker()
    stack.wait_until(lambda: stack.records(realm) > 0, 90, "the first page to be committed")
    return server, realm, stack


def test_redis_restart_mid_sync_recovers(sandbox_server, make_stack, private_redis):
    server, realm, stack = _start_backfill(sandbox_server, make_stack, customers=3000, invoices=4000)
    assert not stack.backfill_done(realm)
    # Redis keeps nothing on disk here: the queue, locks and limiter windows are all lost.
    private_redis.restart()
    stack.wait_until(lambda: stack.backfill_done(realm) and stack.runs_settled(realm), 180,
                     "the backfill to recover after the Redis restart")
    assert_equals_source(stack, server.sim, realm)


def test_postgres_immediate_restart_mid_page_retries_the_page(sandbox_server, make_stack, private_pg):
    server, realm, stack = _start_backfill(sandbox_server, make_stack, customers=3000, invoices=4000)
    assert not stack.backfill_done(realm)
    # -m immediate: no checkpoint, open transactions die with their connections (a crash).
    private_pg.restart("immediate")
    stack.wait_until(lambda: stack.backfill_done(realm) and stack.runs_settled(realm), 180,
                     "the backfill to finish after the PostgreSQL restart")
    assert_equals_source(stack, server.sim, realm)
    # The page in flight died with its transaction and its cursor; it alone was fetched again.
    assert server.recorder.pages
    assert server.recorder.refetched() <= 1, server.recorder.pages


def test_dropped_connections_mid_sync_retry_and_keep_every_page_whole(sandbox_server, make_stack, private_pg):
    server, realm, stack = _start_backfill(sandbox_server, make_stack, customers=3000, invoices=4000)
    for _ in range(3):
        seen = stack.records(realm)
        private_pg.terminate_connections(stack.db_name)
        stack.wait_until(lambda: stack.records(realm) > seen or stack.backfill_done(realm), 90,
                         "progress after the connections were dropped")
    stack.wait_until(lambda: stack.backfill_done(realm) and stack.runs_settled(realm), 180,
                     "the backfill to finish after dropped connections")
    assert_equals_source(stack, server.sim, realm)
    assert server.recorder.refetched() <= 3, server.recorder.pages
