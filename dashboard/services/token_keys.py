"""The keys of the token vault: re-encrypt stored tokens with the newest key, and the
start-up check that the configured keys open them at all."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import inspect, select

from ..models import Company, ConnectionState
from ..vault import VaultError
from .token_store import lock_company, token_cache, token_session, vault

log = logging.getLogger(__name__)

# The start-up key check reads this many of the most recently updated companies' tokens.
KEY_CHECK_SAMPLE = 5


@dataclass
class RotationReport:
    companies: int = 0
    tokens_rotated: int = 0
    already_current: int = 0
    unreadable: list[str] = field(default_factory=list)
    connected_again: list[str] = field(default_factory=list)


def rotate_keys() -> RotationReport:
    """Re-encrypt every stored token with the newest key, one company per transaction.

    A company stopped because its tokens could not be read (the only reconnect-required
    state that keeps its tokens) is connected again once they open, e.g. after a key
    dropped too early was put back.
    """
    report = RotationReport()
    with token_session() as session:
        realms = session.execute(select(Company.source_id).where(
            (Company.access_token.is_not(None)) | (Company.refresh_token.is_not(None)))
            .order_by(Company.id)).scalars().all()
    for realm in realms:
        if _rotate_company(realm, report):
            token_cache().forget(realm)
    return report


def _rotate_company(realm: str, report: RotationReport) -> bool:
    """Re-encrypt one company's tokens under its row lock; False if nothing was written."""
    sealer = vault()
    with token_session() as session:
        company = lock_company(session, realm)
        if company is None:
            return False
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
            return False
        if company.connection_state is ConnectionState.RECONNECT_REQUIRED and company.refresh_token:
            company.connection_state = ConnectionState.CONNECTED
            company.connection_error = None
            report.connected_again.append(realm)
            log.info("Company %s is connected again: its tokens are readable again", realm)
        session.commit()
    return True


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
