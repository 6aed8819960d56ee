"""The API-budget governor: count metered calls, project the month, pace and pause schedules.

Intuit meters every data read ("CorePlus" calls: queries, each item of a batch, CDC,
reads of single entities such as CompanyInfo) per calendar month. This module counts them
for the whole deployment (``budget_ledger``), tells how the month is going
(``snapshot``), and decides, once a minute from the scheduler, how much to stretch
scheduled syncs (``govern``; the rules are the pure ``sync.budget``):

- projection over the budget: stretch the interval of companies whose webhooks arrive,
  then of all other idle companies, just enough; backfills and operator actions are
  never slowed;
- used at the budget: scheduled syncs pause (a banner on every page says so) until the
  month renews or QBO_MONTHLY_CALL_BUDGET is raised; operator actions still run and say
  that they spend over the budget.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import BudgetPace, Company, ConnectionState, utcnow
from ..qbo.client import RequestEvent, RequestObserver
from ..redis_client import redis_client
from ..sync import budget as rules
from .budget_ledger import CallLedger, DatabaseLedger, RedisLedger

log = logging.getLogger(__name__)

TOP_CONSUMERS = 10
PACE_ROW_ID = 1
# Hour buckets older than this are dropped (the month and the 24-hour window need less).
KEEP_BUCKETS = timedelta(days=62)
EXTENSION = "budget_ledger"
_ledger_guard = threading.Lock()


@dataclass(frozen=True)
class BudgetSnapshot:
    """How the month's metered calls stand at ``now`` (the governor's public figures)."""

    month_start: datetime
    used: int
    projected: int
    budget: int
    paused: bool
    rate_per_day: float = 0.0  # the current rate, in calls a day

    @property
    def used_share(self) -> float:
        return self.used / self.budget

    @property
    def projected_share(self) -> float:
        return self.projected / self.budget

    @property
    def renews_at(self) -> datetime:
        return rules.next_month_start(self.month_start)

    @property
    def over_projection(self) -> bool:
        return self.projected > self.budget


@dataclass(frozen=True)
class PaceView:
    """The governor's standing decision: each group's interval between scheduled syncs."""

    base: timedelta
    webhook_interval: timedelta
    idle_interval: timedelta
    used: int = 0
    projected: int = 0  # the month's calls at the normal pace (``rules.unslowed_projection``)
    budget: int = 0
    decided_at: datetime | None = None

    @property
    def pace(self) -> rules.Pace:
        base = self.base.total_seconds()
        return rules.Pace(webhook_factor=self.webhook_interval.total_seconds() / base,
                          idle_factor=self.idle_interval.total_seconds() / base)

    @property
    def slowed(self) -> bool:
        return self.webhook_interval > self.base or self.idle_interval > self.base

    def interval(self, webhook_fed: bool) -> timedelta:
        return self.webhook_interval if webhook_fed else self.idle_interval


@dataclass(frozen=True)
class CompanyPace:
    """What the company page says about its scheduled syncs."""

    interval: timedelta
    base: timedelta
    webhook_fed: bool
    paused: bool
    projected: int
    budget: int

    @property
    def slowed(self) -> bool:
        return self.interval > self.base


@dataclass(frozen=True)
class Governance:
    snapshot: BudgetSnapshot
    pace: PaceView

    def interval_for(self, last_webhook_at: datetime | None, now: datetime) -> timedelta:
        return self.pace.interval(webhook_fed(last_webhook_at, now))


@dataclass(frozen=True)
class Consumer:
    realm: str
    name: str | None
    calls: int


@dataclass(frozen=True)
class BudgetOverview:
    """The budget page: the month's figures, the pace and the top consumers."""

    snapshot: BudgetSnapshot
    pace: PaceView
    consumers: list[Consumer]


# --- counting -------------------------------------------------------------------------------

def ledger() -> CallLedger:
    """Return the deployment's counter: Redis when configured, else the database (one per process)."""
    settings = current_app.config["SETTINGS"]
    if settings.redis_url:
        return RedisLedger(redis_client(settings.redis_url), settings.redis_key("budget"))
    extensions = current_app.extensions
    with _ledger_guard:
        if EXTENSION not in extensions:
            extensions[EXTENSION] = DatabaseLedger(db.engine)
        return extensions[EXTENSION]


