"""The governor's arithmetic: months, rate, projection and pace, with plain datetimes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard.sync import budget as rules
from dashboard.sync.budget import Fleet, Pace


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


FIVE_MIN = timedelta(minutes=5)


def test_month_boundaries_across_new_year_and_february():
    assert rules.month_start(at(2026, 12, 31, 23, 59, 59)) == at(2026, 12, 1)
    assert rules.next_month_start(at(2026, 12, 31, 23, 59, 59)) == at(2027, 1, 1)
    assert rules.month_start(at(2027, 1, 1)) == at(2027, 1, 1)
    assert rules.next_month_start(at(2027, 2, 10)) == at(2027, 3, 1)
    assert rules.next_month_start(at(2028, 2, 29, 12)) == at(2028, 3, 1)  # leap year
    # A moment given in another zone counts in the UTC month: 20:00 on Dec 31 in New York is January.
    new_york = timezone(timedelta(hours=-5))
    assert rules.month_start(datetime(2026, 12, 31, 20, tzinfo=new_york)) == at(2027, 1, 1)
    with pytest.raises(ValueError):
        rules.month_start(datetime(2026, 12, 31))


def test_seconds_left_in_february_and_december():
    assert rules.seconds_left(at(2027, 2, 1)) == 28 * 86400
    assert rules.seconds_left(at(2028, 2, 1)) == 29 * 86400
    assert rules.seconds_left(at(2026, 12, 31, 23)) == 3600


def test_rate_window_is_the_last_24_hour_buckets_or_since_counting_began():
    now = at(2027, 1, 1, 0, 30)
    # It reaches back into December: the rate of the last day is the best guess of the next.
    assert rules.rate_window_start(now, at(2026, 1, 1)) == at(2026, 12, 31, 1)
    assert rules.rate_window_start(now, None) == at(2026, 12, 31, 1)
    # A fresh install: the window starts when counting began.
    assert rules.rate_window_start(now, at(2026, 12, 31, 20, 10)) == at(2026, 12, 31, 20)


def test_current_rate_over_the_window_and_at_least_an_hour():
    now = at(2026, 12, 31, 23, 30)
    start = rules.rate_window_start(now, None)  # Dec 31 00:00, 23.5 h ago
    assert rules.current_rate(8460, start, now) == pytest.approx(8460 / (23.5 * 3600))
    # Counting began ten minutes ago: 600 calls are 600 an hour, not 3,600.
    assert rules.current_rate(600, now - timedelta(minutes=10), now) == pytest.approx(600 / 3600)
    assert rules.current_rate(0, start, now) == 0


def test_projection_across_the_new_year():
    # Dec 31 23:00: 400,000 used, 1 call a second: 3,600 more by midnight.
    assert rules.projection(400_000, 1.0, at(2026, 12, 31, 23)) == 403_600
    # Jan 1 00:00: a new month starts from what January used; the rate carries over.
    assert rules.projection(0, 1.0, at(2027, 1, 1)) == 31 * 86400


def test_projection_in_february():
    assert rules.projection(100, 0.1, at(2027, 2, 15)) == 100 + round(0.1 * 14 * 86400)
    assert rules.projection(100, 0.1, at(2028, 2, 15)) == 100 + round(0.1 * 15 * 86400)


def test_no_stretch_while_the_projection_fits():
    now = at(2027, 2, 1)
    fleet = Fleet(webhook_fed=2, idle=3)
    rate = rules.cycle_rate(5, FIVE_MIN)  # the five companies' cycles and nothing else
    spend = rate * rules.seconds_left(now)
    assert rules.plan_pace(used=0, budget=int(spend) + 1, rate=rate, now=now, interval=FIVE_MIN,
                           fleet=fleet) == Pace()


def test_webhook_fed_companies_are_stretched_first_just_enough():
    now = at(2027, 2, 1)
    fleet = Fleet(webhook_fed=2, idle=3)
    left = rules.seconds_left(now)
    rate = rules.cycle_rate(5, FIVE_MIN)
    # A budget that allows the idle three at full pace and the webhook-fed two at half.
    budget = round((rules.cycle_rate(3, FIVE_MIN) + rules.cycle_rate(2, FIVE_MIN, 2.0)) * left)
    pace = rules.plan_pace(used=0, budget=budget, rate=rate, now=now, interval=FIVE_MIN, fleet=fleet)
    assert pace.idle_factor == 1.0
    assert pace.webhook_factor == pytest.approx(2.0, rel=1e-6)
    assert rules.paced_interval(FIVE_MIN, pace.webhook_factor) == timedelta(minutes=10)


def test_idle_companies_are_stretched_once_webhook_fed_ones_are_at_the_slowest():
    now = at(2026, 12, 15)
    fleet = Fleet(webhook_fed=1, idle=4)
    left = rules.seconds_left(now)
    max_factor = rules.MAX_INTERVAL / FIVE_MIN
    budget = round((rules.cycle_rate(1, FIVE_MIN, max_factor) + rules.cycle_rate(4, FIVE_MIN, 3.0)) * left)
    pace = rules.plan_pace(used=0, budget=budget, rate=rules.cycle_rate(5, FIVE_MIN), now=now,
                           interval=FIVE_MIN, fleet=fleet)
    assert pace.webhook_factor == max_factor
    assert pace.idle_factor == pytest.approx(3.0, rel=1e-6)
    # Without webhook-fed companies the idle ones are stretched directly.
    only_idle = rules.plan_pace(used=0, budget=round(rules.cycle_rate(4, FIVE_MIN, 4.0) * left),
                                rate=rules.cycle_rate(4, FIVE_MIN), now=now, interval=FIVE_MIN,
                                fleet=Fleet(webhook_fed=0, idle=4))
    assert only_idle.webhook_factor == 1.0 and only_idle.idle_factor == pytest.approx(4.0, rel=1e-6)


def test_calls_pacing_cannot_reduce_are_taken_off_the_room_first():
    now = at(2027, 2, 1)
    left = rules.seconds_left(now)
    backfill = 0.01  # calls a second of a backfill: never slowed
    rate = backfill + rules.cycle_rate(1, FIVE_MIN)
    budget = round((backfill + rules.cycle_rate(1, FIVE_MIN, 4.0)) * left)
    pace = rules.plan_pace(used=0, budget=budget, rate=rate, now=now, interval=FIVE_MIN,
                           fleet=Fleet(webhook_fed=0, idle=1))
    assert pace.idle_factor == pytest.approx(4.0, rel=1e-6)


def test_a_stretched_pace_holds_while_the_slower_rate_fits():
    """Once stretched, the measured rate is lower; the cycles are modelled at the current
    pace, so the governor keeps the stretch instead of flapping back to normal."""
    now = at(2027, 2, 1)
    fleet = Fleet(webhook_fed=0, idle=2)
    left = rules.seconds_left(now)
    budget = round(rules.cycle_rate(2, FIVE_MIN, 2.0) * left)
    stretched = Pace(idle_factor=2.0)
    slower_rate = rules.cycle_rate(2, FIVE_MIN, 2.0)  # what the stretched schedule spends
    pace = rules.plan_pace(used=0, budget=budget, rate=slower_rate, now=now, interval=FIVE_MIN, fleet=fleet,
                           current=stretched)
    assert pace.idle_factor == pytest.approx(2.0, rel=1e-6)
    # A budget raised to the full pace's need: back to normal.
    raised = round(rules.cycle_rate(2, FIVE_MIN) * left) + 1
    assert rules.plan_pace(used=0, budget=raised, rate=slower_rate, now=now, interval=FIVE_MIN, fleet=fleet,
                           current=stretched) == Pace()


def test_nothing_fits_past_the_budget_the_slowest_pace_then_the_pause():
    now = at(2027, 1, 31, 12)
    pace = rules.plan_pace(used=1000, budget=1000, rate=0.5, now=now, interval=FIVE_MIN,
                           fleet=Fleet(webhook_fed=1, idle=1))
    slowest = rules.MAX_INTERVAL / FIVE_MIN
    assert pace == Pace(webhook_factor=slowest, idle_factor=slowest)
    assert rules.paused(1000, 1000) and not rules.paused(999, 1000)


def test_an_empty_fleet_has_nothing_to_pace():
    assert rules.plan_pace(used=0, budget=1, rate=5.0, now=at(2027, 1, 2), interval=FIVE_MIN,
                           fleet=Fleet(0, 0)) == Pace()


def test_the_new_month_lifts_the_pause_and_the_stretch():
    fleet = Fleet(webhook_fed=1, idle=1)
    december = at(2026, 12, 31, 23, 59)
    stretched = rules.plan_pace(used=499_999, budget=500_000, rate=0.05, now=december, interval=FIVE_MIN,
                                fleet=fleet)
    assert stretched.slowed and not rules.paused(499_999, 500_000)
    assert rules.paused(500_000, 500_000)
    january = at(2027, 1, 1, 0, 1)
    assert rules.plan_pace(used=3, budget=500_000, rate=0.05, now=january, interval=FIVE_MIN, fleet=fleet,
                           current=stretched) == Pace()
    assert rules.unslowed_projection(used=3, rate=0.05, now=january, interval=FIVE_MIN, fleet=fleet,
                                     current=stretched) < 500_000
