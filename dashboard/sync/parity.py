"""Parity of our copy with QuickBooks, as plain functions: verdicts, their words, when to check.

A check compares, per object type, Intuit's ``SELECT COUNT(*)`` (with the filter every
query of that type carries) with the rows we hold that are not deleted. One drifting
check may be a change that landed between our sync and Intuit's count; a drift in two
checks in a row is a failure. Checks come once a day per company, on the company's own
slot of the day (a stable hash of its realm, so companies do not all check at once).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping, Sequence, TypeVar

from .policy import first_due, next_due
from .queries import count_query
from .specs import EntitySpec

INTERVAL = timedelta(days=1)
# After any check (a scheduled one, one asked for, one after a full resync) the next
# scheduled one waits at least this long, then falls on the company's slot of the day:
# checks on the slot come exactly a day apart, others never twice within half a day.
MIN_GAP = INTERVAL / 2
FAILURE_STREAK = 2  # drifting checks in a row that make a failure
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)  # the slots are counted from a midnight

T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    """One type's check: Intuit's count and ours, or why Intuit's could not be had."""

    object_type: str
    source_count: int | None
    local_count: int | None
    error: str | None = None

    @property
    def checked(self) -> bool:
        return self.error is None and self.source_count is not None and self.local_count is not None

    @property
    def in_parity(self) -> bool:
        return self.checked and self.source_count == self.local_count

    @property
    def drifts(self) -> bool:
        return self.checked and self.source_count != self.local_count


def statements(specs: Sequence[EntitySpec]) -> dict[str, str]:
    """Return each type's count statement keyed by its name (the batch item id)."""
    return {spec.name: count_query(spec) for spec in specs}


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Split ``items`` into lists of at most ``size`` (a batch request each)."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def source_count(answer: Mapping[str, Any]) -> int:
    """Read ``totalCount`` from a COUNT(*) query's ``QueryResponse``; ValueError if it is not there."""
    total = answer.get("totalCount")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ValueError(f"Intuit's count answer has no usable totalCount: {str(dict(answer))[:200]}")
    return total


def could_not_check(reason: str) -> str:
    return f"could not check: {reason}"


def noun(spec: EntitySpec, count: int) -> str:
    """Return the type's records in words for ``count`` of them: "1 journal entry", "2 journal entries"."""
    if count == 1:
        return "".join(f" {c.lower()}" if c.isupper() else c for c in spec.entity).strip()
    return spec.label.lower()


def drift_words(spec: EntitySpec, source: int, local: int) -> str:
    """Say what the counts are: "QuickBooks has 120 customers, we hold 118"."""
    return f"QuickBooks has {source} {noun(spec, source)}, we hold {local}"


def when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def failure_message(spec: EntitySpec, source: int | None, local: int | None, drifts: int,
                    since: datetime | None) -> str | None:
    """Return the failure a persisting drift means in words, or None while it is no failure.

    "QuickBooks has 120 customers, we hold 118 (drift in 2 checks in a row since 2026-12-05 06:00 UTC)"
    """
    if drifts < FAILURE_STREAK or source is None or local is None:
        return None
    start = f" since {when(since)}" if since is not None else ""
    return f"{drift_words(spec, source, local)} (drift in {drifts} checks in a row{start})"


def verdict_words(spec: EntitySpec, verdict: Verdict) -> str:
    """Return a check's verdict as the dashboard and the CLI say it."""
    if verdict.error is not None:
        return could_not_check(verdict.error)
    if verdict.in_parity:
        return "in parity"
    assert verdict.source_count is not None and verdict.local_count is not None
    gap = verdict.source_count - verdict.local_count
    return f"drift: {drift_words(spec, verdict.source_count, verdict.local_count)} ({gap:+d})"


def check_due(due_at: datetime | None, requested_at: datetime | None, now: datetime) -> bool:
    """Whether a company's check is due: asked for, never done, or its slot has come."""
    return requested_at is not None or due_at is None or now >= due_at


def next_check_at(company_source_id: str, checked_at: datetime, interval: timedelta = INTERVAL,
                  min_gap: timedelta = MIN_GAP) -> datetime:
    """Return the company's first slot at least ``min_gap`` after a check made at ``checked_at``."""
    slot = first_due(_EPOCH, interval, company_source_id)
    return next_due(slot, checked_at + min_gap, interval)
