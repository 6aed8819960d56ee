"""S3: a stored token altered in the database (S4, copied from another company: test_tokens).

The vault refuses it, the company is stopped once with a message saying what to do, the
sync that found it fails once on record (no retry, no rescheduling), the dashboard shows
why, and not one request reaches Intuit.
"""
from __future__ import annotations

import base64
import dataclasses
import html
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dashboard.models import Company, ConnectionState, RunKind, RunStatus, SyncRun, SyncState, SyncStatus, utcnow
from dashboard.queue import huey
from dashboard.services import tokens
from dashboard.services.sync_jobs import SyncRequestError, request_sync
from dashboard.services.sync_schedule import schedule_due_companies
from dashboard.sync.errors import ReconnectRequired
from tests.oauth.conftest import connect, expire_access, refresh_calls, stored_company


def flip_byte(ciphertext: str, index: int) -> str:
    """Flip one bit of the decoded Fernet token at ``index`` (version, time, IV, body or MAC)."""
    raw = bytearray(base64.urlsafe_b64decode(ciphertext))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode()


def _work_the_queue() -> None:
    """Do what a worker does with every queued task (a failure with retries left is re-queued)."""
    while (task := huey.dequeue()) is not None:
        huey.execute(task)


def _grant(sim, realm: str):
    return next(g for g in sim.oauth.grants.values() if g.realm == realm and not g.revoked)


def _company_page(client, realm: str) -> str:
    return html.unescape(client.get(f"/companies/{realm}").get_data(as_text=True))


@pytest.mark.parametrize("column, index", [("access_token", 0), ("access_token", 30), ("refresh_token", 60),
                                           ("refresh_token", -1)],
                         ids=["access-version", "access-iv", "refresh-body", "refresh-mac"])
def test_altered_token_stops_the_company_once_and_reaches_no_one(company, qbo, signed_in, db_session,
                                                                 column, index):
    if column == "refresh_token":
        expire_access(db_session, company)  # so the sync needs the refresh token
    altered = flip_byte(getattr(stored_company(db_session, company), column), index)
    db_session.execute(update(Company).where(Company.source_id == company).values({column: altered}))
    db_session.commit()
    _work_the_queue()  # the connect flow's (cancelled) backfill: out of the way
    run, created = request_sync(company, kind=RunKind.INCREMENTAL, trigger="schedule")
    assert created

    _work_the_queue()
    assert (huey.pending_count(), huey.scheduled_count()) == (0, 0)  # failed once, not re-queued
    db_session.expire_all()
    run = db_session.get(SyncRun, run.id)
    assert (run.status, run.attempts) == (RunStatus.FAILED, 1)
    assert "cannot be decrypted" in run.error_message
    state = db_session.execute(select(SyncState).where(SyncState.company_source_id == company,
                                                       SyncState.object_type == "customer")).scalar_one()
    assert state.error_kind == "reconnect_required" and state.status is not SyncStatus.IN_PROGRESS
    stored = stored_company(db_session, company)
    assert stored.connection_state is ConnectionState.RECONNECT_REQUIRED
    message = stored.connection_error
    assert "cannot be decrypted" in message and "Reconnect" in message and "TOKEN_ENCRYPTION_KEYS" in message
    assert getattr(stored, column) == altered  # kept: unreadable, and readable again if a lost key returns
    assert message in _company_page(signed_in, company)
    assert qbo.sim.stats(company)["requests"] == 0 and refresh_calls(qbo.sim, company) == 0

    # No loop: the scheduler passes it by, a new request is refused, token calls stop at the mark.
    assert company not in schedule_due_companies(now=utcnow() + timedelta(hours=1))
    with pytest.raises(SyncRequestError, match="reconnect it first"):
        request_sync(company, kind=RunKind.INCREMENTAL, trigger="schedule")
    with pytest.raises(ReconnectRequired, match="cannot be decrypted"):
        tokens.get_access_token(company)
    assert qbo.sim.stats(company)["requests"] == 0 and refresh_calls(qbo.sim, company) == 0


def test_reconnect_after_tampering_works_again(company, qbo, signed_in, db_session):
    altered = flip_byte(stored_company(db_session, company).access_token, 40)
    db_session.execute(update(Company).where(Company.source_id == company).values(access_token=altered))
    db_session.commit()
    with pytest.raises(ReconnectRequired):
        tokens.get_access_token(company)
    assert connect(signed_in, company).status_code == 302
    assert stored_company(db_session, company).connection_state is ConnectionState.CONNECTED
    assert tokens.get_access_token(company)


def test_key_dropped_too_early_stops_the_company_until_it_is_back_and_rotated(company, qbo, db_session, app,
                                                                              runner):
    from cryptography.fernet import Fernet

    settings = app.config["SETTINGS"]
    new_key = Fernet.generate_key().decode()
    app.config["SETTINGS"] = dataclasses.replace(settings, token_encryption_keys=(new_key,))
    try:
        with pytest.raises(ReconnectRequired, match="cannot be decrypted"):
            tokens.get_access_token(company)
        assert stored_company(db_session, company).connection_state is ConnectionState.RECONNECT_REQUIRED
        app.config["SETTINGS"] = dataclasses.replace(
            settings, token_encryption_keys=(new_key, *settings.token_encryption_keys))
        result = runner.invoke(args=["rotate-keys"])
        assert result.exit_code == 0 and f"Connected again (their tokens open with these keys): {company}" \
            in result.output, result.output
        stored = stored_company(db_session, company)
        assert stored.connection_state is ConnectionState.CONNECTED and stored.connection_error is None
        assert tokens.get_access_token(company) in _grant(qbo.sim, company).access
        assert refresh_calls(qbo.sim, company) == 0
    finally:
        app.config["SETTINGS"] = settings
