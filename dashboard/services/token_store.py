"""Where tokens are kept: the company row (sealed by the vault), the Redis cache, the row lock.

The ``company`` row is the source of truth. Writers take its row lock (PostgreSQL
``SELECT ... FOR UPDATE`` with a ``lock_timeout``; SQLite's single writer lock), and
``token_version`` is bumped on every write and checked, so a writer that lost its lock
can never overwrite newer tokens. Token work uses its own database session: it commits
nothing of the caller's.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from flask import current_app
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from ..extensions import db
from ..integrations import TokenSet
from ..integrations.errors import TokenRefreshFailed
from ..models import Company, ConnectionState
from ..redis_client import redis_client
from ..token_cache import TokenCache
from ..vault import TokenVault, VaultError, vault_for

log = logging.getLogger(__name__)

# Longer than the OAuth HTTP timeout (10 s), so a waiter outlasts one slow refresh.
LOCK_TIMEOUT_SECONDS = 20

def vault() -> TokenVault:
    return vault_for(current_app.config["SETTINGS"].token_encryption_keys)


def token_cache() -> TokenCache:
    settings = current_app.config["SETTINGS"]
    client = redis_client(settings.redis_url) if settings.redis_url else None
    return TokenCache(client, settings.redis_key("access-token"))


@contextmanager
def token_session() -> Iterator[Session]:
    """A session of its own: token writes never commit (or wait on) the caller's work."""
    session = Session(db.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()  # rolls back anything uncommitted; loaded objects stay readable


def lock_company(session: Session, realm: str) -> Company | None:
    """Lock the company row for this transaction and read it fresh.

    PostgreSQL: ``SELECT ... FOR UPDATE`` bounded by ``lock_timeout``. SQLite has one
    writer at a time: a no-op UPDATE takes that lock (waiting up to the busy timeout)
    and the read that follows sees the newest committed row.
    """
    if session.get_bind().dialect.name == "postgresql":
        idle = current_app.config["TOKEN_LOCK_IDLE_TIMEOUT_SECONDS"]
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'"))
        # A holder paused or cut off mid-transaction must not keep the lock for ever; its
        # late write then fails on the lost session (and the token_version fence).
        session.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = '{int(idle * 1000)}ms'"))
        query = select(Company).where(Company.source_id == realm).with_for_update()
    else:
        session.execute(update(Company).where(Company.source_id == realm)
                        .values(token_version=Company.token_version, updated_at=Company.updated_at))
        query = select(Company).where(Company.source_id == realm)
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def write_tokens(session: Session, company: Company, tokens: TokenSet, seen_version: int) -> int:
    """Store both tokens sealed, bump ``token_version``; refuse if the row moved on.

    The grant's hard expiry is written when the answer tells it; a refresh that does not
    keeps the one stored (the cap belongs to the grant, not to one token).
    """
    sealer = vault()
    realm = company.source_id
    hard = ({"refresh_token_hard_expires_at": tokens.refresh_token_hard_expires_at}
            if tokens.refresh_token_hard_expires_at is not None else {})
    result = session.execute(
        update(Company).where(Company.id == company.id, Company.token_version == seen_version)
        .values(access_token=sealer.seal(realm, "access", tokens.access_token),
                access_token_expires_at=tokens.access_token_expires_at,
                refresh_token=sealer.seal(realm, "refresh", tokens.refresh_token),
                refresh_token_expires_at=tokens.refresh_token_expires_at,
                token_version=seen_version + 1, **hard))
    if result.rowcount != 1:
        raise TokenRefreshFailed(f"The tokens of company {realm} changed while they were being "
                                 "written; the newer ones were kept.")
    return seen_version + 1


def mark_reconnect_required(company: Company, now: datetime) -> None:
    """Stop a company whose refresh token the provider refused (invalid_grant)."""
    company.connection_state = ConnectionState.RECONNECT_REQUIRED
    company.connection_error = (
        f"QuickBooks refused the refresh token on {now:%Y-%m-%d %H:%M} UTC (invalid_grant): the "
        "connection was revoked in QuickBooks, unused for 100 days, or a refresh was interrupted "
        "before its new token was saved. Syncs are stopped; click Reconnect to connect the company again.")
    # Dead tokens are worth nothing and are still secrets: erase them.
    company.access_token = None
    company.access_token_expires_at = None
    company.refresh_token = None
    company.refresh_token_expires_at = None
    company.refresh_token_hard_expires_at = None
    company.token_version = company.token_version + 1
    log.warning("Company %s needs reconnecting: its refresh token was refused (invalid_grant)",
                company.source_id)


def mark_unreadable(company: Company, error: VaultError, now: datetime) -> None:
    """Stop using a company whose stored token cannot be opened (altered, or a key is missing).

    The ciphertexts stay: they reveal nothing, and if a key was dropped too early,
    ``rotate_keys`` connects the company again once that key is back. The caller that
    meets the error decides about the syncs (a run that finds it fails once, on record).
    """
    company.connection_state = ConnectionState.RECONNECT_REQUIRED
    company.connection_error = (
        f"{error} Found on {now:%Y-%m-%d %H:%M} UTC; syncs are stopped. Click Reconnect to connect the "
        "company again (if TOKEN_ENCRYPTION_KEYS was changed, put the previous key back after the new one "
        "and run `flask rotate-keys` instead).")
    log.error("Company %s needs reconnecting: %s", company.source_id, error)
