"""`flask sync now` runs what is waiting: it takes over a queued run, follows a running one.

No worker runs in these tests: a run "running elsewhere" is one the test claimed as a
worker would, and the follower's pause is where the test lets that worker progress.
"""
from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import select, update

from dashboard import cli
from dashboard.extensions import db
from dashboard.models import RunKind, RunStatus, SyncRun, utcnow
from dashboard.queue import huey
from dashboard.services import sync_foreground, sync_jobs, sync_runner, type_switches

from .conftest import assert_equal_to_source, connect, generate


def _runs() -> list[SyncRun]:
    db.session.rollback()
    return db.session.execute(select(SyncRun).order_by(SyncRun.id)).scalars().all()


def _connected(sim, seed: int) -> tuple[str, SyncRun]:
    """A company connected as the OAuth callback leaves it: its backfill queued, no worker."""
    realm = generate(sim, seed=seed, customers=30, invoices=45)
    connect(sim, realm)
    run = sync_jobs.request_initial_sync(realm, trigger="connect")
    assert (run.kind, run.status) == (RunKind.BACKFILL, RunStatus.QUEUED) and huey.pending_count() == 1
    return realm, run


def _as_a_worker(run_id: int, *steps):
    """A pause for the follower: each call is one step of the worker that holds ``run_id``."""
    pending = list(steps)

    def pause(seconds: float) -> None:
        assert seconds > 0 and pending, "the follower kept waiting after the run ended"
        values = pending.pop(0)
        with db.engine.begin() as conn:  # the worker's own connection, as from another process
            conn.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))

    return pause


def test_sync_now_takes_over_the_queued_backfill(qbo_app, sandbox_server, runner):
    sim = sandbox_server.sim
    realm, queued = _connected(sim, seed=71)
    result = runner.invoke(args=["sync", "now", "--company", realm])
    assert result.exit_code == 0, result.output
    assert f"{realm} customer: 30 / 30 records" in result.output and "invoice: backfill, 45 written" in result.output
    assert_equal_to_source(sim, realm)
    # The queued run itself ran here (claimed once), not a second one.
    [run] = _runs()
    assert (run.id, run.status, run.trigger, run.attempts) == (queued.id, RunStatus.SUCCEEDED, "connect", 1)
    assert run.records_written == 75
    # Its task, still in the queue, finds nothing to claim when a worker starts.
    assert sync_runner.execute_run(queued.id) is None and _runs()[0].attempts == 1


def test_sync_now_widens_the_queued_run_to_its_request(qbo_app, sandbox_server, runner):
    sim = sandbox_server.sim
    realm, queued = _connected(sim, seed=72)
    result = runner.invoke(args=["sync", "now", "--company", realm, "--full"])
    assert result.exit_code == 0 and "full resync" in result.output, result.output
    [run] = _runs()
    assert (run.id, run.kind, run.status) == (queued.id, RunKind.FULL_RESYNC, RunStatus.SUCCEEDED)


@pytest.mark.parametrize("outcome, exit_code", [(RunStatus.SUCCEEDED, 0), (RunStatus.FAILED, 1)])
def test_a_run_running_elsewhere_is_followed_to_its_end(qbo_app, sandbox_server, runner, monkeypatch,
                                                        outcome, exit_code):
    realm, queued = _connected(sandbox_server.sim, seed=73)
    assert sync_runner.claim(queued.id) is not None  # a worker took it
    pause = _as_a_worker(queued.id, {"records_written": 30},
                         {"status": outcome, "records_written": 75, "finished_at": utcnow(),
                          "error_message": None if outcome == RunStatus.SUCCEEDED else "Intuit kept failing"})
    monkeypatch.setattr(cli, "sync_now", partial(sync_foreground.sync_now, pause=pause))
    result = runner.invoke(args=["sync", "now", "--company", realm])
    assert result.exit_code == exit_code, result.output
    assert f"{realm} run #{queued.id}: 0 records" in result.output
    assert f"{realm} run #{queued.id}: 30 records" in result.output
    if outcome == RunStatus.SUCCEEDED:
        assert f"done (run #{queued.id}, run by a worker)" in result.output
    else:
        assert f"FAILED (run elsewhere): run #{queued.id} failed: Intuit kept failing" in result.output
    assert [(r.id, r.status) for r in _runs()] == [(queued.id, outcome)]  # nothing run here


