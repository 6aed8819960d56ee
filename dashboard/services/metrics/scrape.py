"""One scrape: the samples every process wrote, plus gauges read from the database now.

Queue depth, the oldest queued run's age and companies by connection state are facts of
the database, not of a process: they are read at scrape time (a few indexed counts), so
they are right whichever processes run. ``SOURCES`` lists the functions that give those
gauges, the budget governor's (metered calls this month, projection) among them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from ...extensions import db
from ...models import Company, ConnectionState, RunKind, RunStatus, SyncRun, utcnow
from .. import budget
from .instruments import PREFIX

Source = Callable[[datetime], Iterable[Metric]]


def queue_gauges(now: datetime) -> Iterator[Metric]:
    """Runs waiting for a worker (by kind), the oldest one's age, and runs in progress."""
    waiting = dict(db.session.execute(select(SyncRun.kind, func.count()).where(
        SyncRun.status == RunStatus.QUEUED).group_by(SyncRun.kind)).all())
    depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Sync runs queued, waiting for a worker", labels=["kind"])
    for kind in RunKind:
        depth.add_metric([kind.value], waiting.get(kind, 0))
    yield depth
    oldest = db.session.execute(select(func.min(SyncRun.created_at)).where(
        SyncRun.status == RunStatus.QUEUED)).scalar_one()
    age = 0.0 if oldest is None else max(0.0, (now - _aware(oldest)).total_seconds())
    yield GaugeMetricFamily(f"{PREFIX}_oldest_queued_run_age_seconds",
                            "Age of the oldest queued sync run (0 when none waits)", value=age)
    running = db.session.execute(select(func.count()).select_from(SyncRun).where(
        SyncRun.status == RunStatus.RUNNING)).scalar_one()
    yield GaugeMetricFamily(f"{PREFIX}_running_runs", "Sync runs in progress", value=running)


def company_gauges(_now: datetime) -> Iterator[Metric]:
    states = dict(db.session.execute(select(Company.connection_state, func.count())
                                     .group_by(Company.connection_state)).all())
    family = GaugeMetricFamily(f"{PREFIX}_companies", "Companies by connection state", labels=["state"])
    for state in ConnectionState:
        family.add_metric([state.value], states.get(state, 0))
    yield family


def budget_gauges(now: datetime) -> Iterator[Metric]:
    """The API-budget governor's figures: metered calls this month, the projection, the budget."""
    snap = budget.snapshot(now)
    yield GaugeMetricFamily(f"{PREFIX}_metered_calls_month", "Metered Intuit calls this calendar month (UTC)",
                            value=snap.used)
    yield GaugeMetricFamily(f"{PREFIX}_metered_calls_projected", "Metered calls projected by the month's end "
                            "at the rate of the last 24 h", value=snap.projected)
    yield GaugeMetricFamily(f"{PREFIX}_metered_calls_budget", "QBO_MONTHLY_CALL_BUDGET", value=snap.budget)
    yield GaugeMetricFamily(f"{PREFIX}_scheduled_syncs_paused", "1 while the budget is spent and scheduled "
                            "syncs pause", value=int(snap.paused))


# Gauges computed at scrape time.
SOURCES: list[Source] = [queue_gauges, company_gauges, budget_gauges]


class DatabaseCollector:
    """A collector that asks each source at scrape time."""

    def __init__(self, sources: Iterable[Source], clock: Callable[[], datetime] = utcnow) -> None:
        self.sources, self.clock = list(sources), clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        for source in self.sources:
            yield from source(now)


def render(directory: Path) -> tuple[bytes, str]:
    """Return the scrape's body in Prometheus' text format, and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=str(directory))
    registry.register(DatabaseCollector(SOURCES))
    try:
        return generate_latest(registry), CONTENT_TYPE_LATEST
    finally:
        db.session.rollback()  # end the read transaction of the counts


def _aware(moment: datetime) -> datetime:
    """Make an aggregate's naive UTC (some drivers drop the type) comparable with aware now."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