def metered(event: RequestEvent) -> int:
    """Return the metered calls a request spent.

    Every answered data read counts, whatever its status, except 429 (Intuit refused it
    unserved); a request that got no answer may or may not have been served and is not
    counted. When in doubt this errs towards counting: a budget must not be overrun.
    """
    if event.status == 0 or event.status == 429:
        return 0
    return max(event.items, 1)


def call_counter() -> RequestObserver:
    """Return the request observer that counts metered calls (built in an app context)."""
    counter = ledger()

    def count(event: RequestEvent) -> None:
        calls = metered(event)
        if calls:
            counter.add({event.realm: calls}, utcnow())

    return count


def count_calls(realm: str, calls: int = 1, now: datetime | None = None) -> None:
    """Count metered calls made outside the sync client (the CompanyInfo read at connect)."""
    try:
        ledger().add({realm: calls}, now or utcnow())
    except Exception:  # noqa: BLE001 - counting must never fail the caller (e.g. a connect)
        log.warning("Could not count %s metered call(s) of %s", calls, realm, exc_info=True)


# --- figures --------------------------------------------------------------------------------

def budget_limit() -> int:
    return current_app.config["SETTINGS"].qbo_monthly_call_budget


def snapshot(now: datetime | None = None) -> BudgetSnapshot:
    """Return the month's metered calls so far, the projection to its end, and whether paused."""
    now = now or utcnow()
    start = rules.month_start(now)
    # No bucket is older than counting itself, so the window's sum is the same from either
    # start; only the rate's time span starts later on a fresh install.
    reading = ledger().read(start, rules.rate_window_start(now, None), now)
    window_start = rules.rate_window_start(now, reading.counting_since)
    rate = rules.current_rate(reading.window_calls, window_start, now)
    budget = budget_limit()
    return BudgetSnapshot(month_start=start, used=reading.used, projected=rules.projection(reading.used, rate, now),
                          budget=budget, paused=rules.paused(reading.used, budget), rate_per_day=rate * 86400)


def base_interval() -> timedelta:
    return timedelta(minutes=current_app.config["SETTINGS"].sync_interval_minutes)


def webhook_fed(last_webhook_at: datetime | None, now: datetime) -> bool:
    return last_webhook_at is not None and last_webhook_at >= now - rules.WEBHOOK_RECENT


def current_pace() -> PaceView:
    """Return the governor's last decision (the normal pace before its first)."""
    base = base_interval()
    row = db.session.get(BudgetPace, PACE_ROW_ID)
    if row is None:
        return PaceView(base=base, webhook_interval=base, idle_interval=base)
    # The configured interval may have changed since: keep the factors, not the seconds.
    scale = base.total_seconds() / row.base_interval_seconds
    return PaceView(base=base, webhook_interval=timedelta(seconds=round(row.webhook_interval_seconds * scale)),
                    idle_interval=timedelta(seconds=round(row.idle_interval_seconds * scale)),
                    used=row.used, projected=row.projected, budget=row.budget, decided_at=row.decided_at)


def company_pace(last_webhook_at: datetime | None, now: datetime | None = None) -> CompanyPace:
    """Return the pace of one company's scheduled syncs, for its page.

    The figures are those of the governor's last decision (a minute old at most): the page
    says why the company is paced as it is, and reads one row for it.
    """
    now = now or utcnow()
    pace, fed = current_pace(), webhook_fed(last_webhook_at, now)
    budget = budget_limit()
    return CompanyPace(interval=pace.interval(fed), base=pace.base, webhook_fed=fed,
                       paused=pace.decided_at is not None and rules.paused(pace.used, budget),
                       projected=pace.projected, budget=budget)


def over_budget_note() -> str | None:
    """Return the sentence an operator action's flash adds while the budget is spent."""
    snap = snapshot()
    if not snap.paused:
        return None
    return (f"It spends metered calls over this month's budget ({snap.used:,} of {snap.budget:,} used; "
            "scheduled syncs are paused).")


