"""The service's counters and histograms, and the calls that record into them.

Built once per process by ``build`` (after multi-process mode is on); before that, or in
a process that never built them, every record call does nothing. No series carries a
realm label unless METRICS_PER_COMPANY=1: with thousands of companies that label would
multiply the series (and the scrape) by as many.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, ParamSpec

from prometheus_client import Counter, Gauge, Histogram

from ...qbo.client import RequestEvent
from ...qbo.ratelimit import RateLimiter

log = logging.getLogger(__name__)
P = ParamSpec("P")

PREFIX = "qbosync"
# A run lasts from a second (an idle incremental) to hours (a large backfill).
RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
# Most slots are free at once; a realm at its 500-a-minute limit waits up to a minute.
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)


@dataclass(frozen=True)
class Instruments:
    per_company: bool
    records_synced: Counter
    records_deleted: Counter
    runs: Counter
    run_duration: Histogram
    intuit_requests: Counter
    intuit_request_duration: Histogram
    intuit_metered_calls: Counter
    limiter_wait: Histogram
    token_refreshes: Counter
    process_start: Gauge
    worker_threads: Gauge


def build(per_company: bool) -> Instruments:
    """Create every instrument (registered nowhere: a scrape reads the processes' files)."""
    realm = ("realm",) if per_company else ()

    def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
        return Counter(f"{PREFIX}_{name}", doc, labels, registry=None)

    def histogram(name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> Histogram:
        return Histogram(f"{PREFIX}_{name}", doc, labels, buckets=buckets, registry=None)

    return Instruments(
        per_company=per_company,
        records_synced=counter("records_synced", "Records written (inserted or updated) by syncs",
                               ("object_type", *realm)),
        records_deleted=counter("records_deleted", "Records marked deleted because QuickBooks deleted them",
                                ("object_type", *realm)),
        runs=counter("sync_runs", "Sync run attempts ended, by kind and outcome", ("kind", "outcome")),
        run_duration=histogram("sync_run_duration_seconds", "Time one attempt of a sync run took",
                               ("kind", "outcome"), RUN_BUCKETS),
        intuit_requests=counter("intuit_requests", "HTTP requests to Intuit's Accounting API "
                                "(status 0: no answer)", ("endpoint", "status", *realm)),
        intuit_request_duration=histogram("intuit_request_duration_seconds",
                                          "Time from sending a request to Intuit to its answer",
                                          ("endpoint",), REQUEST_BUCKETS),
        intuit_metered_calls=counter("intuit_metered_calls", "Reads Intuit meters (a batch counts its items)",
                                     ("endpoint", *realm)),
        limiter_wait=histogram("limiter_wait_seconds", "Time a request waited for a slot in the realm's "
                               "rate limits", realm, WAIT_BUCKETS),
        token_refreshes=counter("token_refreshes", "Access-token refreshes at the provider, by outcome",
                                ("outcome",)),
        process_start=Gauge(f"{PREFIX}_process_start_time_seconds", "When each live process writing "
                            "metrics started (one series per pid)", multiprocess_mode="liveall", registry=None),
        worker_threads=Gauge(f"{PREFIX}_worker_threads", "Threads of each live worker process (one series "
                             "per pid)", multiprocess_mode="liveall", registry=None),
    )


_built: Instruments | None = None


def install(instruments: Instruments) -> None:
    global _built
    _built = instruments


def built() -> Instruments | None:
    return _built


def _realm(instruments: Instruments, realm: str) -> dict[str, str]:
    return {"realm": realm} if instruments.per_company else {}


# --- record calls (each a no-op before ``build``) ------------------------------------------

def _safe(record: Callable[P, None]) -> Callable[P, None]:
    """Counting must never fail what it counts: a fault is logged, and the sync goes on."""
    @functools.wraps(record)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception:  # noqa: BLE001
            log.exception("Could not record the metric of %s", record.__name__)
    return wrapper


@_safe
def announce_process(started: float) -> None:
    if _built:
        _built.process_start.set(started)


@_safe
def announce_worker(threads: int) -> None:
    if _built:
        _built.worker_threads.set(threads)


@_safe
def request_observed(event: RequestEvent) -> None:
    """The QBO client's request observer: one request to Intuit, answered or not."""
    if not _built:
        return
    realm = _realm(_built, event.realm)
    _built.intuit_requests.labels(endpoint=event.kind, status=str(event.status), **realm).inc()
    _built.intuit_request_duration.labels(endpoint=event.kind).observe(event.seconds)
    if event.items:
        _built.intuit_metered_calls.labels(endpoint=event.kind, **realm).inc(event.items)


@_safe
def records_synced(realm: str, object_type: str, count: int) -> None:
    if _built and count:
        _built.records_synced.labels(object_type=object_type, **_realm(_built, realm)).inc(count)


@_safe
def records_deleted(realm: str, object_type: str, count: int) -> None:
    if _built and count:
        _built.records_deleted.labels(object_type=object_type, **_realm(_built, realm)).inc(count)


@_safe
def run_ended(kind: str, outcome: str, seconds: float | None) -> None:
    """One attempt of a run ended: succeeded, failed, cancelled or retried (queued again)."""
    if not _built:
        return
    _built.runs.labels(kind=kind, outcome=outcome).inc()
    if seconds is not None:
        _built.run_duration.labels(kind=kind, outcome=outcome).observe(max(0.0, seconds))


@_safe
def token_refreshed(outcome: str) -> None:
    """ok, invalid_grant (the company must reconnect) or failed (a passing fault)."""
    if _built:
        _built.token_refreshes.labels(outcome=outcome).inc()


@_safe
def limiter_waited(realm: str, seconds: float) -> None:
    if not _built:
        return
    histogram = _built.limiter_wait.labels(realm=realm) if _built.per_company else _built.limiter_wait
    histogram.observe(seconds)


class TimedLimiter:
    """A rate limiter that reports how long each slot took to get (wraps any limiter)."""

    def __init__(self, inner: RateLimiter) -> None:
        self.inner = inner
        # The client sizes a batch's slots from the limits.
        self.limits: Any = getattr(inner, "limits", None)

    @contextlib.contextmanager
    def slot(self, realm: str, weight: int = 1) -> Iterator[None]:
        asked = time.perf_counter()
        with self.inner.slot(realm, weight):
            limiter_waited(realm, time.perf_counter() - asked)
            yield
