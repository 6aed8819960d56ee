"""The governor end to end, against the simulator over HTTP: counting, stretch, pause, resume.

The syncs are real (the simulator serves them); the governor's ``now`` is injected, so
the scheduler's later minutes and the next month are reached without waiting.
"""
from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select, update

from dashboard.extensions import db
from dashboard.models import Company, RunStatus, SyncRun, utcnow
from dashboard.sync import budget as rules
from sandbox.testing import SandboxServer
from sandbox.webhooks import sign
from tests.budget.conftest import set_budget
from tests.conftest import ENV
from tests.support.live import pointed_at_simulator
from tests.sync.conftest import connect

FIVE_MIN = timedelta(minutes=5)


def _served_metered_calls(sim, realms) -> int:
    """What the simulator answered, by its own log (a batch weighs its items; 429s served nothing)."""
    return sum(entry["weight"] for realm in realms for entry in sim.request_log(realm)
               if entry["status"] not in (None, 429))


def _run_queued() -> None:
    from dashboard.services import sync_runner

    for run_id in db.session.execute(select(SyncRun.id).where(SyncRun.status == RunStatus.QUEUED)).scalars().all():
        sync_runner.execute_run(run_id)
    db.session.remove()


def _webhook(client, realm: str) -> None:
    body = json.dumps({"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [
        {"name": "Customer", "id": "1", "operation": "Update", "lastUpdated": "2026-11-20T10:00:00.000Z"}]}}]}).encode()
    response = client.post("/v1/webhooks/qbo", data=body, content_type="application/json",
                           headers={"intuit-signature": sign(body, ENV["QBO_WEBHOOK_VERIFIER_TOKEN"])})
    assert response.status_code == 200, response.get_data(as_text=True)


