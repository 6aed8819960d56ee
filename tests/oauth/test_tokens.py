"""Fresh tokens: refresh once under a lock, rotation persisted, invalid_grant, disconnect."""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from dashboard.integrations.errors import TokenRefreshFailed
from dashboard.models import (
    Company, ConnectionState, Customer, RunKind, RunStatus, SyncRun, SyncState, utcnow,
)
from dashboard.services import connections, token_store, tokens
from dashboard.services.sync_jobs import request_sync
from dashboard.services.sync_runner import execute_run
from dashboard.sync.errors import ReconnectRequired, TokenUnavailable
from dashboard.sync.specs import SPECS
from tests.oauth.conftest import connect, expire_access, open_stored, refresh_calls, stored_company


def _grant(sim, realm):
    return next(g for g in sim.oauth.grants.values() if g.realm == realm and not g.revoked)


def test_fresh_token_is_returned_without_refreshing(company, qbo, db_session, app):
    token = tokens.get_access_token(company)
    assert token in _grant(qbo.sim, company).access
    assert tokens.get_access_token(company) == token
    assert refresh_calls(qbo.sim, company) == 0


def test_due_token_is_refreshed_once_and_rotated_refresh_token_saved(company, qbo, db_session, app):
    before = stored_company(db_session, company)
    old_access, old_refresh = open_stored(app, before, "access"), open_stored(app, before, "refresh")
    old_version = before.token_version
    expire_access(db_session, company, utcnow() + timedelta(minutes=4))  # under the 5-minute margin
    token = tokens.get_access_token(company)
    assert token != old_access and refresh_calls(qbo.sim, company) == 1
    after = stored_company(db_session, company)
    assert after.token_version == old_version + 1
    grant = _grant(qbo.sim, company)
    assert open_stored(app, after, "refresh") == grant.refresh_token != old_refresh
    assert open_stored(app, after, "access") == token
    assert after.access_token_expires_at - utcnow() > timedelta(minutes=55)
    # The next call reuses it; a strict simulator (no grace) would refuse a stale refresh token.
    assert tokens.get_access_token(company) == token
    expire_access(db_session, company)
    assert tokens.get_access_token(company) not in (token, old_access)
    assert refresh_calls(qbo.sim, company) == 2
    assert qbo.sim.token_requests(company)["requests"].get("refresh_token_failed", 0) == 0


def test_threads_asking_at_expiry_cause_one_refresh(company, qbo, db_session, app):
    expire_access(db_session, company)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def ask():
        with app.app_context():
            barrier.wait()
            results.append(tokens.get_access_token(company))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 8 and len(set(results)) == 1
    assert refresh_calls(qbo.sim, company) == 1


@pytest.mark.services
def test_eight_processes_asking_at_expiry_cause_one_refresh(company, qbo, db_session, app):
    expire_access(db_session, company)
    env = {**os.environ, **qbo.urls(), "QBO_REDIRECT_URI": app.config["SETTINGS"].qbo_redirect_uri}
    from tests.oauth.herd import ask_for_token

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=ask_for_token, args=(env, company, barrier, results)) for _ in range(8)]
    for p in procs:
        p.start()
    answers = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(kind == "ok" for kind, _ in answers), answers
    assert len({token for _, token in answers}) == 1
    assert refresh_calls(qbo.sim, company) == 1
    stored = stored_company(db_session, company)
    assert open_stored(app, stored, "access") == answers[0][1]
    assert open_stored(app, stored, "refresh") == _grant(qbo.sim, company).refresh_token


@pytest.mark.services
def test_access_token_is_cached_encrypted_in_redis_until_five_minutes_before_expiry(company, qbo, db_session):
    token = tokens.get_access_token(company)
    cache = token_store.token_cache()
    client = cache.client
    value = client.get(cache.key(company))
    assert value and token.encode() not in value
    assert 54 * 60 < client.ttl(cache.key(company)) <= 55 * 60
    # Served from the cache: the database row can change without the caller seeing it.
    db_session.execute(update(Company).values(access_token_expires_at=utcnow()))
    db_session.commit()
    assert tokens.get_access_token(company) == token and refresh_calls(qbo.sim, company) == 0


