"""A refresher killed or paused mid-refresh, as a real process (SIGKILL, SIGSTOP/SIGCONT).

R3: killed after Intuit answered and before the commit, with the old refresh token still
valid (Intuit's 24 h grace) and dead (strict single use). R4: the lock of the killed
holder is free at once. R5: a holder paused past its lock's life cannot write late.
R6: Intuit hangs past the OAuth timeout. R9: Disconnect clicked while Intuit answers a refresh.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError

from dashboard.extensions import db
from dashboard.integrations import TokenSet
from dashboard.integrations.errors import TokenRefreshFailed
from dashboard.models import Company, ConnectionState, RunStatus, SyncRun, utcnow
from dashboard.services import connections, token_store, tokens
from dashboard.services.sync_schedule import schedule_due_companies
from dashboard.sync.errors import ReconnectRequired
from tests.oauth.conftest import connect, expire_access, open_stored, refresh_calls, stored_company
from tests.oauth.refresher import TOKEN_PATH, HeldRefreshAnswer, Refresher

INCIDENTS = 20
GRACE_24H = 86_400
REVOKE_PATH = "/v2/oauth2/tokens/revoke"


@pytest.fixture
def held(qbo):
    gate = HeldRefreshAnswer(qbo.app)
    yield gate
    gate.remove()


@pytest.fixture
def start_refresher():
    """Start refreshers; kill any left at the end, even a stopped one, whatever the outcome."""
    started: list[Refresher] = []

    def start(env: dict, realm: str) -> Refresher:
        started.append(Refresher(env, realm))
        return started[-1]

    yield start
    for refresher in started:
        refresher.close()


def _child_env(app, qbo, **extra: str) -> dict:
    return {**os.environ, **qbo.urls(), "QBO_REDIRECT_URI": app.config["SETTINGS"].qbo_redirect_uri, **extra}


def _grant_of(sim, access_token: str):
    """The simulator's grant that issued this access token."""
    return next(g for g in sim.oauth.grants.values() if access_token in g.access)


def _snapshot(company: Company) -> tuple:
    return company.token_version, company.access_token, company.refresh_token, company.connection_state


def _row_lock_free(realm: str) -> bool:
    """Whether the refresh lock on the company row can be taken this instant, without waiting."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            try:
                conn.execute(select(Company.id).where(Company.source_id == realm).with_for_update(nowait=True))
                return True
            except OperationalError:
                return False
            finally:
                conn.rollback()
    # SQLite's lock is its single writer's: ask for it with no busy wait.
    conn = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _lock_waiters() -> int:
    """Sessions of this database waiting for a lock (PostgreSQL)."""
    with db.engine.connect() as conn:  # a new transaction: pg_stat_activity is read once per transaction
        return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND wait_event_type = 'Lock'")).scalar_one()


def _wait_until(predicate, what: str, timeout: float = 10.0) -> None:
    """Poll for a condition the database reaches on its own (a dead client noticed, a wait begun)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _kill_after_intuit_answered(held, start_refresher, env, realm) -> None:
    held.arm()
    refresher = start_refresher(env, realm)
    held.wait_answered()
    refresher.stop()
    assert not _row_lock_free(realm)  # the stopped refresher holds the company's lock
    held.release()   # the answer reaches the stopped process, which never reads it
    refresher.kill()
    # R4: the lock goes with the killed holder's connection, not after a lock or idle timeout
    # (20 s, 60 s): the database frees it as soon as it sees the connection closed.
    _wait_until(lambda: _row_lock_free(realm), "the killed refresher's lock to be freed")


