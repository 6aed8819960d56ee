"""Tokens that are always fresh: one call gives an access token valid 5 more minutes.

The ``company`` row is the source of truth. A refresh happens under a row lock
(PostgreSQL ``SELECT ... FOR UPDATE`` with a ``lock_timeout``; SQLite's single writer
lock), re-reads the token after taking it, and saves the rotated refresh token in the
same transaction as the new access token (``token_version`` is bumped and checked), so
one refresh token is never sent twice and a rotated one is never lost. Access tokens are
also cached in Redis (as vault ciphertexts) until five minutes before they expire.

Token work uses its own database session: it commits nothing of the caller's.
"""
from __future__ import annotations

import enum
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

from flask import current_app
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..extensions import db
from ..integrations import TokenSet, get_integration
from ..integrations.errors import (
    InvalidGrant, ProviderRejected, ProviderUnavailable, ReconnectRequired, TokenRefreshFailed,
)
from ..models import Company, ConnectionState, utcnow
from ..token_cache import TokenCache
from ..vault import TokenVault, VaultError, vault_for

log = logging.getLogger(__name__)

# An access token handed out stays valid at least this long.
FRESHNESS_MARGIN = timedelta(minutes=5)
# The periodic refresher acts this far ahead of the access and refresh tokens' ends.
REFRESH_AHEAD_ACCESS = timedelta(minutes=10)
REFRESH_AHEAD_REFRESH_TOKEN = timedelta(days=30)
# Longer than the OAuth HTTP timeout (10 s), so a waiter outlasts one slow refresh.
LOCK_TIMEOUT_SECONDS = 20


class _Mode(enum.Enum):
    IF_STALE = "if_stale"        # refresh only if the stored token is not fresh
    AFTER_401 = "after_401"      # refresh unless the stored token differs from the rejected one
    AHEAD = "ahead"              # refresh if the periodic rule still says so


__all__ = ["get_access_token", "force_refresh", "refresh_due_tokens", "refresh_reason", "rotate_keys",
           "ReconnectRequired", "TokenRefreshFailed", "vault", "token_cache", "token_session",
           "write_tokens", "lock_company"]


# --- shared helpers (also used by the connections service) ------------------------------

def vault() -> TokenVault:
    return vault_for(current_app.config["SETTINGS"].token_encryption_keys)


def token_cache() -> TokenCache:
    from ..queue import huey

    prefix = current_app.config.get("TOKEN_CACHE_PREFIX") or f"qbosync:{huey.name}"
    return TokenCache(current_app.config["SETTINGS"].redis_url, prefix)


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
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'"))
        # A holder cut off mid-transaction must not keep the lock for ever.
        session.execute(text("SET LOCAL idle_in_transaction_session_timeout = '60s'"))
        query = select(Company).where(Company.source_id == realm).with_for_update()
    else:
        session.execute(update(Company).where(Company.source_id == realm)
                        .values(token_version=Company.token_version, updated_at=Company.updated_at))
        query = select(Company).where(Company.source_id == realm)
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def write_tokens(session: Session, company: Company, tokens: TokenSet, seen_version: int) -> int:
    """Store both tokens sealed, bump ``token_version``; refuse if the row moved on."""
    sealer = vault()
    realm = company.source_id
    result = session.execute(
        update(Company).where(Company.id == company.id, Company.token_version == seen_version)
        .values(access_token=sealer.seal(realm, "access", tokens.access_token),
                access_token_expires_at=tokens.access_token_expires_at,
                refresh_token=sealer.seal(realm, "refresh", tokens.refresh_token),
                refresh_token_expires_at=tokens.refresh_token_expires_at,
                token_version=seen_version + 1))
    if result.rowcount != 1:
        raise TokenRefreshFailed(f"The tokens of company {realm} changed while they were being "
                                 "written; the newer ones were kept.")
    return seen_version + 1


def _require_connected(company: Company | None, realm: str) -> Company:
    if company is None:
        raise ReconnectRequired(f"There is no connected company {realm}.", realm)
    if company.connection_state == ConnectionState.DISCONNECTED:
        raise ReconnectRequired(f"Company {realm} is disconnected; connect it again to sync it.", realm)
    if company.connection_state == ConnectionState.RECONNECT_REQUIRED or not company.refresh_token:
        raise ReconnectRequired(company.connection_error
                                or f"Company {realm} must be reconnected to QuickBooks.", realm)
    return company