def test_strict_rotation_soak_with_random_concurrency(company, qbo, db_session, app):
    """R2, small: 200 rounds against a strict Intuit (a superseded refresh token dies at
    once); each round 1-6 threads enter at once by the three ways a refresh starts (due
    token, 401, periodic): one refresh per round, never invalid_grant, the chain intact."""
    rng = random.Random(7)
    entries = {"due": lambda stale: tokens.get_access_token(company),
               "401": lambda stale: tokens.force_refresh(company, stale),
               "periodic": lambda stale: tokens.refresh_due_tokens() and None}
    for round_number in range(1, 201):
        stale = tokens.get_access_token(company)
        expire_access(db_session, company)
        chosen = [rng.choice(list(entries)) for _ in range(rng.randint(1, 6))]
        barrier, answers = threading.Barrier(len(chosen)), []

        def ask(entry: str) -> None:
            with app.app_context():
                barrier.wait(10)
                answers.append(entries[entry](stale))

        threads = [threading.Thread(target=ask, args=(entry,)) for entry in chosen]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(answers) == len(chosen) and len({a for a in answers if a is not None}) <= 1, chosen
        assert refresh_calls(qbo.sim, company) == round_number, chosen
    requests = qbo.sim.token_requests(company)["requests"]
    assert requests.get("refresh_token_failed", 0) == 0
    stored = stored_company(db_session, company)
    assert stored.connection_state is ConnectionState.CONNECTED
    assert open_stored(app, stored, "refresh") == _grant(qbo.sim, company).refresh_token


def test_force_refresh_after_401_refreshes_once(company, qbo, db_session):
    stale = tokens.get_access_token(company)
    fresh = tokens.force_refresh(company, stale)
    assert fresh != stale and refresh_calls(qbo.sim, company) == 1
    # A second caller that saw the same 401 gets the new token, with no second refresh.
    assert tokens.force_refresh(company, stale) == fresh
    assert refresh_calls(qbo.sim, company) == 1
    assert tokens.get_access_token(company) == fresh


def test_revoked_grant_marks_reconnect_required_without_a_retry_storm(company, qbo, db_session):
    run, created = request_sync(company, kind=RunKind.INCREMENTAL, trigger="schedule")
    assert created
    qbo.sim.revoke_grant(company)
    expire_access(db_session, company)
    # The periodic refresher meets the dead grant; its caller cancels the company's syncs.
    assert connections.refresh_tokens_ahead().needs_reconnecting == [company]
    with pytest.raises(ReconnectRequired, match="Reconnect"):
        tokens.get_access_token(company)
    stored = stored_company(db_session, company)
    assert stored.connection_state is ConnectionState.RECONNECT_REQUIRED
    assert "invalid_grant" in stored.connection_error
    assert stored.access_token is None and stored.refresh_token is None
    assert db_session.get(SyncRun, run.id).status is RunStatus.CANCELLED
    for _ in range(20):
        with pytest.raises(ReconnectRequired):
            tokens.get_access_token(company)
        with pytest.raises(ReconnectRequired):
            tokens.force_refresh(company, "whatever")
    assert qbo.sim.token_requests(company)["requests"]["refresh_token"] == 1


def test_the_token_service_marks_a_dead_grant_and_leaves_the_syncs_to_its_caller(company, qbo, db_session):
    run, created = request_sync(company, kind=RunKind.INCREMENTAL, trigger="schedule")
    assert created
    qbo.sim.revoke_grant(company)
    expire_access(db_session, company)
    with pytest.raises(ReconnectRequired, match="invalid_grant"):
        tokens.get_access_token(company)
    assert stored_company(db_session, company).connection_state is ConnectionState.RECONNECT_REQUIRED
    assert db_session.get(SyncRun, run.id).status is RunStatus.QUEUED