@pytest.mark.parametrize("grace", [GRACE_24H, 0], ids=["old-token-still-valid", "old-token-dead"])
def test_refresher_killed_between_intuit_answer_and_commit(company, qbo, held, start_refresher, signed_in,
                                                           db_session, app, grace):
    qbo.sim.set_refresh_grace(grace)
    env = _child_env(app, qbo)
    for incident in range(INCIDENTS):
        before = _snapshot(stored_company(db_session, company))
        version = before[0]
        calls = refresh_calls(qbo.sim, company)
        expire_access(db_session, company)
        _kill_after_intuit_answered(held, start_refresher, env, company)

        # Intuit rotated the refresh token, the dead process saved nothing.
        assert _snapshot(stored_company(db_session, company)) == before
        assert refresh_calls(qbo.sim, company) == calls + 1

        if grace:
            token = tokens.get_access_token(company)
            now = stored_company(db_session, company)
            grant = _grant_of(qbo.sim, token)
            assert now.connection_state is ConnectionState.CONNECTED
            assert now.token_version == version + 1
            assert open_stored(app, now, "refresh") == grant.refresh_token  # the rotated one, recovered
            assert open_stored(app, now, "access") == token
        else:
            with pytest.raises(ReconnectRequired, match="Reconnect"):
                tokens.get_access_token(company)
            now = stored_company(db_session, company)
            assert now.connection_state is ConnectionState.RECONNECT_REQUIRED
            assert "invalid_grant" in now.connection_error and "interrupted" in now.connection_error
            _assert_no_retry_loop(qbo, company, calls + 2)
        assert refresh_calls(qbo.sim, company) == calls + 2, f"incident {incident}"

        if not grace:  # an operator reconnects; the next incident starts from a good grant
            assert connect(signed_in, company).status_code == 302
            db_session.execute(update(SyncRun).values(status=RunStatus.CANCELLED))
            db_session.commit()


def _assert_no_retry_loop(qbo, realm: str, calls: int) -> None:
    """Every way a token is asked for stops at the mark, and the scheduler skips the company."""
    for _ in range(3):
        with pytest.raises(ReconnectRequired):
            tokens.get_access_token(realm)
        with pytest.raises(ReconnectRequired):
            tokens.force_refresh(realm, "a-rejected-token")
    assert tokens.refresh_due_tokens().refreshed == 0
    assert realm not in schedule_due_companies(now=utcnow() + timedelta(hours=1))
    assert refresh_calls(qbo.sim, realm) == calls


@pytest.mark.services
@pytest.mark.parametrize("grace", [GRACE_24H, 0], ids=["old-token-still-valid", "old-token-dead"])
def test_paused_lock_holder_cannot_write_late(company, qbo, held, start_refresher, db_session, app, grace):
    """R5: PostgreSQL ends the paused holder's session after TOKEN_LOCK_IDLE_TIMEOUT_SECONDS;
    others refresh meanwhile; resumed, the holder's write is refused, nothing out of order."""
    qbo.sim.set_refresh_grace(grace)
    expire_access(db_session, company)
    version = stored_company(db_session, company).token_version
    held.arm()
    holder = start_refresher(_child_env(app, qbo, TOKEN_LOCK_IDLE_TIMEOUT_SECONDS="2"), company)
    held.wait_answered()
    holder.stop()
    held.release()
    # The paused holder still holds the row lock: the call below must wait for PostgreSQL to
    # end the holder's session (2 s idle), well before its own lock_timeout (20 s) would fail it.
    assert not _row_lock_free(company)

    if grace:
        first = tokens.get_access_token(company)
        expire_access(db_session, company)
        second = tokens.get_access_token(company)
        assert first != second
    else:
        # The holder's refresh used up the stored token: a strict Intuit refuses it.
        with pytest.raises(ReconnectRequired):
            tokens.get_access_token(company)
    settled = _snapshot(stored_company(db_session, company))

    holder.resume()
    kind, message = holder.result()
    assert kind == "error" and message.startswith("TokenRefreshFailed") and "not saved" in message, message
    final = stored_company(db_session, company)
    assert _snapshot(final) == settled
    if grace:
        assert final.token_version == version + 2
        assert open_stored(app, final, "access") == second
        assert open_stored(app, final, "refresh") == _grant_of(qbo.sim, second).refresh_token
    else:
        assert final.connection_state is ConnectionState.RECONNECT_REQUIRED and final.refresh_token is None


