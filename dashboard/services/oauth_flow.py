"""The authorization-code flow: start it, and finish it on the provider's callback.

``state`` carries the CSRF protection (Intuit advertises no PKCE): it is random, stored
only as a SHA-256 hash, bound to the browser session that started the flow (the hash of
a per-session random value), lives 10 minutes, and is claimed once with one atomic
UPDATE, so two concurrent callbacks with the same state exchange the code once.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping

from flask import current_app
from sqlalchemy import delete, select, update

from ..extensions import db
from ..integrations import TokenSet, get_integration
from ..integrations.errors import AccountMismatch, InvalidGrant, ProviderRejected, ProviderUnavailable
from ..models import Company, OAuthState, utcnow
from . import budget, sync_jobs
from .connections import Connected, save_grant

log = logging.getLogger(__name__)

STATE_LIFETIME = timedelta(minutes=10)
# Pending states are kept a day after expiry (to tell "expired" from "forged"), then purged.
STATE_RETENTION = timedelta(days=1)
MAX_PARAM_LENGTH = 2048


class CallbackRejected(Exception):
    """The callback cannot complete; nothing was stored. ``title`` and the message say
    what happened and what to do; ``reason`` is a stable code for tests and logs."""

    def __init__(self, reason: str, title: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason, self.title, self.message, self.status = reason, title, message, status


@dataclass(frozen=True)
class CallbackOutcome:
    connected: Connected
    reconnect_of: str | None       # the realm the operator asked to reconnect, if any
    sync_queued: bool
    sync_message: str | None       # why no sync was queued, when none was


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_session_binding() -> str:
    """Return a random value that ties flows to one browser session (kept in its cookie)."""
    return secrets.token_urlsafe(32)


def begin(integration_name: str, operator_id: int | None, session_binding: str,
          company_source_id: str | None = None) -> str:
    """Record a pending authorization and return the provider URL to send the browser to."""
    integration = get_integration(integration_name, current_app.config["SETTINGS"])
    now = utcnow()
    state = secrets.token_urlsafe(32)
    db.session.execute(delete(OAuthState).where(OAuthState.expires_at < now - STATE_RETENTION))
    db.session.add(OAuthState(state_hash=_hash(state), integration=integration.name, operator_id=operator_id,
                              session_binding=_hash(session_binding), company_source_id=company_source_id,
                              created_at=now, expires_at=now + STATE_LIFETIME))
    db.session.commit()
    return integration.authorization_url(state)


def reconnect_target(company_source_id: str) -> Company | None:
    """Return the company an operator asked to reconnect, or None if there is none."""
    return db.session.execute(select(Company).where(Company.source_id == company_source_id)).scalar_one_or_none()


_START_AGAIN = "Start the connection again from the dashboard."


def complete(integration_name: str, args: Mapping[str, str], session_binding: str | None) -> CallbackOutcome:
    """Check the callback, claim its state once, exchange the code, store the company and
    queue its first sync. Raise CallbackRejected (nothing stored) for any bad input."""
    integration = get_integration(integration_name, current_app.config["SETTINGS"])
    if any(len(v) > MAX_PARAM_LENGTH for v in args.values()):
        raise CallbackRejected("oversized", "Connection failed", f"The callback was malformed. {_START_AGAIN}")
    _check_provider_error(args.get("error"))
    now = utcnow()
    row = _valid_state(args.get("state", ""), integration.name, session_binding, now)
    code = args.get("code", "")
    realm = integration.account_id_from_callback(args)
    if not code:
        raise CallbackRejected("missing_code", "Connection failed",
                               f"QuickBooks sent no authorization code. {_START_AGAIN}")
    if realm is None:
        raise CallbackRejected("missing_realm", "Connection failed",
                               f"QuickBooks sent no valid company id (realmId). {_START_AGAIN}")
    reconnect_of = row.company_source_id
    _claim(row.state_hash, now)
    tokens = _exchange(integration, code, now)
    name = _account_name(integration, realm, tokens)
    connected = save_grant(integration.name, realm, tokens, now, name=name)
    queued, message = _queue_first_sync(realm)
    return CallbackOutcome(connected, reconnect_of, queued, message)


def _check_provider_error(error: str | None) -> None:
    """Refuse a callback that carries the provider's error (checked first: Intuit redirects
    here when the user clicks Cancel)."""
    if not error:
        return
    if error == "access_denied":
        raise CallbackRejected("access_denied", "Connection cancelled",
                               "QuickBooks says access was not granted (you may have clicked Cancel), "
                               "so nothing was connected. Use Connect QuickBooks to try again.", 200)
    raise CallbackRejected("provider_error", "Connection failed",
                           f"QuickBooks answered with the error {error[:64]!r}, so nothing was connected. "
                           f"{_START_AGAIN}")


def _valid_state(state: str, integration_name: str, session_binding: str | None, now) -> OAuthState:
    """Return the stored state this callback names if it may be claimed; refuse it otherwise."""
    if not state:
        raise CallbackRejected("missing_state", "Connection failed",
                               f"The callback carried no state, so it cannot be trusted. {_START_AGAIN}")
    row = db.session.get(OAuthState, _hash(state))
    if row is None or row.integration != integration_name:
        raise CallbackRejected("unknown_state", "Connection failed",
                               f"This connection link is not one we started (unknown state). {_START_AGAIN}")
    if not session_binding or not secrets.compare_digest(row.session_binding, _hash(session_binding)):
        raise CallbackRejected("other_session", "Connection failed",
                               "This connection was started in another browser session, so it was refused. "
                               "Start it again in this browser.", 403)
    if row.consumed_at is not None:
        raise CallbackRejected("reused_state", "Connection already handled",
                               "This connection link was already used; it works only once. "
                               "Check the companies list, or start again.")
    if row.expires_at <= now:
        raise CallbackRejected("expired_state", "Connection expired",
                               f"More than 10 minutes passed since the connection started. {_START_AGAIN}")
    return row


def _exchange(integration, code: str, now) -> TokenSet:
    """Exchange the authorization code for tokens; refuse the callback if that fails."""
    try:
        return integration.exchange_code(code, now)
    except InvalidGrant:
        raise CallbackRejected("code_refused", "Connection failed",
                               f"QuickBooks refused the authorization code (expired or already used). "
                               f"{_START_AGAIN}") from None
    except ProviderUnavailable as exc:
        log.warning("Code exchange failed: %s", exc)
        raise CallbackRejected("provider_unavailable", "QuickBooks did not answer",
                               f"QuickBooks could not be reached to finish the connection. "
                               f"{_START_AGAIN}", 502) from None
    except ProviderRejected as exc:
        log.error("Code exchange refused: %s", exc)
        raise CallbackRejected("provider_rejected", "Connection failed",
                               "QuickBooks refused to finish the connection (check QBO_CLIENT_ID, "
                               "QBO_CLIENT_SECRET and QBO_REDIRECT_URI).", 502) from None


def _account_name(integration, realm: str, tokens: TokenSet) -> str | None:
    """Return the company's name, read with the new token.

    realmId is only a query parameter: before anything is stored, Intuit is asked whether
    the new token opens that company (a tampered realmId gets 401/403).
    """
    try:
        name = integration.account_name(realm, tokens.access_token)
    except AccountMismatch as exc:
        log.warning("Callback realm does not match its token: %s", exc)
        _revoke_quietly(integration, tokens)
        raise CallbackRejected("realm_mismatch", "Connection failed",
                               "The company id in the answer from Intuit does not match its token, so "
                               f"nothing was connected. {_START_AGAIN}") from None
    if integration.name == "qbo":  # Intuit meters the CompanyInfo read like any data read
        budget.count_calls(realm)
    return name


def _revoke_quietly(integration, tokens) -> None:
    """Revoke a grant we will not store, so no live token is left behind; best effort."""
    try:
        integration.revoke(tokens.refresh_token)
    except Exception as exc:  # noqa: BLE001 - the callback is rejected either way
        log.warning("Could not revoke the rejected grant (%s)", type(exc).__name__)


def _claim(state_hash: str, now) -> None:
    """Consume the state; exactly one concurrent caller wins (rowcount 1)."""
    result = db.session.execute(
        update(OAuthState).where(OAuthState.state_hash == state_hash, OAuthState.consumed_at.is_(None),
                                 OAuthState.expires_at > now)
        .values(consumed_at=now))
    db.session.commit()
    if result.rowcount != 1:
        raise CallbackRejected("reused_state", "Connection already handled",
                               "This connection link was already used; it works only once. "
                               "Check the companies list, or start again.")


def _queue_first_sync(realm: str) -> tuple[bool, str | None]:
    """Queue the backfill (or the incremental resume); the connection stands either way."""
    try:
        sync_jobs.request_initial_sync(realm, trigger="connect")
        return True, None
    except Exception as exc:  # noqa: BLE001 - the scheduler picks the company up later
        db.session.rollback()
        log.exception("Connected company %s but could not queue its first sync", realm)
        return False, f"The first sync could not be queued yet ({exc}); the scheduler will start it."