def test_the_run_that_meets_a_dead_grant_fails_once_and_cancels_the_company_syncs(company, qbo, db_session):
    run, created = request_sync(company, kind=RunKind.INCREMENTAL, trigger="schedule")
    assert created
    # A second active run of a company cannot even be written: the database refuses it.
    db_session.add(SyncRun(company_source_id=company, kind=RunKind.BACKFILL, status=RunStatus.QUEUED, trigger="test"))
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()
    # A change notified while the run runs asks it for a follow-up: the dead grant must not
    # leave that queued either.
    run.checkpoint = {"followup": {"kind": "incremental", "object_type": None}}
    db_session.commit()
    qbo.sim.revoke_grant(company)
    expire_access(db_session, company)
    with pytest.raises(ReconnectRequired, match="invalid_grant") as raised:
        execute_run(run.id)
    assert raised.value.company_source_id == company  # one class, from the token service to the run
    db_session.expire_all()
    failed = db_session.get(SyncRun, run.id)
    assert (failed.status, failed.attempts) == (RunStatus.FAILED, 1) and "Reconnect" in failed.error_message
    active = db_session.execute(select(SyncRun.id).where(
        SyncRun.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))).scalars().all()
    assert active == []  # no follow-up queued
    assert stored_company(db_session, company).connection_state is ConnectionState.RECONNECT_REQUIRED
    assert refresh_calls(qbo.sim, company) == 1


def test_provider_outage_is_retryable_and_changes_nothing(company, qbo, db_session):
    stored = stored_company(db_session, company)
    before = (stored.refresh_token, stored.token_version)
    expire_access(db_session, company)
    qbo.sim.inject_fault("503", target="oauth", count=1)
    with pytest.raises(TokenRefreshFailed, match="HTTP 503") as raised:
        tokens.get_access_token(company)
    assert isinstance(raised.value, TokenUnavailable) and raised.value.retryable  # a sync retries it later
    after = stored_company(db_session, company)
    assert (after.connection_state, after.refresh_token, after.token_version) == \
        (ConnectionState.CONNECTED, *before)
    assert tokens.get_access_token(company)  # the next attempt works


@pytest.mark.parametrize("column", ["access_token", "refresh_token"])
def test_ciphertext_copied_to_another_company_is_refused(signed_in, qbo, db_session, column):
    """S4: A's ciphertext in B's row is refused for B, B is stopped, A keeps working."""
    first, second = qbo.sim.realms()
    connect(signed_in, first)
    connect(signed_in, second)
    qbo.sim.reset_stats(second)  # connecting reads CompanyInfo once; count only what follows
    qbo.sim.oauth.reset_stats()
    stolen = getattr(stored_company(db_session, first), column)
    db_session.execute(update(Company).where(Company.source_id == second).values({column: stolen}))
    db_session.commit()
    expire_access(db_session, second)  # the refresh path opens both tokens
    with pytest.raises(ReconnectRequired, match="belongs to another company"):
        tokens.get_access_token(second)
    assert stored_company(db_session, second).connection_state is ConnectionState.RECONNECT_REQUIRED
    assert qbo.sim.stats(second)["requests"] == 0 and refresh_calls(qbo.sim, second) == 0
    assert stored_company(db_session, first).connection_state is ConnectionState.CONNECTED
    assert tokens.get_access_token(first)


def test_periodic_refresh_acts_only_on_tokens_near_their_end(signed_in, qbo, db_session):
    first, second = qbo.sim.realms()
    connect(signed_in, first)
    connect(signed_in, second)
    qbo.sim.oauth.reset_stats()
    expire_access(db_session, first, utcnow() + timedelta(minutes=8))
    report = tokens.refresh_due_tokens()
    assert (report.refreshed, report.failed, report.reconnect_required) == (1, 0, 0)
    assert refresh_calls(qbo.sim, first) == 1 and refresh_calls(qbo.sim, second) == 0
    db_session.execute(update(Company).where(Company.source_id == second)
                       .values(refresh_token_expires_at=utcnow() + timedelta(days=10)))
    db_session.commit()
    assert tokens.refresh_due_tokens().refreshed == 1
    assert refresh_calls(qbo.sim, second) == 1
    assert stored_company(db_session, second).refresh_token_expires_at - utcnow() > timedelta(days=99)
    assert tokens.refresh_due_tokens().refreshed == 0