def _fresh(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at - now >= FRESHNESS_MARGIN


def refresh_reason(access_expires_at: datetime | None, refresh_expires_at: datetime | None,
                   now: datetime) -> str | None:
    """Say why the periodic refresher should refresh this company now, or None."""
    if access_expires_at is None or access_expires_at - now <= REFRESH_AHEAD_ACCESS:
        return "the access token expires soon"
    if refresh_expires_at is not None and refresh_expires_at - now <= REFRESH_AHEAD_REFRESH_TOKEN:
        return "the refresh token nears the end of its 100-day window"
    return None


# --- the public interface -------------------------------------------------------------

def get_access_token(company_source_id: str) -> str:
    """Return an access token valid for at least 5 more minutes; refresh when needed.

    Raise ReconnectRequired if the company must be connected again (no retry helps),
    TokenRefreshFailed if a refresh failed for a passing reason (retry later).
    """
    realm = company_source_id
    cache = token_cache()
    cached = cache.get(realm)
    if cached:
        try:
            return vault().open(realm, "access", cached)
        except VaultError:
            cache.forget(realm)
    now = utcnow()
    with token_session() as session:
        company = session.execute(select(Company).where(Company.source_id == realm)).scalar_one_or_none()
    company = _require_connected(company, realm)
    if company.access_token and _fresh(company.access_token_expires_at, now):
        token = _open(realm, "access", company.access_token)
        cache.put(realm, company.access_token, company.access_token_expires_at - FRESHNESS_MARGIN, now)
        return token
    return _refresh(realm, _Mode.IF_STALE)


def force_refresh(company_source_id: str, stale_access_token: str) -> str:
    """After the API answered 401 to ``stale_access_token``: refresh once, unless another
    caller already replaced that token, and return the token to retry with."""
    token_cache().forget(company_source_id)
    return _refresh(company_source_id, _Mode.AFTER_401, stale=stale_access_token)


# --- the refresh ------------------------------------------------------------------------

_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def _local_lock(realm: str) -> threading.Lock:
    """Threads of one process queue here, holding no database connection while waiting."""
    with _local_locks_guard:
        return _local_locks.setdefault(realm, threading.Lock())


def _open(realm: str, kind: str, ciphertext: str) -> str:
    try:
        return vault().open(realm, kind, ciphertext)  # type: ignore[arg-type]
    except VaultError as exc:
        log.error("%s", exc)
        raise ReconnectRequired(f"{exc} Reconnect the company (or fix TOKEN_ENCRYPTION_KEYS).", realm) from None


def _refresh(realm: str, mode: _Mode, stale: str | None = None) -> str:
    with _local_lock(realm):
        settings = current_app.config["SETTINGS"]
        cache = token_cache()
        with token_session() as session:
            try:
                company = lock_company(session, realm)
            except OperationalError as exc:
                raise TokenRefreshFailed(f"The token of company {realm} is being refreshed by another "
                                         f"process that holds its lock too long; try again "
                                         f"({type(exc.orig).__name__}).") from None
            company = _require_connected(company, realm)
            now = utcnow()
            current = _open(realm, "access", company.access_token) if company.access_token else None
            if current is not None and not _refresh_needed(mode, company, current, stale, now):
                session.commit()  # release the lock: someone else already refreshed
                cache.put(realm, company.access_token, company.access_token_expires_at - FRESHNESS_MARGIN, now)
                return current
            refresh_token = _open(realm, "refresh", company.refresh_token)
            integration = get_integration(company.integration, settings)
            try:
                tokens = integration.refresh(refresh_token, now)
            except InvalidGrant:
                _mark_reconnect_required(session, company, now)
                session.commit()
                cache.forget(realm)
                _cancel_syncs(realm)
                raise ReconnectRequired(company.connection_error, realm) from None
            except (ProviderUnavailable, ProviderRejected) as exc:
                log.warning("Token refresh for company %s failed: %s", realm, exc)
                raise TokenRefreshFailed(f"Refreshing the token of company {realm} failed: {exc}") from None
            write_tokens(session, company, tokens, company.token_version)
            session.commit()
        log.info("Refreshed the access token of company %s (%s)", realm, mode.value)
        cache.put(realm, vault().seal(realm, "access", tokens.access_token),
                  tokens.access_token_expires_at - FRESHNESS_MARGIN, utcnow())
        return tokens.access_token


def _refresh_needed(mode: _Mode, company: Company, current: str, stale: str | None, now: datetime) -> bool:
    if mode is _Mode.IF_STALE:
        return not _fresh(company.access_token_expires_at, now)
    if mode is _Mode.AFTER_401:
        # A different token means another caller refreshed after the 401 was seen.
        return current == stale or company.access_token_expires_at is None \
            or company.access_token_expires_at <= now
    return refresh_reason(company.access_token_expires_at, company.refresh_token_expires_at, now) is not None


def _mark_reconnect_required(session: Session, company: Company, now: datetime) -> None:
    company.connection_state = ConnectionState.RECONNECT_REQUIRED
    company.connection_error = (
        f"QuickBooks refused the refresh token on {now:%Y-%m-%d %H:%M} UTC (invalid_grant): the "
        "connection was revoked in QuickBooks or unused for 100 days. Syncs are stopped; "
        "click Reconnect to connect the company again.")
    # Dead tokens are worth nothing and are still secrets: erase them.
    company.access_token = None
    company.access_token_expires_at = None
    company.refresh_token = None
    company.refresh_token_expires_at = None
    company.token_version = company.token_version + 1
    log.warning("Company %s needs reconnecting: its refresh token was refused (invalid_grant)",
                company.source_id)


def _cancel_syncs(realm: str) -> None:
    from . import sync_jobs

    try:
        sync_jobs.cancel_company_syncs(realm)
    except Exception:  # the state change is committed; runs stop at their next token request
        db.session.rollback()
        log.exception("Could not cancel the syncs of company %s", realm)


# --- periodic refresh and key rotation ----------------------------------------------------

@dataclass
class RefreshReport:
    refreshed: int = 0
    reconnect_required: int = 0
    failed: int = 0


def refresh_due_tokens() -> RefreshReport:
    """Refresh, ahead of time, every connected company whose tokens near their end."""
    now = utcnow()
    report = RefreshReport()
    with token_session() as session:
        rows = session.execute(
            select(Company.source_id, Company.access_token_expires_at, Company.refresh_token_expires_at)
            .where(Company.connection_state == ConnectionState.CONNECTED,
                   Company.refresh_token.is_not(None))).all()
    due = [realm for realm, access_at, refresh_at in rows if refresh_reason(access_at, refresh_at, now)]
    for realm in due:
        try:
            _refresh(realm, _Mode.AHEAD)
            report.refreshed += 1
        except ReconnectRequired:
            report.reconnect_required += 1
        except TokenRefreshFailed as exc:
            log.warning("%s", exc)
            report.failed += 1
    return report


@dataclass
class RotationReport:
    companies: int = 0
    tokens_rotated: int = 0
    already_current: int = 0
    unreadable: list[str] | None = None


def rotate_keys() -> RotationReport:
    """Re-encrypt every stored token with the newest key, one company per transaction."""
    sealer = vault()
    cache = token_cache()
    report = RotationReport(unreadable=[])
    with token_session() as session:
        realms = session.execute(select(Company.source_id).where(
            (Company.access_token.is_not(None)) | (Company.refresh_token.is_not(None)))
            .order_by(Company.id)).scalars().all()
    for realm in realms:
        with token_session() as session:
            company = lock_company(session, realm)
            if company is None:
                continue
            report.companies += 1
            try:
                for kind, column in (("access", "access_token"), ("refresh", "refresh_token")):
                    value = getattr(company, column)
                    if value is None:
                        continue
                    if sealer.is_current(value):
                        sealer.open(realm, kind, value)  # still check the binding
                        report.already_current += 1
                    else:
                        setattr(company, column, sealer.rotate(realm, kind, value))
                        report.tokens_rotated += 1
            except VaultError as exc:
                log.error("%s", exc)
                report.unreadable.append(realm)
                continue
            session.commit()
        cache.forget(realm)
    return report