def overview(now: datetime | None = None) -> BudgetOverview:
    """Return the budget page's data: the figures, the pace, the top consumers by name."""
    now = now or utcnow()
    snap = snapshot(now)
    top = ledger().top(snap.month_start, TOP_CONSUMERS)
    names = dict(db.session.execute(select(Company.source_id, Company.name)
                                    .where(Company.source_id.in_([realm for realm, _ in top]))).all()) if top else {}
    return BudgetOverview(snapshot=snap, pace=current_pace(),
                          consumers=[Consumer(realm, names.get(realm), calls) for realm, calls in top])


# --- the governor ---------------------------------------------------------------------------

def fleet(now: datetime) -> rules.Fleet:
    """Count the connected companies by whether webhooks arrive for them."""
    recent = Company.last_webhook_at >= now - rules.WEBHOOK_RECENT
    total, fed = db.session.execute(
        select(func.count(Company.id), func.coalesce(func.sum(case((recent, 1), else_=0)), 0))
        .where(Company.connection_state == ConnectionState.CONNECTED)).one()
    return rules.Fleet(webhook_fed=int(fed), idle=int(total) - int(fed))


def govern(now: datetime | None = None) -> Governance:
    """Decide the pace of scheduled syncs for the coming minute and record it (the scheduler calls this)."""
    now = now or utcnow()
    snap = snapshot(now)
    before = current_pace()
    base = before.base
    companies, rate = fleet(now), snap.rate_per_day / 86400
    decided = rules.plan_pace(used=snap.used, budget=snap.budget, rate=rate, now=now, interval=base,
                              fleet=companies, current=before.pace)
    unslowed = rules.unslowed_projection(used=snap.used, rate=rate, now=now, interval=base, fleet=companies,
                                         current=before.pace)
    after = PaceView(base=base, webhook_interval=rules.paced_interval(base, decided.webhook_factor),
                     idle_interval=rules.paced_interval(base, decided.idle_factor),
                     used=snap.used, projected=unslowed, budget=snap.budget, decided_at=now)
    _save(after)
    _pull_in(before, after, now)
    if (after.webhook_interval, after.idle_interval) != (before.webhook_interval, before.idle_interval):
        log.warning("API budget: %s of %s metered calls used, %s projected by %s unslowed; scheduled syncs now every "
                    "%s (webhook-fed companies) and %s (others)", f"{snap.used:,}", f"{snap.budget:,}",
                    f"{unslowed:,}", f"{snap.renews_at:%Y-%m-%d}", after.webhook_interval,
                    after.idle_interval)
    if isinstance(ledger(), DatabaseLedger):
        ledger().prune(snap.month_start - KEEP_BUCKETS)
    return Governance(snapshot=snap, pace=after)


def _save(pace: PaceView) -> None:
    values = dict(base_interval_seconds=int(pace.base.total_seconds()),
                  webhook_interval_seconds=int(pace.webhook_interval.total_seconds()),
                  idle_interval_seconds=int(pace.idle_interval.total_seconds()),
                  used=pace.used, projected=pace.projected, budget=pace.budget, decided_at=pace.decided_at)
    row = db.session.get(BudgetPace, PACE_ROW_ID)
    if row is None:
        db.session.add(BudgetPace(id=PACE_ROW_ID, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    try:
        db.session.commit()
    except IntegrityError:  # another scheduler recorded the first decision at the same instant
        db.session.rollback()


def _pull_in(before: PaceView, after: PaceView, now: datetime) -> None:
    """When the pace quickens, bring forward slots that the slower pace put far ahead."""
    recent = Company.last_webhook_at >= now - rules.WEBHOOK_RECENT
    for fed, old, new in ((True, before.webhook_interval, after.webhook_interval),
                          (False, before.idle_interval, after.idle_interval)):
        if new >= old:
            continue
        group = recent if fed else or_(Company.last_webhook_at.is_(None), ~recent)
        cap = now + new
        db.session.execute(update(Company).where(group, Company.next_sync_at > cap).values(next_sync_at=cap))
    db.session.commit()
