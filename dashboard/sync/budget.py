"""The API-budget governor's arithmetic: months, the current rate, the projection, the pace.

Intuit meters data reads ("CorePlus" calls) per calendar month; we count in UTC months.
Everything here is a plain function of its inputs, ``now`` included, so the rules are
tested with plain datetimes (across Dec 31 -> Jan 1 and February) without a clock.

The current rate is the rate of the last 24 hours (hourly buckets: from the start of the
hour 23 hours ago until now), or of the whole history when counting began less than 24
hours ago (a fresh install), over at least one hour (so a burst in the first minutes
does not look like a month's pace). The window may reach into the previous month: on
the 1st at 00:30 the rate of the last day is still the best guess of the next ones,
while the month's *used* count starts again from zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

HOUR = timedelta(hours=1)
RATE_WINDOW = timedelta(hours=24)
MIN_RATE_WINDOW = timedelta(hours=1)
# The slowest a company is ever paced: it still syncs daily, far inside CDC's 30 days.
MAX_INTERVAL = timedelta(hours=24)
# Webhooks count as "arriving" for a company that had one within this.
WEBHOOK_RECENT = timedelta(hours=24)
# A scheduled incremental cycle with nothing changed costs about one metered call: one
# CDC request covers every object type (ARCHITECTURE.md, guarantee 7).
CYCLE_CALLS = 1.0


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(timezone.utc)


def month_start(now: datetime) -> datetime:
    """Return the first instant of ``now``'s calendar month, UTC."""
    now = _utc(now)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    """Return the first instant of the next calendar month, UTC (when the budget renews)."""
    start = month_start(now)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def hour_start(now: datetime) -> datetime:
    """Return the start of ``now``'s hour: the bucket a call made at ``now`` is counted in."""
    return _utc(now).replace(minute=0, second=0, microsecond=0)


def rate_window_start(now: datetime, counting_since: datetime | None) -> datetime:
    """Return the first hour bucket of the rate window (24 buckets, the current one included).

    Counting that began later than that (a fresh install) starts the window there.
    """
    start = hour_start(now) - (RATE_WINDOW - HOUR)
    if counting_since is not None:
        start = max(start, hour_start(counting_since))
    return start


def current_rate(window_calls: int, window_start: datetime, now: datetime) -> float:
    """Return the calls per second of the window (counted from its start until ``now``)."""
    elapsed = max(_utc(now) - window_start, MIN_RATE_WINDOW)
    return max(window_calls, 0) / elapsed.total_seconds()


def seconds_left(now: datetime) -> float:
    """Return the seconds from ``now`` until the month (and its budget) renews."""
    return (next_month_start(now) - _utc(now)).total_seconds()


def projection(used: int, rate: float, now: datetime) -> int:
    """Return the month's metered calls at its end if the current rate goes on."""
    return int(round(used + rate * seconds_left(now)))


@dataclass(frozen=True)
class Fleet:
    """The companies the scheduler paces, by how they learn of changes."""

    webhook_fed: int  # webhooks arrived within WEBHOOK_RECENT: changes are pushed to them
    idle: int         # every other connected company: only the schedule brings their changes


@dataclass(frozen=True)
class Pace:
    """How much the governor stretches the incremental interval of each group (1 = not at all)."""

    webhook_factor: float = 1.0
    idle_factor: float = 1.0

    @property
    def slowed(self) -> bool:
        return self.webhook_factor > 1.0 or self.idle_factor > 1.0

    def factor(self, webhook_fed: bool) -> float:
        return self.webhook_factor if webhook_fed else self.idle_factor


NORMAL = Pace()


def cycle_rate(companies: int, interval: timedelta, factor: float = 1.0) -> float:
    """Return the metered calls per second of ``companies`` scheduled every ``interval * factor``."""
    return companies * CYCLE_CALLS / (interval.total_seconds() * factor)


def plan_pace(*, used: int, budget: int, rate: float, now: datetime, interval: timedelta, fleet: Fleet,
              current: Pace = NORMAL, max_interval: timedelta = MAX_INTERVAL) -> Pace:
    """Return the least stretch that lands the month under ``budget``.

    The rate splits into the scheduled cycles (modelled: CYCLE_CALLS per company per
    interval, at the ``current`` pace) and the rest, which pacing cannot reduce
    (backfills, webhook-triggered syncs, operator actions, daily reads). What the budget
    leaves per second after the rest goes to the cycles: the webhook-fed companies are
    stretched first (webhooks bring their changes anyway), and only if stretching them to
    ``max_interval`` is not enough are the idle ones stretched too.

    With no stretch, this is exactly "slow down when the projection passes the budget";
    once stretched, the measured rate is lower, and modelling the cycles (rather than
    reading them off the rate) keeps the pace from flapping back to normal.
    """
    left = seconds_left(now)
    if left <= 0 or fleet.webhook_fed + fleet.idle == 0:
        return NORMAL
    max_factor = max(1.0, max_interval / interval)
    allowance = (budget - used) / left
    room = allowance - unpaced_rate(rate, interval, fleet, current)  # calls per second the scheduled cycles may spend from now on
    webhook_demand = cycle_rate(fleet.webhook_fed, interval)
    idle_demand = cycle_rate(fleet.idle, interval)
    if webhook_demand + idle_demand <= room:
        return NORMAL
    if fleet.webhook_fed:
        webhook_factor = _stretch(webhook_demand, room - idle_demand, max_factor)
        if webhook_factor < max_factor or fleet.idle == 0:
            return Pace(webhook_factor=webhook_factor)
    else:
        webhook_factor = 1.0
    idle_room = room - cycle_rate(fleet.webhook_fed, interval, webhook_factor)
    return Pace(webhook_factor=webhook_factor, idle_factor=_stretch(idle_demand, idle_room, max_factor))


def unpaced_rate(rate: float, interval: timedelta, fleet: Fleet, current: Pace) -> float:
    """Return the part of the measured rate that is not the scheduled cycles (modelled at ``current``)."""
    scheduled = (cycle_rate(fleet.webhook_fed, interval, current.webhook_factor)
                 + cycle_rate(fleet.idle, interval, current.idle_factor))
    return max(0.0, rate - scheduled)


def unslowed_projection(*, used: int, rate: float, now: datetime, interval: timedelta, fleet: Fleet,
                        current: Pace = NORMAL) -> int:
    """Return the month's calls at its end if every company were scheduled at the normal pace.

    This is the projection the governor weighs (``plan_pace`` stretches exactly when it
    passes the budget): the measured rate, with the scheduled cycles counted at their
    normal pace rather than at whatever pace they are slowed to now.
    """
    demand = unpaced_rate(rate, interval, fleet, current) + cycle_rate(fleet.webhook_fed + fleet.idle, interval)
    return int(round(used + demand * max(seconds_left(now), 0.0)))


def _stretch(demand: float, room: float, max_factor: float) -> float:
    """Return the factor that fits ``demand`` into ``room`` (1 if it fits, the cap if nothing does)."""
    if demand <= 0:
        return 1.0
    if room <= 0:
        return max_factor
    return min(max_factor, max(1.0, demand / room))


def paced_interval(interval: timedelta, factor: float) -> timedelta:
    """Return the stretched interval, to the whole second."""
    return timedelta(seconds=round(interval.total_seconds() * factor))


def paused(used: int, budget: int) -> bool:
    """At the budget itself, scheduled syncs pause until the month renews or the budget is raised."""
    return used >= budget
