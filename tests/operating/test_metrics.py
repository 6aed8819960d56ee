"""GET /metrics: bearer-only, Prometheus' text format, one scrape for web and worker processes."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboard.extensions import db
from dashboard.models import RunStatus, SyncRun
from dashboard.services import sync_jobs
from dashboard.services.metrics import instruments, multiprocess
from tests.support.live import FAST_KNOBS, running_consumer
from tests.sync.conftest import connect, generate

ROOT = Path(__file__).resolve().parents[2]


def scrape(client, token: str | None) -> dict[tuple[str, tuple], float]:
    """GET /metrics with ``token``; return every sample as {(name, sorted labels): value}."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def pids_of(samples, name: str) -> set[int]:
    return {int(dict(labels)["pid"]) for (sample, labels) in samples if sample == name}


def token_of(app) -> str:
    return app.config["SETTINGS"].metrics_token


# -- who may scrape ----------------------------------------------------------------------------

def test_metrics_answer_only_the_bearer_of_the_token(app, client):
    token = token_of(app)
    assert token and len(token) >= 32  # generated outside production, into the instance folder
    assert (Path(app.instance_path) / "metrics-token").read_text() == token
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {token}"},
                    {"Authorization": f"Bearer {token}x"}, {"Authorization": "Bearer"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers  # not a redirect to the sign-in page
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "qbosync_" not in refused.get_data(as_text=True)
    samples = scrape(client, token)
    assert value(samples, "qbosync_companies", state="connected") == 0
    assert value(samples, "qbosync_queue_depth", kind="backfill") == 0
    assert os.getpid() in pids_of(samples, "qbosync_process_start_time_seconds")


def test_without_a_metrics_token_the_page_does_not_exist(app, client):
    settings = app.config["SETTINGS"]
    app.config["SETTINGS"] = dataclasses.replace(settings, metrics_token=None)  # production without one
    try:
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", headers={"Authorization": f"Bearer {token_of(app) or 'x'}"}).status_code == 404
    finally:
        app.config["SETTINGS"] = settings


# -- what one scrape carries -------------------------------------------------------------------

def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        db.session.rollback()
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _status(run_id: int) -> RunStatus:
    return db.session.get(SyncRun, run_id, populate_existing=True).status


def _start_worker(server, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, **{k: str(v) for k, v in FAST_KNOBS.items()}, **server.urls(), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "-w", "2",
                                 "--no-periodic"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_one_scrape_carries_the_web_process_and_a_worker_process(qbo_app, sandbox_server, client, tmp_path):
    sim = sandbox_server.sim
    here, there = sim.generate(seed=41, companies=2, customers=30, invoices=40)
    for realm in (here, there):
        connect(sim, realm)
    token = token_of(qbo_app)
    before = scrape(client, token)

    # One backfill in this (the web) process, on a consumer thread...
    run_here = sync_jobs.request_initial_sync(here)
    queued = scrape(client, token)
    assert value(queued, "qbosync_queue_depth", kind="backfill") == 1
    assert value(queued, "qbosync_oldest_queued_run_age_seconds") >= 0
    assert value(queued, "qbosync_companies", state="connected") == 2
    with running_consumer(qbo_app, workers=2):
        _wait_for(lambda: _status(run_here.id) == RunStatus.SUCCEEDED, 60, "the backfill in this process")

    # ...and one in a worker process of its own, scraped while it still runs.
    worker = _start_worker(sandbox_server, tmp_path / "worker.log")
    try:
        run_there = sync_jobs.request_initial_sync(there)
        _wait_for(lambda: _status(run_there.id) == RunStatus.SUCCEEDED, 90, "the backfill in the worker")
        after = scrape(client, token)
    finally:
        _stop(worker)
    log = (tmp_path / "worker.log").read_text()

    assert worker.pid in pids_of(after, "qbosync_worker_threads"), log
    assert value(after, "qbosync_worker_threads", pid=str(worker.pid)) == 2
    assert {os.getpid(), worker.pid} <= pids_of(after, "qbosync_process_start_time_seconds")

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    # Both processes' records add up in one series (no realm label by default).
    assert grew("qbosync_records_synced_total", object_type="customer") == 60
    assert grew("qbosync_records_synced_total", object_type="invoice") == 80
    assert grew("qbosync_sync_runs_total", kind="backfill", outcome="succeeded") == 2
    assert grew("qbosync_sync_run_duration_seconds_count", kind="backfill", outcome="succeeded") == 2
    assert grew("qbosync_intuit_requests_total", endpoint="query", status="200") >= 4
    assert grew("qbosync_intuit_metered_calls_total", endpoint="query") >= 4
    assert grew("qbosync_limiter_wait_seconds_count") >= 4
    assert not [key for key in after if ("realm", here) in key[1] or ("realm", there) in key[1]]
    assert value(after, "qbosync_queue_depth", kind="backfill") == 0
    assert value(after, "qbosync_oldest_queued_run_age_seconds") == 0
    # The governor's figures: this process's backfill at least is counted, against the budget.
    assert value(after, "qbosync_metered_calls_month") >= 4
    assert value(after, "qbosync_metered_calls_projected") >= value(after, "qbosync_metered_calls_month")
    assert value(after, "qbosync_metered_calls_budget") == 500_000
    assert value(after, "qbosync_scheduled_syncs_paused") == 0


# -- the parts, with plain values --------------------------------------------------------------

def test_a_realm_label_only_when_asked_for():
    default, per_company = instruments.build(per_company=False), instruments.build(per_company=True)
    for name in ("records_synced", "records_deleted", "intuit_requests", "intuit_metered_calls", "limiter_wait"):
        assert "realm" not in getattr(default, name)._labelnames, name
        assert "realm" in getattr(per_company, name)._labelnames, name
    # Low-volume series never carry it.
    assert "realm" not in per_company.runs._labelnames and "realm" not in per_company.token_refreshes._labelnames


def _files(directory: Path, pid: int) -> list[Path]:
    made = [directory / f"counter_{pid}.db", directory / f"histogram_{pid}.db",
            directory / f"gauge_liveall_{pid}.db"]
    for path in made:
        path.write_bytes(b"")
    return made


def test_start_up_cleaning_of_the_directory(tmp_path):
    me, live, dead = 100, 200, 300
    mine = _files(tmp_path, me)
    # Another process still writes: a dead one's counters stay (sums never go back), its live gauge goes.
    _files(tmp_path, live)
    gone = _files(tmp_path, dead)
    assert multiprocess.clean(tmp_path, me, is_alive=lambda pid: pid == live) == [dead]
    assert set(multiprocess.writers(tmp_path)[dead]) == set(gone[:2])
    assert len(multiprocess.writers(tmp_path)[live]) == 3
    # Nobody else is live (the deployment starts again): what they left goes, ours stays.
    assert sorted(multiprocess.clean(tmp_path, me, is_alive=lambda pid: False)) == [live, dead]
    assert {pid: set(files) for pid, files in multiprocess.writers(tmp_path).items()} == {me: set(mine)}


@pytest.mark.parametrize("header, token", [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None),
                                           ("Bearer", None), ("", None)])
def test_bearer_token_parsing(header, token):
    from dashboard.views.metrics import bearer_token

    assert bearer_token(header) == token