def test_refresh_reason_rules():
    now = utcnow()
    assert tokens.refresh_reason(None, None, now)
    assert tokens.refresh_reason(now + timedelta(minutes=10), now + timedelta(days=90), now)
    assert tokens.refresh_reason(now + timedelta(minutes=11), now + timedelta(days=90), now) is None
    assert "100-day" in tokens.refresh_reason(now + timedelta(minutes=50), now + timedelta(days=30), now)
    assert tokens.refresh_reason(now + timedelta(minutes=50), None, now) is None


def test_disconnect_revokes_erases_cancels_and_keeps_data(company, qbo, db_session):
    run, _ = request_sync(company, kind=RunKind.INCREMENTAL, trigger="schedule")
    db_session.add(Customer(company_source_id=company, source_id="7", display_name="Kept"))
    db_session.commit()
    tokens.get_access_token(company)
    connections.disconnect(company)
    stored = stored_company(db_session, company)
    assert stored.connection_state is ConnectionState.DISCONNECTED and stored.disconnected_at
    assert (stored.access_token, stored.refresh_token) == (None, None)
    assert all(g.revoked for g in qbo.sim.oauth.grants.values() if g.realm == company)
    assert db_session.get(SyncRun, run.id).status is RunStatus.CANCELLED
    assert db_session.execute(select(Customer)).scalar_one().display_name == "Kept"
    with pytest.raises(ReconnectRequired, match="disconnected"):
        tokens.get_access_token(company)
    with pytest.raises(connections.CompanyNotFound):
        connections.disconnect("404")


def test_connecting_again_resumes_with_an_incremental_sync(company, signed_in, qbo, db_session):
    db_session.execute(update(SyncState).where(SyncState.company_source_id == company)
                       .values(is_initial_backfill_completed=True))
    db_session.commit()
    connections.disconnect(company)
    assert connect(signed_in, company).status_code == 302
    stored = stored_company(db_session, company)
    assert stored.connection_state is ConnectionState.CONNECTED and stored.refresh_token
    run = db_session.execute(select(SyncRun).where(SyncRun.status == RunStatus.QUEUED)).scalar_one()
    assert run.kind is RunKind.INCREMENTAL and run.trigger == "connect"
    assert tokens.get_access_token(company) in _grant(qbo.sim, company).access


def test_disconnect_from_the_dashboard(company, signed_in, qbo, db_session):
    response = signed_in.post(f"/companies/{company}/disconnect", data={"confirm": "yes"},
                              headers={"X-CSRFToken": signed_in.csrf})
    assert response.status_code == 302
    assert stored_company(db_session, company).connection_state is ConnectionState.DISCONNECTED


def test_rotate_keys_reencrypts_every_token(signed_in, qbo, db_session, app, runner):
    from cryptography.fernet import Fernet

    first, second = qbo.sim.realms()
    connect(signed_in, first)
    connect(signed_in, second)
    old_keys = app.config["SETTINGS"].token_encryption_keys
    before = {r: (open_stored(app, stored_company(db_session, r), "access"), open_stored(app, stored_company(db_session, r), "refresh"))
              for r in (first, second)}
    new_key = Fernet.generate_key().decode()
    settings = app.config["SETTINGS"]
    app.config["SETTINGS"] = dataclasses.replace(settings, token_encryption_keys=(new_key, *old_keys))
    result = runner.invoke(args=["rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "Companies checked: 2; tokens re-encrypted: 4; already on the newest key: 0; unreadable: 0." \
        in result.output
    again = runner.invoke(args=["rotate-keys"])
    assert "tokens re-encrypted: 0; already on the newest key: 4" in again.output
    # The old keys can now be retired: the new key alone opens every token.
    app.config["SETTINGS"] = dataclasses.replace(settings, token_encryption_keys=(new_key,))
    for realm in (first, second):
        stored = stored_company(db_session, realm)
        assert (open_stored(app, stored, "access"), open_stored(app, stored, "refresh")) == before[realm]
        token_store.token_cache().forget(realm)
        assert tokens.get_access_token(realm) == before[realm][0]
    # A token no key can open is reported, left alone, and fails the command.
    app.config["SETTINGS"] = dataclasses.replace(settings, token_encryption_keys=(Fernet.generate_key().decode(),))
    broken = runner.invoke(args=["rotate-keys"])
    assert broken.exit_code != 0 and "unreadable: 2" in broken.output