def test_disconnect_during_a_refresh_leaves_no_token(company, qbo, held, db_session, app, monkeypatch):
    """R9: Disconnect waits for the refresh holding the row lock, then revokes once and
    erases what the refresh saved."""
    expire_access(db_session, company)
    outcome: dict[str, object] = {}
    asked_for_lock, took_lock = threading.Event(), threading.Event()
    lock_company = connections.lock_company

    def watched_lock_company(session, realm):
        asked_for_lock.set()
        locked = lock_company(session, realm)
        took_lock.set()
        return locked

    monkeypatch.setattr(connections, "lock_company", watched_lock_company)

    def in_app(name, call):
        with app.app_context():
            try:
                outcome[name] = call(company)
            except Exception as exc:  # reported to the assertions below
                outcome[name] = exc

    held.arm()
    refresh = threading.Thread(target=in_app, args=("refresh", tokens.get_access_token))
    refresh.start()
    held.wait_answered()
    assert not _row_lock_free(company)  # the refresh holds the lock while Intuit's answer travels
    disconnect = threading.Thread(target=in_app, args=("disconnect", connections.disconnect))
    disconnect.start()
    assert asked_for_lock.wait(30)
    if db.engine.dialect.name == "postgresql":
        _wait_until(lambda: _lock_waiters() >= 1, "the disconnect to wait on the row lock")
    # Waiting for the refresher's lock: nothing revoked, nothing erased yet.
    assert disconnect.is_alive() and not took_lock.is_set() and held.paths[REVOKE_PATH] == 0
    held.release()
    refresh.join(30)
    disconnect.join(30)
    assert isinstance(outcome["refresh"], str) and outcome["disconnect"] is None, outcome

    stored = stored_company(db_session, company)
    assert stored.connection_state is ConnectionState.DISCONNECTED
    assert (stored.access_token, stored.refresh_token) == (None, None)
    assert held.paths[REVOKE_PATH] == 1 and refresh_calls(qbo.sim, company) == 1
    assert all(g.revoked for g in qbo.sim.oauth.grants.values() if g.realm == company)
    with pytest.raises(ReconnectRequired, match="disconnected"):
        tokens.get_access_token(company)


@pytest.mark.slow
def test_hung_token_endpoint_costs_one_call_and_the_valid_token_keeps_serving(company, qbo, held, db_session, app,
                                                                              caplog):
    """R6: Intuit hangs on a refresh past the 10 s OAuth timeout: one call, the refresh
    fails as retryable, callers keep the still-valid access token meanwhile, and the lock
    is free at once afterwards (the late rotation is absorbed by Intuit's grace)."""
    qbo.sim.set_refresh_grace(GRACE_24H)
    valid = tokens.get_access_token(company)
    expire_access(db_session, company, utcnow() + timedelta(minutes=8))  # due ahead, still fresh
    held.arm(before_intuit=True)  # Intuit takes the next refresh and does not answer until released
    reports = []

    def refresh_ahead():
        with app.app_context():
            reports.append(tokens.refresh_due_tokens())

    ahead = threading.Thread(target=refresh_ahead)
    ahead.start()
    held.wait_arrived()
    assert tokens.get_access_token(company) == valid
    assert ahead.is_alive()  # served while the refresh hangs...
    assert held.paths[TOKEN_PATH] == 1  # ...and no second call while the first hangs
    ahead.join(30)
    assert not ahead.is_alive()
    # It gave up on its own (the OAuth read timeout) while Intuit still held the call.
    assert refresh_calls(qbo.sim, company) == 0
    assert "did not answer the token refresh (ReadTimeout)" in caplog.text
    assert (reports[0].refreshed, reports[0].failed, reports[0].reconnect_required) == (0, 1, 0)
    assert stored_company(db_session, company).connection_state is ConnectionState.CONNECTED

    # The lock is free at once: a retry refreshes while the first call still hangs at Intuit.
    assert tokens.refresh_due_tokens().refreshed == 1
    assert refresh_calls(qbo.sim, company) == 1
    held.release()  # Intuit answers the first call at last, to a client long gone
    held.wait_finished()
    assert refresh_calls(qbo.sim, company) == held.paths[TOKEN_PATH] == 2
    stored = stored_company(db_session, company)
    assert open_stored(app, stored, "refresh") == _grant_of(qbo.sim, open_stored(app, stored, "access")).refresh_token


def test_write_with_a_stale_version_is_refused(company, db_session, app):
    """The fence itself: a writer that read version v cannot write once v+1 is stored."""
    company_row = stored_company(db_session, company)
    seen = company_row.token_version
    newer = TokenSet("AT-newer", "RT-newer", utcnow() + timedelta(hours=1), utcnow() + timedelta(days=100))
    late = TokenSet("AT-late", "RT-late", utcnow() + timedelta(hours=1), utcnow() + timedelta(days=100))
    with token_store.token_session() as session:
        token_store.write_tokens(session, session.get(Company, company_row.id), newer, seen)
        session.commit()
    with token_store.token_session() as session:
        with pytest.raises(TokenRefreshFailed, match="changed while they were being written"):
            token_store.write_tokens(session, session.get(Company, company_row.id), late, seen)
    final = stored_company(db_session, company)
    assert final.token_version == seen + 1
    assert (open_stored(app, final, "access"), open_stored(app, final, "refresh")) == ("AT-newer", "RT-newer")
