"""Where problems come from: one source per kind, each a function of ``now`` that reads the
database and returns the problems it sees (``SOURCES``).

A problem's ``key`` is stable while the problem lasts (``sync_failed:<realm>:<type>``), so
the same failure seen on every pass is one alert. A source that raises keeps its kind's
open alerts as they are (nothing is "resolved" because a query failed). To add a kind
(the API budget, say), add one function here and one entry to ``SOURCES``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import and_, or_, select

from ...extensions import db
from ...models import Company, ConnectionState, SyncState, SyncStatus
from ...sync import parity as parity_rules
from ...sync.specs import SPECS
from .. import parity

# Failure kinds another source already reports (the company's reconnect alert), or that
# are no failure of the type at all.
NOT_A_TYPE_FAILURE = ("reconnect_required", "cancelled")
HARD_EXPIRY_WARNINGS = (timedelta(days=30), timedelta(days=7))


@dataclass(frozen=True)
class Problem:
    """Something an operator must hear about, as a source sees it now."""

    key: str                          # stable while it lasts: "<kind>:<realm>[:<object type>]"
    kind: str                         # its source's name (README "Alerts" lists them)
    title: str                        # one line: what and where
    message: str                      # the details: Intuit's error, the counts, what to do
    company_source_id: str | None = None   # None: app-wide (the API budget)
    company_name: str | None = None
    object_type: str | None = None
    stage: str | None = None          # a change of stage notifies again ("30 days" → "7 days")
    repeats: bool = True              # reminded every ALERT_REPEAT_HOURS while it lasts
    holds_only: bool = False          # keeps an open alert open but never opens one


Source = Callable[[datetime], Iterable[Problem]]


def _company_label(name: str | None, realm: str) -> str:
    return f"{name} ({realm})" if name else f"company {realm}"


def _type_label(object_type: str) -> str:
    spec = SPECS.get(object_type)
    return spec.label if spec else object_type


# -- the sources -------------------------------------------------------------------------------
def failed_types(now: datetime) -> list[Problem]:
    """An object type FAILED for good (after its retries) in a connected company.

    While such a type is being retried (PENDING or IN_PROGRESS, its failure not yet
    cleared by a success), its alert stays open without a new message: a retry is no
    recovery until it succeeds.
    """
    retrying = and_(SyncState.status.in_((SyncStatus.PENDING, SyncStatus.IN_PROGRESS)), SyncState.attempts > 0)
    rows = db.session.execute(
        select(SyncState.company_source_id, SyncState.object_type, SyncState.status, SyncState.error_message,
               SyncState.error_kind, SyncState.attempts, Company.name)
        .join(Company, Company.source_id == SyncState.company_source_id)
        .where(Company.connection_state == ConnectionState.CONNECTED, SyncState.enabled.is_(True),
               or_(SyncState.status == SyncStatus.FAILED, retrying))).all()
    problems = []
    for realm, object_type, status, error, kind, attempts, name in rows:
        if kind in NOT_A_TYPE_FAILURE:
            continue
        problems.append(Problem(
            key=f"sync_failed:{realm}:{object_type}", kind="sync_failed",
            title=f"{_type_label(object_type)} sync failed for {_company_label(name, realm)}",
            message=error or "The sync failed (no message recorded).",
            company_source_id=realm, company_name=name, object_type=object_type,
            holds_only=status != SyncStatus.FAILED))
    return problems


def reconnect_required(now: datetime) -> list[Problem]:
    """A company whose grant QuickBooks no longer accepts: only a person can reconnect it."""
    rows = db.session.execute(select(Company.source_id, Company.name, Company.connection_error)
                              .where(Company.connection_state == ConnectionState.RECONNECT_REQUIRED)).all()
    return [Problem(key=f"reconnect_required:{realm}", kind="reconnect_required",
                    title=f"{_company_label(name, realm)} needs reconnecting to QuickBooks",
                    message=error or "QuickBooks refused the connection; syncs are stopped until an "
                                     "operator clicks Reconnect on the company page.",
                    company_source_id=realm, company_name=name)
            for realm, name, error in rows]


def parity_failures(now: datetime) -> list[Problem]:
    """A drift between QuickBooks' count and ours in two checks in a row (services.parity)."""
    rows = db.session.execute(
        select(SyncState, Company.name).join(Company, Company.source_id == SyncState.company_source_id)
        .where(Company.connection_state == ConnectionState.CONNECTED, SyncState.enabled.is_(True),
               SyncState.parity_drifts >= parity_rules.FAILURE_STREAK)).all()
    problems = []
    for state, name in rows:
        message = parity.failure(state)
        if not message:
            continue
        realm = state.company_source_id
        problems.append(Problem(
            key=f"parity_failure:{realm}:{state.object_type}", kind="parity_failure",
            title=f"{_type_label(state.object_type)} of {_company_label(name, realm)} drift from QuickBooks",
            message=f"{message}. A full resync of the type fixes it (Resync on the company page).",
            company_source_id=realm, company_name=name, object_type=state.object_type))
    return problems


def hard_expiry_stage(hard_expires_at: datetime | None, now: datetime) -> str | None:
    """Say how near the grant's 5-year end is: "expired", "7 days", "30 days", or None (far or unknown)."""
    if hard_expires_at is None:
        return None
    left = hard_expires_at - now
    if left <= timedelta(0):
        return "expired"
    for warning in sorted(HARD_EXPIRY_WARNINGS):
        if left <= warning:
            return f"{warning.days} days"
    return None


def token_hard_expiry(now: datetime) -> list[Problem]:
    """A refresh token within 30 (then 7) days of Intuit's 5-year cap: the company must be
    reconnected before then. The 30-day warning is said once, the 7-day one daily."""
    horizon = now + max(HARD_EXPIRY_WARNINGS)
    rows = db.session.execute(
        select(Company.source_id, Company.name, Company.refresh_token_hard_expires_at)
        .where(Company.connection_state == ConnectionState.CONNECTED,
               Company.refresh_token_hard_expires_at.is_not(None),
               Company.refresh_token_hard_expires_at <= horizon)).all()
    problems = []
    for realm, name, hard_at in rows:
        stage = hard_expiry_stage(hard_at, now)
        if stage is None:
            continue
        days = max(0, (hard_at - now).days)
        when = f"{hard_at:%Y-%m-%d %H:%M} UTC"
        title = (f"The QuickBooks connection of {_company_label(name, realm)} has reached its 5-year end"
                 if stage == "expired" else
                 f"The QuickBooks connection of {_company_label(name, realm)} ends for good in {days} days")
        problems.append(Problem(
            key=f"token_hard_expiry:{realm}", kind="token_hard_expiry", title=title,
            message=(f"Intuit caps every refresh token at five years: this company's ends on {when}, and no "
                     "refresh can extend it. Reconnect the company (Reconnect on its page) before then to "
                     "keep it syncing."),
            company_source_id=realm, company_name=name, stage=stage, repeats=stage != "30 days"))
    return problems


# Every kind of problem and the function that finds it. The lead adds the budget here.
SOURCES: dict[str, Source] = {
    "sync_failed": failed_types,
    "reconnect_required": reconnect_required,
    "parity_failure": parity_failures,
    "token_hard_expiry": token_hard_expiry,
}
