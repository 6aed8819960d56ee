"""Pure rules behind the dashboard's text: relative times, durations, progress, status."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard.models import ConnectionState, SyncState, SyncStatus
from dashboard.services.overview_models import CompaniesQuery, NextSync, OverviewError, backfill_progress, \
    estimate_time_left, next_sync, object_status
from dashboard.views.formatting import duration_text, next_sync_html, number_text, relative_time, utc_text

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("delta, expected", [
    (timedelta(seconds=-10), "just now"), (timedelta(seconds=10), "in a few seconds"),
    (timedelta(minutes=-3), "3 min ago"), (timedelta(minutes=4, seconds=50), "in 5 min"),
    (timedelta(hours=-5), "5 h ago"), (timedelta(days=-3), "3 days ago"), (timedelta(days=1, hours=13), "in 2 days"),
    (timedelta(days=-45), "2026-10-10"),
])
def test_relative_time(delta, expected):
    assert relative_time(NOW + delta, NOW) == expected


def test_utc_text_converts_other_offsets():
    other = datetime(2026, 11, 24, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    assert utc_text(other) == "2026-11-24 12:30:00 UTC"


@pytest.mark.parametrize("seconds, expected", [(None, "—"), (0, "0 s"), (45, "45 s"), (95, "1 min 35 s"),
                                               (120, "2 min"), (3600, "1 h"), (7500, "2 h 5 min")])
def test_duration_text(seconds, expected):
    assert duration_text(None if seconds is None else timedelta(seconds=seconds)) == expected


def test_number_text():
    assert number_text(1234567) == "1,234,567" and number_text(None) == "—"


def test_time_left_from_the_average_rate():
    started = NOW - timedelta(minutes=2)
    assert estimate_time_left(300, 1200, started, NOW) == timedelta(minutes=6)
    assert estimate_time_left(0, 1200, started, NOW) is None         # no rate yet
    assert estimate_time_left(300, None, started, NOW) is None       # total unknown
    assert estimate_time_left(1200, 1200, started, NOW) is None      # done
    assert estimate_time_left(10, 100, NOW + timedelta(seconds=1), NOW) is None  # clock skew


def test_progress_percent_is_capped_and_handles_empty_companies():
    assert backfill_progress(1300, 1200, None, NOW).percent == 100  # records created meanwhile
    assert backfill_progress(0, 0, None, NOW).percent == 100
    assert backfill_progress(5, None, None, NOW).percent is None


def _state(status, **kw):
    return SyncState(company_source_id="1", object_type="customer", status=status,
                     is_initial_backfill_completed=kw.pop("done", False), records_synced=kw.pop("synced", 0), **kw)


@pytest.mark.parametrize("state, queued, shown", [
    (None, False, "pending"), (None, True, "queued"),
    (_state(SyncStatus.SUCCEEDED), False, "synced"), (_state(SyncStatus.SUCCEEDED), True, "queued"),
    (_state(SyncStatus.FAILED, error_message="x"), False, "failed"),
    (_state(SyncStatus.FAILED, error_message="x"), True, "queued"),  # a pressed Retry shows at once
    (_state(SyncStatus.IN_PROGRESS), True, "running"), (_state(SyncStatus.IN_PROGRESS), False, "running"),
])
def test_object_status_precedence(state, queued, shown):
    result = object_status("customer", "Customers", state, queued, None, 0, NOW)
    assert result.state == shown
    assert result.busy == (shown in ("running", "queued"))


def test_progress_only_for_a_running_backfill():
    running = _state(SyncStatus.IN_PROGRESS, synced=50, records_total=200, initial_attempt_time=NOW - timedelta(seconds=50))
    assert object_status("customer", "Customers", running, True, None, 0, NOW).progress.time_left == timedelta(seconds=150)
    incremental = _state(SyncStatus.IN_PROGRESS, done=True)
    assert object_status("customer", "Customers", incremental, True, None, 0, NOW).progress is None


def test_failed_keeps_its_message_even_when_a_retry_is_queued():
    failed = _state(SyncStatus.FAILED, error_message="boom", attempts=3)
    result = object_status("customer", "Customers", failed, True, None, 0, NOW)
    assert result.error_message == "boom" and not result.can_retry
    assert object_status("customer", "Customers", failed, False, None, 0, NOW).can_retry


def test_query_args_for_links():
    query = CompaniesQuery(state="failing", search="acme", page=3)
    assert query.args(page=1) == {"state": "failing", "q": "acme"}
    assert CompaniesQuery().args(page=2) == {"page": "2"}


@pytest.mark.parametrize("args", [{"state": "nope"}, {"page": "-1"}, {"page": "1.5"}, {"q": "x" * 201}])
def test_bad_query_args(args):
    with pytest.raises(OverviewError):
        CompaniesQuery.from_args(args)


INTERVAL = timedelta(minutes=5)


def _synced(last_success, done=True):
    return [object_status(kind, kind, _state(SyncStatus.SUCCEEDED, done=done, last_successful_sync_time=last_success),
                          False, None, 0, NOW) for kind in ("customer", "invoice")]


@pytest.mark.parametrize("objects, scheduled, expected", [
    # Before the scheduler's first tick: the oldest last success plus the interval...
    (_synced(NOW - timedelta(minutes=2)), None, NextSync("at", NOW + timedelta(minutes=3))),
    # ...or due at the next tick when that is past.
    (_synced(NOW - timedelta(minutes=9)), None, NextSync("due")),
    # Once the scheduler gave the company a slot, that slot (past: due).
    (_synced(NOW - timedelta(minutes=2)), NOW + timedelta(minutes=1), NextSync("at", NOW + timedelta(minutes=1))),
    (_synced(NOW - timedelta(minutes=2)), NOW - timedelta(seconds=1), NextSync("due")),
    # Incremental syncs start after the initial backfill, whatever the slot says.
    (_synced(None, done=False), NOW + timedelta(minutes=1), NextSync("after_backfill")),
    ([object_status("customer", "Customers", None, True, None, 0, NOW)], None, NextSync("after_backfill")),
])
def test_next_sync_of_a_connected_company(objects, scheduled, expected):
    assert next_sync(ConnectionState.CONNECTED, scheduled, objects, INTERVAL, NOW) == expected


@pytest.mark.parametrize("state", [ConnectionState.RECONNECT_REQUIRED, ConnectionState.DISCONNECTED])
def test_no_next_sync_for_a_company_that_is_not_connected(state):
    assert next_sync(state, NOW + timedelta(minutes=1), _synced(NOW), INTERVAL, NOW) is None


def test_next_sync_text():
    assert next_sync_html(NextSync("due"), NOW) == "Due now"
    assert next_sync_html(NextSync("after_backfill"), NOW) == "After the backfill"
    assert ">in 3 min</time>" in next_sync_html(NextSync("at", NOW + timedelta(minutes=3)), NOW)
    assert next_sync_html(None, NOW) == ""
