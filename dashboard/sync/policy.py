"""Sync decisions as plain functions of their inputs (``now`` included)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

CDC_LOOKBACK = timedelta(days=30)
# Start the timestamp path a little before Intuit's 30-day limit: our clock and
# Intuit's may differ, and a rejected CDC call would cost a request for nothing.
CDC_MARGIN = timedelta(hours=6)
DEFAULT_OVERLAP = timedelta(minutes=5)

INITIAL, CDC, TIMESTAMP, RECONCILE = "initial", "cdc", "timestamp", "reconcile"


def incremental_path(last_success: datetime | None, now: datetime,
                     lookback: timedelta = CDC_LOOKBACK, margin: timedelta = CDC_MARGIN) -> str:
    """Choose how to catch up: backfill first, CDC for short gaps, timestamps for long ones."""
    if last_success is None:
        return INITIAL
    return CDC if now - last_success < lookback - margin else TIMESTAMP


DAILY = timedelta(days=1)
RECONCILE_EVERY = CDC_LOOKBACK


def refresh_due(last_success: datetime | None, now: datetime, every: timedelta = DAILY) -> bool:
    """Tell whether a type CDC does not cover is due its once-a-day read."""
    return last_success is None or now - last_success >= every


def long_gap_path(deletable: bool) -> str:
    """Pick the path for a gap CDC cannot cover: deletes are then found only by Id reconciliation."""
    return RECONCILE if deletable else TIMESTAMP


def changed_since(last_success: datetime, overlap: timedelta = DEFAULT_OVERLAP) -> datetime:
    """Return the start of the next window: a little overlap makes clock skew harmless."""
    return last_success - overlap


def first_due(now: datetime, interval: timedelta, company_source_id: str) -> datetime:
    """Spread companies over the interval by a stable hash, so they are not all due at once."""
    digest = int(hashlib.sha256(company_source_id.encode()).hexdigest()[:8], 16)
    return now + timedelta(seconds=digest % max(1, int(interval.total_seconds())))


def next_due(due: datetime, now: datetime, interval: timedelta) -> datetime:
    """Return the first slot after ``now`` on the company's own cadence (keeps the spread)."""
    if due > now:
        return due
    missed = int((now - due) / interval) + 1
    return due + missed * interval


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``delay``, ``delay*backoff``, … for ``retries`` retries."""

    retries: int = 3
    delay: float = 1.0
    backoff: float = 2.0
    max_wait: float = 60.0

    def delays(self) -> list[float]:
        return [self.wait(attempt) for attempt in range(1, self.retries + 1)]

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Return the wait before retry ``attempt`` (1-based), honouring Retry-After up to the cap."""
        computed = self.delay * self.backoff ** (attempt - 1)
        if retry_after is not None and retry_after >= 0:
            computed = max(computed, retry_after)
        return min(computed, self.max_wait)
