"""Intuit misbehaving: throttle and 5xx storms, malformed pages, a refresh token revoked mid-way."""
from __future__ import annotations

import pytest

from .harness import assert_equals_source

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_storm_of_429_and_5xx_completes_within_the_limits(sandbox_server, make_stack):
    server = sandbox_server(customers=2000, invoices=4000, latency=0.02)
    realm = server.sim.realms()[0]
    server.sim.inject_fault("429", realm=realm, probability=0.3)
    server.sim.inject_fault("500", realm=realm, probability=0.1 / 0.7)  # 10 % of all answers
    # Pages of 200 records: about 30 data requests, so the storm hits many of them.
    stack = make_stack(server.url, SYNC_RETRIES="8", SYNC_PAGE_SIZE="200")
    stack.connect(server.url, [realm])
    stack.start_worker(threads=4)
    stack.wait_until(lambda: stack.backfill_done(realm) and stack.runs_settled(realm), 240,
                     "the backfill to complete through the storm")
    assert_equals_source(stack, server.sim, realm)
    stats = server.sim.stats(realm)
    assert stats["requests"] >= 30, stats
    assert stats["by_outcome"].get("fault:429", 0) > 0 and stats["by_outcome"].get("fault:500", 0) > 0, stats
    # Attempts, throttled ones included, stayed inside Intuit's per-realm limits.
    assert stats["max_in_any_1s_window"] <= 10, stats
    assert stats["max_in_any_60s_window"] <= 500, stats
    assert stats["peak_concurrency"] <= 10, stats
    assert stats["throttled"] == 0, "the simulator's own limiter had to refuse requests"


def test_malformed_pages_fail_visibly_and_keep_earlier_pages(sandbox_server, make_stack):
    server = sandbox_server(customers=3000, invoices=3000, latency=0.1)
    realm = server.sim.realms()[0]
    stack = make_stack(server.url, SYNC_RETRIES="2", SYNC_RETRY_DELAY="0.2")
    stack.connect(server.url, [realm])
    stack.start_worker()
    stack.wait_until(lambda: stack.records(realm) >= 1000, 90, "the first page to be committed")
    kept_before = stack.records(realm)
    # From now on every answer is cut in half: invalid JSON, however often it is retried.
    server.sim.inject_fault("truncated", realm=realm, probability=1.0)
    stack.wait_until(lambda: any(s[0] == "FAILED" for s in stack.sync_states(realm).values())
                     and stack.runs_settled(realm), 120, "the sync to be marked FAILED")
    failed = {k: v for k, v in stack.sync_states(realm).items() if v[0] == "FAILED"}
    for object_type, (_status, _done, message) in failed.items():
        assert message and len(message) > 10, f"{object_type} FAILED without a clear message: {message!r}"
    assert not any(s[0] == "IN_PROGRESS" for s in stack.sync_states(realm).values())
    assert stack.records(realm) >= kept_before, "pages committed before the fault were lost"
    assert stack.duplicates(realm, "customer") == 0

    # Once Intuit behaves again, a retry resumes from the kept pages and completes.
    server.sim.clear_faults()
    stack.connect(server.url, [realm])
    stack.wait_until(lambda: stack.backfill_done(realm) and stack.runs_settled(realm), 120,
                     "the retried sync to complete")
    assert_equals_source(stack, server.sim, realm)


def test_refresh_token_revoked_mid_backfill_asks_for_reconnect_then_resumes(sandbox_server, make_stack):
    server = sandbox_server(customers=3000, invoices=4000, latency=0.15)
    realm = server.sim.realms()[0]
    stack = make_stack(server.url)
    stack.connect(server.url, [realm])
    stack.start_worker()
    stack.wait_until(lambda: stack.records(realm) > 0, 90, "the first page to be committed")
    # The user revoked the app in QuickBooks: access token dead, refresh gives invalid_grant.
    server.sim.revoke_grant(realm)
    stack.wait_until(lambda: stack.company(realm)[0] == "reconnect_required" and stack.runs_settled(realm), 90,
                     "the company to be marked reconnect required")
    kept = stack.records(realm)
    assert kept > 0
    assert not stack.backfill_done(realm)

    stack.connect(server.url, [realm])  # the operator reconnects through OAuth
    stack.wait_until(lambda: stack.backfill_done(realm) and stack.runs_settled(realm), 120,
                     "the backfill to resume after reconnecting")
    assert stack.company(realm)[0] == "connected"
    assert_equals_source(stack, server.sim, realm)
