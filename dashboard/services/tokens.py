"""Tokens that are always fresh: one call gives an access token valid 5 more minutes.

A refresh happens under the company's row lock (``token_store.lock_company``), re-reads
the token after taking it, and saves the rotated refresh token in the same transaction
as the new access token, so one refresh token is never sent twice and a rotated one is
never lost. Access tokens are also cached in Redis (as vault ciphertexts) until five
minutes before they expire. A periodic refresher keeps idle companies' tokens alive.

A dead grant marks the company reconnect-required and raises ReconnectRequired; what
then happens to the company's syncs is decided by the caller that sees the error.
"""
from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..integrations import TokenSet, get_integration
from ..integrations.errors import InvalidGrant, ProviderRejected, ProviderUnavailable, TokenRefreshFailed
from ..models import Company, ConnectionState, utcnow
from ..sync.errors import ReconnectRequired
from ..vault import VaultError
from . import metrics
from .token_store import (
    lock_company, mark_reconnect_required, mark_unreadable, token_cache, token_session, vault, write_tokens,
)

log = logging.getLogger(__name__)

# An access token handed out stays valid at least this long.
FRESHNESS_MARGIN = timedelta(minutes=5)
# The periodic refresher acts this far ahead of the access and refresh tokens' ends.
REFRESH_AHEAD_ACCESS = timedelta(minutes=10)
REFRESH_AHEAD_REFRESH_TOKEN = timedelta(days=30)


class _Mode(enum.Enum):
    IF_STALE = "if_stale"        # refresh only if the stored token is not fresh
    AFTER_401 = "after_401"      # refresh unless the stored token differs from the rejected one
    AHEAD = "ahead"              # refresh if the periodic rule still says so


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
        with token_session() as session:
            company = _lock_connected(session, realm)
            now = utcnow()
            current = _open(session, company, "access", now) if company.access_token else None
            if current is not None and not _refresh_needed(mode, company, current, stale, now):
                session.commit()  # release the lock: someone else already refreshed
                token_cache().put(realm, company.access_token,
                                  company.access_token_expires_at - FRESHNESS_MARGIN, now)
                return current
            tokens = _ask_provider(session, company, _open(session, company, "refresh", now), now)
            _save(session, company, tokens)
            metrics.token_refreshed("ok")
        log.info("Refreshed the access token of company %s (%s)", realm, mode.value)
        token_cache().put(realm, vault().seal(realm, "access", tokens.access_token),
                          tokens.access_token_expires_at - FRESHNESS_MARGIN, utcnow())
        return tokens.access_token


def _lock_connected(session: Session, realm: str) -> Company:
    try:
        company = lock_company(session, realm)
    except OperationalError as exc:
        raise TokenRefreshFailed(f"The token of company {realm} is being refreshed by another "
                                 f"process that holds its lock too long; try again "
                                 f"({type(exc.orig).__name__}).") from None
    return _require_connected(company, realm)


def _open(session: Session, company: Company, kind: str, now: datetime) -> str:
    """Open a stored token; mark the company and raise ReconnectRequired if it cannot be."""
    realm = company.source_id
    try:
        return vault().open(realm, kind, getattr(company, f"{kind}_token"))  # type: ignore[arg-type]
    except VaultError as exc:
        mark_unreadable(company, exc, now)
        session.commit()
        token_cache().forget(realm)
        raise ReconnectRequired(company.connection_error, realm) from None


def _ask_provider(session: Session, company: Company, refresh_token: str, now: datetime) -> TokenSet:
    """Spend the refresh token at the provider; a refused one marks the company."""
    realm = company.source_id
    integration = get_integration(company.integration, current_app.config["SETTINGS"])
    try:
        return integration.refresh(refresh_token, now)
    except InvalidGrant:
        metrics.token_refreshed("invalid_grant")
        mark_reconnect_required(company, now)
        session.commit()
        token_cache().forget(realm)
        raise ReconnectRequired(company.connection_error, realm) from None
    except (ProviderUnavailable, ProviderRejected) as exc:
        metrics.token_refreshed("failed")
        log.warning("Token refresh for company %s failed: %s", realm, exc)
        raise TokenRefreshFailed(f"Refreshing the token of company {realm} failed: {exc}") from None


def _save(session: Session, company: Company, tokens: TokenSet) -> None:
    realm = company.source_id
    try:
        write_tokens(session, company, tokens, company.token_version)
        session.commit()
    except OperationalError as exc:
        metrics.token_refreshed("unsaved")
        # The session died while Intuit answered (this process was paused past
        # TOKEN_LOCK_IDLE_TIMEOUT_SECONDS, or the database restarted): the lock is
        # gone and another process may have refreshed since. Write nothing.
        log.warning("The refreshed tokens of company %s were not saved: the database session "
                    "was lost during the refresh (%s)", realm, type(exc.orig).__name__)
        raise TokenRefreshFailed(
            f"The refreshed tokens of company {realm} were not saved: the database session was "
            "lost while Intuit answered, so the tokens stored since were kept; try again.") from None


def _refresh_needed(mode: _Mode, company: Company, current: str, stale: str | None, now: datetime) -> bool:
    if mode is _Mode.IF_STALE:
        return not _fresh(company.access_token_expires_at, now)
    if mode is _Mode.AFTER_401:
        # A different token means another caller refreshed after the 401 was seen.
        return current == stale or company.access_token_expires_at is None \
            or company.access_token_expires_at <= now
    return refresh_reason(company.access_token_expires_at, company.refresh_token_expires_at, now) is not None


# --- periodic refresh ---------------------------------------------------------------------

@dataclass
class RefreshReport:
    refreshed: int = 0
    failed: int = 0
    needs_reconnecting: list[str] = field(default_factory=list)  # realms whose grant is dead

    @property
    def reconnect_required(self) -> int:
        return len(self.needs_reconnecting)


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
            report.needs_reconnecting.append(realm)
        except TokenRefreshFailed as exc:
            log.warning("%s", exc)
            report.failed += 1
    return report