def test_no_wait_reports_the_running_run(qbo_app, sandbox_server, runner):
    realm, queued = _connected(sandbox_server.sim, seed=74)
    assert sync_runner.claim(queued.id) is not None
    result = runner.invoke(args=["sync", "now", "--company", realm, "--no-wait"])
    assert result.exit_code == 0, result.output
    assert f"run #{queued.id} is running in a worker; not waiting" in result.output
    [run] = _runs()
    assert run.status == RunStatus.RUNNING and not (run.checkpoint or {}).get("followup")
    # A request it does not cover (a full resync) is left to the worker, after this run.
    again = runner.invoke(args=["sync", "now", "--company", realm, "--no-wait", "--full"])
    assert again.exit_code == 0, again.output
    [run] = _runs()
    assert run.checkpoint["followup"] == {"kind": "full_resync", "object_type": None}


def test_a_request_the_running_run_does_not_cover_runs_here_after_it(qbo_app, sandbox_server):
    sim = sandbox_server.sim
    realm, queued = _connected(sim, seed=75)
    assert sync_runner.claim(queued.id) is not None
    pause = _as_a_worker(queued.id, {"status": RunStatus.SUCCEEDED, "finished_at": utcnow()})
    outcome = sync_foreground.sync_now(realm, full=True, pause=pause)
    assert outcome.ok and not outcome.elsewhere and outcome.summary.records == {"customer": 30, "invoice": 45}
    runs = _runs()
    assert [(r.kind, r.status, r.trigger) for r in runs] == [
        (RunKind.BACKFILL, RunStatus.SUCCEEDED, "connect"), (RunKind.FULL_RESYNC, RunStatus.SUCCEEDED, "cli")]
    assert runs[1].started_at >= runs[0].finished_at  # one after the other, never both at once
    assert_equal_to_source(sim, realm)


def test_a_run_whose_worker_died_is_taken_over(qbo_app, sandbox_server, runner):
    sim = sandbox_server.sim
    realm, queued = _connected(sim, seed=76)
    lease = timedelta(seconds=sync_runner.lease_seconds())
    # Claimed by a worker that then died: its lease ran out a minute ago.
    assert sync_runner.claim(queued.id, now=utcnow() - lease - timedelta(minutes=1)) is not None
    result = runner.invoke(args=["sync", "now", "--company", realm])
    assert result.exit_code == 0, result.output
    [run] = _runs()
    assert (run.id, run.status, run.attempts) == (queued.id, RunStatus.SUCCEEDED, 2)
    assert_equal_to_source(sim, realm)


def test_claim_takes_a_queued_run_or_an_expired_lease_only(qbo_app, sandbox_server):
    realm, queued = _connected(sandbox_server.sim, seed=77)
    now = utcnow()
    lease = timedelta(seconds=sync_runner.lease_seconds())
    assert sync_runner.claim(queued.id, now=now).lease_expires_at == now + lease
    assert sync_runner.claim(queued.id, now=now + lease - timedelta(seconds=1)) is None  # still held
    taken = sync_runner.claim(queued.id, now=now + lease)  # the lease ran out: taken over
    assert taken is not None and taken.attempts == 2


def test_a_worker_claiming_first_is_followed(qbo_app, sandbox_server, monkeypatch):
    realm, queued = _connected(sandbox_server.sim, seed=78)
    real_claim = sync_runner.claim

    def worker_first(run_id, now=None):
        real_claim(run_id)  # a worker's claim lands between our read and ours
        return real_claim(run_id)

    monkeypatch.setattr(sync_runner, "claim", worker_first)
    pause = _as_a_worker(queued.id, {"status": RunStatus.SUCCEEDED, "finished_at": utcnow()})
    outcome = sync_foreground.sync_now(realm, pause=pause)
    assert (outcome.run_id, outcome.status, outcome.elsewhere) == (queued.id, RunStatus.SUCCEEDED, True)
    assert len(_runs()) == 1


def test_object_may_be_given_several_times(qbo_app, sandbox_server, runner):
    sim = sandbox_server.sim
    realm = generate(sim, seed=79, customers=10, invoices=12)
    connect(sim, realm)
    # Every type named: one run of them all.
    result = runner.invoke(args=["sync", "now", "--company", realm, "--object", "invoice", "--object", "customer"])
    assert result.exit_code == 0, result.output
    assert [(r.object_type, r.status) for r in _runs()] == [(None, RunStatus.SUCCEEDED)]
    # Some of the types it syncs named (vendors are switched on too, never synced here): one
    # run each, in sync order whatever the order given.
    type_switches.set_enabled(realm, "vendor", True)
    result = runner.invoke(args=["sync", "now", "--company", realm, "--object", "invoice", "--object", "customer"])
    assert result.exit_code == 0, result.output
    assert [(r.object_type, r.status) for r in _runs()][1:] == [
        ("customer", RunStatus.SUCCEEDED), ("invoice", RunStatus.SUCCEEDED)]
