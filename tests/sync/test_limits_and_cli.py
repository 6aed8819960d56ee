"""The rate limiters hold moving windows and the concurrency cap; `flask sync now` reports and fails loudly."""
from __future__ import annotations

import threading
import time

import pytest

from dashboard.qbo.ratelimit import Limits, LocalRateLimiter, RedisRateLimiter

from .conftest import connect, generate

LIMITS = Limits(per_minute=40, per_second=5, concurrent=3, minute_window=2.0, second_window=0.25)


def _hammer(limiter, calls: int = 30, threads: int = 8) -> tuple[list[float], int]:
    stamps: list[float] = []
    peak, active, guard = [0], [0], threading.Lock()

    def work():
        for _ in range(calls // threads + 1):
            with limiter.slot("realm-1"):
                with guard:
                    stamps.append(time.monotonic())
                    active[0] += 1
                    peak[0] = max(peak[0], active[0])
                time.sleep(0.01)
                with guard:
                    active[0] -= 1

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sorted(stamps), peak[0]


def _max_in_window(stamps: list[float], window: float) -> int:
    return max(sum(1 for s in stamps if start <= s < start + window) for start in stamps)


def _check(stamps, peak):
    assert peak <= 3
    # A small tolerance for the time between admission and our stamp.
    assert _max_in_window(stamps, LIMITS.second_window - 0.02) <= 5
    assert _max_in_window(stamps, LIMITS.minute_window - 0.05) <= 40


def test_local_limiter_holds_moving_windows():
    _check(*_hammer(LocalRateLimiter(LIMITS)))


@pytest.mark.services
def test_redis_limiter_holds_moving_windows_across_clients():
    import redis

    from tests.conftest import RUN_ID, TEST_REDIS_URL

    client = redis.Redis.from_url(TEST_REDIS_URL)
    prefix = f"qbosync-test-{RUN_ID}:limits:"
    # Two limiter objects (as two processes would have) share the realm's windows.
    a, b = RedisRateLimiter(client, prefix, LIMITS), RedisRateLimiter(client, prefix, LIMITS)
    results: list = []
    threads = [threading.Thread(target=lambda lim=lim: results.append(_hammer(lim, calls=20, threads=4)))
               for lim in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps = sorted(results[0][0] + results[1][0])
    _check(stamps, 3)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


@pytest.fixture
def redis_prefix():
    import redis

    from tests.conftest import RUN_ID, TEST_REDIS_URL

    client = redis.Redis.from_url(TEST_REDIS_URL)
    prefix = f"qbosync-test-{RUN_ID}:slots:"
    yield client, prefix
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


@pytest.mark.services
def test_redis_slot_outlives_its_ttl_while_its_request_runs(redis_prefix):
    client, prefix = redis_prefix
    limiter = RedisRateLimiter(client, prefix, Limits(concurrent=1, slot_ttl=0.6), max_wait=5)
    released, second_admitted = [], []

    def hold():
        with limiter.slot("realm-1"):
            time.sleep(2.0)  # a slow request: three times the slot's TTL
            released.append(time.monotonic())

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    with limiter.slot("realm-1"):
        second_admitted.append(time.monotonic())
    holder.join()
    # Renewed while held, the only slot was not handed to a second request before the first ended.
    assert second_admitted[0] >= released[0]


@pytest.mark.services
def test_redis_slot_of_a_killed_holder_frees_after_its_ttl(redis_prefix):
    client, prefix = redis_prefix
    limits = Limits(concurrent=1, slot_ttl=0.6)
    limiter = RedisRateLimiter(client, prefix, limits, max_wait=5)
    # A holder that died mid-request: its slot was taken and is never renewed nor released.
    granted, _ = limiter._acquire(keys=[f"{prefix}realm-1:window", f"{prefix}realm-1:slots"],
                                  args=["dead-holder", 500, 61000, 10, 1100, 1, 600])
    assert granted == 1
    started = time.monotonic()
    with limiter.slot("realm-1"):
        waited = time.monotonic() - started
    assert 0.3 <= waited <= 2.0, waited


def test_sync_now_command(qbo_app, sandbox_server, runner):
    sim = sandbox_server.sim
    realm = generate(sim, seed=41, customers=25, invoices=40)
    connect(sim, realm)
    result = runner.invoke(args=["sync", "now", "--company", realm])
    assert result.exit_code == 0, result.output
    assert f"{realm} customer: 25 / 25 records" in result.output and "backfill" in result.output
    sim.inject_fault("500", realm=realm, probability=1.0)
    failed = runner.invoke(args=["sync", "now", "--company", realm, "--object", "invoice"])
    assert failed.exit_code != 0 and "FAILED" in failed.output and "HTTP 500" in failed.output
    sim.clear_faults()
    full = runner.invoke(args=["sync", "now", "--company", realm, "--full"])
    assert full.exit_code == 0 and "full resync" in full.output, full.output
