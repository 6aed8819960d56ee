"""The rate limiters hold moving windows and the concurrency cap; `flask sync now` reports and fails loudly."""
from __future__ import annotations

import contextlib
import threading
import time

import pytest

from dashboard.qbo.ratelimit import LimitWaitTimeout, Limits, LocalRateLimiter, RedisRateLimiter

from .conftest import connect, generate

LIMITS = Limits(per_minute=40, per_second=5, concurrent=3, minute_window=2.0, second_window=0.25)
REQUEST_SECONDS = 0.05  # how long a hammered request holds its slot: long enough for requests to overlap


class _Gauge:
    """Count the requests inside a slot at once, across every client that shares it."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.active = self.peak = 0
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def request(self):
        with self._guard:
            self.stamps.append(time.monotonic())
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield
        finally:
            with self._guard:
                self.active -= 1


def _hammer(limiters: list, calls: int = 30, threads: int = 8) -> _Gauge:
    """Send ``calls`` requests through each limiter from ``threads`` threads each, all at once."""
    gauge = _Gauge()
    start = threading.Barrier(len(limiters) * threads)
    failures: list[BaseException] = []

    def work(limiter):
        try:
            start.wait(30)
            for _ in range(calls // threads + 1):
                with limiter.slot("realm-1"), gauge.request():
                    time.sleep(REQUEST_SECONDS)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(lim,)) for lim in limiters for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures, failures
    return gauge


def _max_in_window(stamps: list[float], window: float) -> int:
    return max(sum(1 for s in stamps if start <= s < start + window) for start in stamps)


def _check(gauge: _Gauge) -> None:
    stamps = sorted(gauge.stamps)
    assert gauge.peak <= LIMITS.concurrent, f"{gauge.peak} requests at once"
    # A small tolerance for the time between admission and our stamp.
    assert _max_in_window(stamps, LIMITS.second_window - 0.02) <= LIMITS.per_second
    assert _max_in_window(stamps, LIMITS.minute_window - 0.05) <= LIMITS.per_minute


def test_local_limiter_holds_moving_windows():
    _check(_hammer([LocalRateLimiter(LIMITS)]))


class _ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _admitted(limiter, attempts: int) -> int:
    """Try ``attempts`` requests one after another; count those the limiter let through."""
    admitted = 0
    for _ in range(attempts):
        with contextlib.suppress(LimitWaitTimeout):
            with limiter.slot("realm-1"):
                admitted += 1
    return admitted


def test_local_limiter_windows_move_with_its_clock():
    # max_wait=0: a request that would have to wait is refused at once, so nothing sleeps.
    clock = _ManualClock()
    limits = Limits(per_minute=12, per_second=5, concurrent=3, minute_window=2.0, second_window=0.25)
    limiter = LocalRateLimiter(limits, max_wait=0, clock=clock)
    assert _admitted(limiter, 8) == 5              # the second window is full
    clock.advance(0.125)
    assert _admitted(limiter, 3) == 0              # ...until it has moved past the first five
    clock.advance(0.125)
    assert _admitted(limiter, 8) == 5
    clock.advance(0.25)
    assert _admitted(limiter, 8) == 2              # 12 in the minute window
    clock.advance(0.25)
    assert _admitted(limiter, 8) == 0
    clock.advance(2.0 - 0.75)                      # the first five leave the minute window
    assert _admitted(limiter, 8) == 5
    clock.advance(2.0)
    with contextlib.ExitStack() as held:
        for _ in range(3):
            held.enter_context(limiter.slot("realm-1"))
        assert _admitted(limiter, 2) == 0          # three requests at once, the cap
    assert _admitted(limiter, 1) == 1


def _weighted_admissions(limiter) -> list[bool]:
    """A request, then a batch of 4 items, then a batch of 5, all in one second of 5."""
    outcomes = []
    for weight in (1, 4, 5):
        try:
            with limiter.slot("realm-1", weight):
                outcomes.append(True)
        except LimitWaitTimeout:
            outcomes.append(False)
    return outcomes


def test_a_batch_is_stamped_with_all_its_items_at_once():
    clock = _ManualClock()
    limits = Limits(per_minute=12, per_second=5, concurrent=3, minute_window=2.0, second_window=0.25)
    limiter = LocalRateLimiter(limits, max_wait=0, clock=clock)
    # 1 + 4 fill the second; the batch of 5 must wait for the whole window, not slot by slot.
    assert _weighted_admissions(limiter) == [True, True, False]
    clock.advance(0.25)
    with limiter.slot("realm-1", 5):
        assert _admitted(limiter, 1) == 0           # ...and once admitted, its 5 items fill it
    clock.advance(2.0)
    with limiter.slot("realm-1", 50):               # more than a window holds: admitted as a full one
        assert _admitted(limiter, 1) == 0
    clock.advance(0.25)
    assert _admitted(limiter, 5) == 5


@pytest.mark.services
def test_a_batch_is_stamped_with_all_its_items_at_once_on_redis(redis_prefix):
    client, prefix = redis_prefix
    limiter = RedisRateLimiter(client, prefix, Limits(per_minute=100, per_second=5, concurrent=3,
                                                      second_window=30.0), max_wait=0)
    assert _weighted_admissions(limiter) == [True, True, False]
    assert _admitted(limiter, 1) == 0


@pytest.mark.services
def test_redis_limiter_holds_moving_windows_across_clients():
    import redis

    from tests.conftest import RUN_ID, TEST_REDIS_URL

    client = redis.Redis.from_url(TEST_REDIS_URL)
    prefix = f"qbosync-test-{RUN_ID}:limits:"
    # Two limiter objects (as two processes would have) share the realm's windows and its cap:
    # the gauge counts the requests of both at once.
    a, b = RedisRateLimiter(client, prefix, LIMITS), RedisRateLimiter(client, prefix, LIMITS)
    _check(_hammer([a, b], calls=20, threads=4))
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


def _redis_ms(client) -> int:
    """Redis' clock in milliseconds: the scale of the slots' expiry scores."""
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


@pytest.mark.services
def test_redis_slot_outlives_its_ttl_while_its_request_runs(redis_prefix):
    client, prefix = redis_prefix
    limits = Limits(concurrent=1, slot_ttl=0.6)
    slots_key = f"{prefix}realm-1:slots"
    holder, other = (RedisRateLimiter(client, prefix, limits, max_wait=10) for _ in range(2))
    first_expiry: list[float] = []
    held, refused_after_ttl, decided = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []
    acquire = other._acquire

    def watched_acquire(keys, args):
        granted, wait_ms = acquire(keys=keys, args=args)
        if not granted and first_expiry and _redis_ms(client) > first_expiry[0]:
            refused_after_ttl.set()
        if granted or refused_after_ttl.is_set():
            decided.set()
        return granted, wait_ms

    other._acquire = watched_acquire

    def hold():
        with holder.slot("realm-1"):
            ((_, expiry),) = client.zrange(slots_key, 0, -1, withscores=True)
            first_expiry.append(expiry)
            held.set()
            # A slow request: it ends only once the other client was refused after the
            # slot's first TTL ran out on Redis' clock (or, if the cap failed, admitted).
            decided.wait(10)
            order.append("released")

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    with other.slot("realm-1"):
        order.append("admitted")
    thread.join()
    # Renewed while held, the only slot was not handed to a second request before the first ended.
    assert refused_after_ttl.is_set()
    assert order == ["released", "admitted"]


@pytest.mark.services
def test_redis_slot_of_a_killed_holder_frees_after_its_ttl(redis_prefix):
    client, prefix = redis_prefix
    limits = Limits(concurrent=1, slot_ttl=0.6)
    # max_wait: the slot must free within about three TTLs, or LimitWaitTimeout fails the test.
    limiter = RedisRateLimiter(client, prefix, limits, max_wait=2)
    keys = [f"{prefix}realm-1:window", f"{prefix}realm-1:slots"]
    # A holder that died mid-request: its slot was taken and is never renewed nor released.
    granted, _ = limiter._acquire(keys=keys, args=["dead-holder", 500, 61000, 10, 1100, 1, 600, 1])
    assert granted == 1
    dead_expiry = client.zscore(keys[1], "dead-holder")
    refused, _ = limiter._acquire(keys=keys, args=["early", 500, 61000, 10, 1100, 1, 600, 1])
    assert refused == 0  # held until its TTL runs out
    with limiter.slot("realm-1"):
        ((token, expiry),) = client.zrange(keys[1], 0, -1, withscores=True)
    # Admitted (expiry = admission + TTL on Redis' clock) no earlier than the dead slot's expiry.
    assert token != b"dead-holder" and expiry - 600 >= dead_expiry


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
