"""Connect and disconnect companies: store a new grant, or revoke and erase it; stop the
syncs of a company whose grant died.

Synced data always stays: a disconnected company keeps its customers, invoices and
sync cursors, so connecting it again resumes where it left off.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..integrations import TokenSet, get_integration
from ..integrations.errors import IntegrationError
from ..models import Company, ConnectionState, utcnow
from . import sync_jobs, type_switches
from .token_store import lock_company, token_cache, token_session, vault, write_tokens
from .tokens import RefreshReport, refresh_due_tokens

log = logging.getLogger(__name__)


class CompanyNotFound(LookupError):
    """No company has this realm id."""


@dataclass(frozen=True)
class Connected:
    """What a successful connect did."""

    company_source_id: str
    name: str | None
    created: bool            # first connection of this realm
    was_state: ConnectionState | None  # the state before (None when created)


def save_grant(integration: str, realm: str, tokens: TokenSet, now: datetime | None = None,
               name: str | None = None) -> Connected:
    """Upsert the company by realm with fresh tokens and mark it connected.

    A reconnect replaces the tokens and clears "reconnect required"; its data stays.
    ``name`` (the provider's company name) replaces the stored one; None keeps it.
    """
    now = now or utcnow()
    for attempt in (1, 2):
        with token_session() as session:
            company = lock_company(session, realm)
            created = company is None
            was_state = None if created else company.connection_state
            if created:
                company = Company(source_id=realm, integration=integration, token_version=0,
                                  connection_state=ConnectionState.CONNECTED, connected_at=now)
                session.add(company)
                try:
                    session.flush()
                    type_switches.seed_states(session, realm)
                    session.flush()
                except IntegrityError:  # another callback created it first: update it instead
                    session.rollback()
                    if attempt == 1:
                        continue
                    raise
            write_tokens(session, company, tokens, company.token_version)
            # A new grant has a new hard expiry: never keep the previous grant's.
            company.refresh_token_hard_expires_at = tokens.refresh_token_hard_expires_at
            company.integration = integration
            company.connection_state = ConnectionState.CONNECTED
            company.connection_error = None
            company.connected_at = now
            company.disconnected_at = None
            if name:
                company.name = name
            name = company.name
            session.commit()
        token_cache().forget(realm)
        log.info("Company %s %s", realm, "connected" if created else f"reconnected (was {was_state})")
        return Connected(realm, name, created, was_state)
    raise AssertionError("unreachable")


def disconnect(company_source_id: str) -> None:
    """Revoke the grant at the provider, erase the tokens, cancel the company's syncs and
    mark it disconnected; keep its synced data. Raise CompanyNotFound for an unknown realm.
    """
    realm = company_source_id
    settings = current_app.config["SETTINGS"]
    with token_session() as session:
        # Under the row lock no refresh can run meanwhile and resurrect the tokens.
        company = lock_company(session, realm)
        if company is None:
            raise CompanyNotFound(f"There is no company {realm}.")
        secret = company.refresh_token or company.access_token
        kind = "refresh" if company.refresh_token else "access"
        if secret is not None:
            try:
                token = vault().open(realm, kind, secret)  # type: ignore[arg-type]
                get_integration(company.integration, settings).revoke(token)
            except Exception as exc:  # erase anyway: the operator asked to disconnect
                message = str(exc) if isinstance(exc, IntegrationError) else type(exc).__name__
                log.warning("Could not revoke the grant of company %s at the provider (%s); the "
                            "tokens are erased here anyway", realm, message)
        company.access_token = None
        company.access_token_expires_at = None
        company.refresh_token = None
        company.refresh_token_expires_at = None
        company.refresh_token_hard_expires_at = None
        company.token_version = company.token_version + 1
        company.connection_state = ConnectionState.DISCONNECTED
        company.connection_error = None
        company.disconnected_at = utcnow()
        session.commit()
    token_cache().forget(realm)
    cancelled = sync_jobs.cancel_company_syncs(realm)
    log.info("Company %s disconnected; %d sync run(s) cancelled", realm, cancelled)
    db.session.expire_all()  # the caller's session must not show the old state


def refresh_tokens_ahead() -> RefreshReport:
    """Refresh the tokens that near their end; cancel the syncs of companies whose grant died.

    Only a person can revive a dead grant, so the company's waiting runs stop now instead
    of each being refused when a worker picks it up.
    """
    report = refresh_due_tokens()
    for realm in report.needs_reconnecting:
        try:
            cancelled = sync_jobs.cancel_company_syncs(realm, sync_jobs.RECONNECT_REQUIRED)
        except Exception:  # the mark is committed: each run is refused at its start anyway
            db.session.rollback()
            log.exception("Could not cancel the syncs of company %s", realm)
            continue
        log.info("Company %s needs reconnecting; %d sync run(s) cancelled", realm, cancelled)
    return report