def _text(response) -> str:
    """The page's text, without its tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


BANNER = "Scheduled syncs are paused: the API budget is spent"


def test_tiny_budget_stretches_then_pauses_then_resumes(app, signed_in, fresh_budget):
    from dashboard.services import budget, sync_jobs, webhooks
    from dashboard.services.sync_schedule import schedule_due_companies

    with SandboxServer(companies=3, customers=4, invoices=4, seed=11) as server, \
            pointed_at_simulator(app, server.url):
        sim = server.sim
        pushed, *idle = realms = sim.realms()

        # Three companies connect and backfill against the simulator; every call is counted.
        with app.app_context():
            for realm in realms:
                connect(sim, realm)
                sync_jobs.request_initial_sync(realm)
            _run_queued()
        _webhook(signed_in, pushed)
        with app.app_context():
            webhooks.drain()  # its sync stays queued: the last call was made before the webhook
            webhook_at = db.session.execute(select(Company.last_webhook_at)
                                            .where(Company.source_id == pushed)).scalar_one()
            # Say it came at the end of its hour, so it is still "recent" (within 24 h) at every
            # instant the governor is asked below, whatever the wall clock's minute.
            webhook_at = rules.hour_start(webhook_at) + timedelta(minutes=59)
            db.session.execute(update(Company).where(Company.source_id == pushed).values(last_webhook_at=webhook_at))
            db.session.commit()
            snap = budget.snapshot()
            served = _served_metered_calls(sim, realms)
            assert served > 0 and snap.used == served
            top = budget.overview().consumers
            assert {c.realm for c in top} == set(realms) and sum(c.calls for c in top) == served
            assert not snap.over_projection

        # A budget the month cannot afford at this pace, not yet spent: the governor stretches.
        # This one affords the idle two every 30 minutes once the pushed one syncs daily.
        # The governor's clock runs a day ahead, past the burst of the backfills (the rate
        # window starts after their hour) while the webhook is still recent: what remains to
        # spend is the schedule itself.
        t0 = rules.hour_start(webhook_at) + timedelta(hours=24)
        slowest = rules.MAX_INTERVAL / FIVE_MIN
        set_budget(app, snap.used + round(rules.seconds_left(t0) * (
            rules.cycle_rate(2, FIVE_MIN, 6.0) + rules.cycle_rate(1, FIVE_MIN, slowest))))
        with app.app_context():
            assert schedule_due_companies(t0) == []  # first slots, spread over the interval
            pace = budget.current_pace()
            assert pace.slowed and pace.base == FIVE_MIN
            # Webhooks bring the pushed company's changes: it is stretched first, to the slowest.
            assert pace.webhook_interval == timedelta(hours=24)
            assert timedelta(minutes=29) < pace.idle_interval < timedelta(minutes=31)  # just enough
            snap = budget.snapshot(t0)
            assert not snap.paused and pace.projected > snap.budget  # the schedule alone would overspend

            t1 = t0 + FIVE_MIN
            assert sorted(schedule_due_companies(t1)) == sorted(realms)  # each one's slot came
            assert schedule_due_companies(t1 + FIVE_MIN + timedelta(seconds=1)) == []  # not every 5 min now
            later = t1 + pace.idle_interval + timedelta(seconds=1)
            assert sorted(schedule_due_companies(later)) == sorted(idle)  # the pushed company waits a day
        page = _text(signed_in.get(f"/companies/{pushed}"))
        assert "Slowed to every 24 h" in page and "Webhooks arrive for this company" in page
        page = _text(signed_in.get(f"/companies/{idle[0]}"))
        assert "Slowed to every" in page and "over the budget of" in page
        page = _text(signed_in.get("/budget"))
        assert "Slowed" in page and f"{snap.budget:,}" in page and BANNER not in page

        # The budget itself is reached: scheduled syncs pause, with a banner on every page.
        with app.app_context():
            _run_queued()
            used = budget.snapshot().used
        set_budget(app, used)
        for url in ("/", "/budget", f"/companies/{pushed}"):
            assert BANNER in _text(signed_in.get(url)), url
        with app.app_context():
            assert budget.snapshot().paused
            assert schedule_due_companies(later + timedelta(days=2)) == []
            assert db.session.execute(select(SyncRun).where(SyncRun.status == RunStatus.QUEUED)).first() is None
        # An operator's click still runs, and says it spends over the budget.
        response = signed_in.post(f"/companies/{idle[0]}/resync", data={"csrf_token": signed_in.csrf},
                                  follow_redirects=True)
        assert "Resync queued. It spends metered calls over this month" in _text(response)
        with app.app_context():
            _run_queued()
            assert budget.snapshot().used > used

            # The month rolls over: January's count starts from zero, scheduling resumes.
            january = budget.snapshot().renews_at + timedelta(minutes=1)
            assert not budget.snapshot(january).paused
            assert schedule_due_companies(january) != []
            _run_queued()

        # Or the budget is raised: the banner goes and the normal pace returns.
        set_budget(app, 10_000_000)
        assert BANNER not in _text(signed_in.get("/"))
        with app.app_context():
            now = utcnow() + timedelta(days=3)
            schedule_due_companies(now)
            pace = budget.current_pace()
            assert not pace.slowed
            # Slots the slow pace put a day ahead were brought back within the normal interval.
            slots = db.session.execute(select(Company.next_sync_at)).scalars().all()
            assert all(slot <= now + FIVE_MIN for slot in slots)
        assert "At the normal pace" in _text(signed_in.get("/budget"))


def test_backfills_keep_the_configured_interval_while_others_are_slowed(app, fresh_budget):
    from dashboard.services import budget
    from dashboard.services.sync_schedule import schedule_due_companies
    from tests.dashboard import factories as make

    t0 = utcnow()
    with app.app_context():
        make.company("100", "Synced", next_sync_at=None)
        make.healthy("100")
        make.company("200", "Backfilling", next_sync_at=None)  # no type has finished its backfill
        set_budget(app, 1)  # nothing used yet, but nothing to spare: the slowest pace
        assert schedule_due_companies(t0) == []
        assert budget.current_pace().idle_interval == rules.MAX_INTERVAL
        t1 = t0 + FIVE_MIN
        assert sorted(schedule_due_companies(t1)) == ["100", "200"]
        slots = dict(db.session.execute(select(Company.source_id, Company.next_sync_at)).all())
        assert t1 + timedelta(hours=23) < slots["100"] <= t1 + rules.MAX_INTERVAL
        assert slots["200"] <= t1 + FIVE_MIN
