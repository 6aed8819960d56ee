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
from sqlalchemy import inspect, select, text, update
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
# The start-up key check reads this many of the most recently updated companies' tokens.
KEY_CHECK_SAMPLE = 5


class _Mode(enum.Enum):
    IF_STALE = "if_stale"        # refresh only if the stored token is not fresh
    AFTER_401 = "after_401"      # refresh unless the stored token differs from the rejected one
    AHEAD = "ahead"              # refresh if the periodic rule still says so


__all__ = ["get_access_token", "force_refresh", "refresh_due_tokens", "refresh_reason", "rotate_keys",
           "ReconnectRequired", "TokenRefreshFailed", "vault", "token_cache", "token_session",
           "write_tokens", "lock_company", "keys_open_stored_tokens"]


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
        try:
            token = vault().open(realm, "access", company.access_token)
        except VaultError:
            # Look again under the lock: a refresh may have just replaced it; if not, the
            # refresh path marks the company.
            return _refresh(realm, _Mode.IF_STALE)
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
            sealer = vault()
            try:
                current = sealer.open(realm, "access", company.access_token) if company.access_token else None
                if current is not None and not _refresh_needed(mode, company, current, stale, now):
                    session.commit()  # release the lock: someone else already refreshed
                    cache.put(realm, company.access_token, company.access_token_expires_at - FRESHNESS_MARGIN, now)
                    return current
                refresh_token = sealer.open(realm, "refresh", company.refresh_token)  # type: ignore[arg-type]
            except VaultError as exc:
                _mark_unreadable(company, exc, now)
                session.commit()
                cache.forget(realm)
                raise ReconnectRequired(company.connection_error, realm) from None
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
            try:
                write_tokens(session, company, tokens, company.token_version)
                session.commit()
            except OperationalError as exc:
                # The session died while Intuit answered (this process was paused past
                # TOKEN_LOCK_IDLE_TIMEOUT_SECONDS, or the database restarted): the lock is
                # gone and another process may have refreshed since. Write nothing.
                log.warning("The refreshed tokens of company %s were not saved: the database session "
                            "was lost during the refresh (%s)", realm, type(exc.orig).__name__)
                raise TokenRefreshFailed(
                    f"The refreshed tokens of company {realm} were not saved: the database session was "
                    "lost while Intuit answered, so the tokens stored since were kept; try again.") from None
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
        "connection was revoked in QuickBooks, unused for 100 days, or a refresh was interrupted "
        "before its new token was saved. Syncs are stopped; click Reconnect to connect the company again.")
    # Dead tokens are worth nothing and are still secrets: erase them.
    company.access_token = None
    company.access_token_expires_at = None
    company.refresh_token = None
    company.refresh_token_expires_at = None
    company.token_version = company.token_version + 1
    log.warning("Company %s needs reconnecting: its refresh token was refused (invalid_grant)",
                company.source_id)


def _mark_unreadable(company: Company, error: VaultError, now: datetime) -> None:
    """Stop using a company whose stored token cannot be opened (altered, or a key is missing).

    The ciphertexts stay: they reveal nothing, and if a key was dropped too early,
    ``rotate_keys`` connects the company again once that key is back. Queued runs are not
    cancelled: each is refused at its start, and the run that found this fails once, on record.
    """
    company.connection_state = ConnectionState.RECONNECT_REQUIRED
    company.connection_error = (
        f"{error} Found on {now:%Y-%m-%d %H:%M} UTC; syncs are stopped. Click Reconnect to connect the "
        "company again (if TOKEN_ENCRYPTION_KEYS was changed, put the previous key back after the new one "
        "and run `flask rotate-keys` instead).")
    log.error("Company %s needs reconnecting: %s", company.source_id, error)


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
    connected_again: list[str] | None = None


def rotate_keys() -> RotationReport:
    """Re-encrypt every stored token with the newest key, one company per transaction.

    A company stopped because its tokens could not be read (the only reconnect-required
    state that keeps its tokens) is connected again once they open, e.g. after a key
    dropped too early was put back.
    """
    sealer = vault()
    cache = token_cache()
    report = RotationReport(unreadable=[], connected_again=[])
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
            if company.connection_state is ConnectionState.RECONNECT_REQUIRED and company.refresh_token:
                company.connection_state = ConnectionState.CONNECTED
                company.connection_error = None
                report.connected_again.append(realm)
                log.info("Company %s is connected again: its tokens are readable again", realm)
            session.commit()
        cache.forget(realm)
    return report


# --- start-up check -----------------------------------------------------------------------

def keys_open_stored_tokens(sample: int = KEY_CHECK_SAMPLE) -> bool:
    """Say whether TOKEN_ENCRYPTION_KEYS opens the stored tokens; read only.

    True when the refresh token of one of the ``sample`` most recently updated connected
    companies opens, or when there is none (a fresh install, before or after migrating).
    One is enough: a single altered row must not stop the service (that company is
    stopped on its own when its token is next used). Raise SQLAlchemyError when the
    database cannot be read.
    """
    with token_session() as session:
        if not inspect(session.connection()).has_table(Company.__tablename__):
            return True
        rows = session.execute(
            select(Company.source_id, Company.refresh_token)
            .where(Company.connection_state == ConnectionState.CONNECTED, Company.refresh_token.is_not(None))
            .order_by(Company.updated_at.desc()).limit(sample)).all()
    sealer = vault()
    unreadable = []
    for realm, ciphertext in rows:
        try:
            sealer.open(realm, "refresh", ciphertext)
        except VaultError:
            unreadable.append(realm)
    if unreadable and len(unreadable) < len(rows):
        log.warning("The stored tokens of companies %s cannot be decrypted with TOKEN_ENCRYPTION_KEYS (others "
                    "can); they will be marked reconnect-required when used", ", ".join(unreadable))
    return not rows or len(unreadable) < len(rows)
