"""The audit trail: operator actions written once, read per company or filtered.

There is deliberately no function here that updates or deletes an event; the database
refuses both anyway (see the ``audit_event`` migration), except deleting events older
than a year, which only ``retention`` does.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional

from sqlalchemy import select

from ..extensions import db
from ..models import AuditEvent, utcnow

# action -> how the pages say it
ACTIONS = {
    "sign_in": "Signed in",
    "sign_in_failed": "Sign-in refused",
    "sign_out": "Signed out",
    "connect": "Connected",
    "reconnect": "Reconnected",
    "disconnect": "Disconnected",
    "resync": "Resync",
    "full_resync": "Full resync",
    "retry": "Retry",
    "switch_on": "Switched a type on",
    "switch_off": "Switched a type off",
    "type_full_resync": "Full resync of a type",
    "parity_check": "Parity check",
    "sync_now": "Sync now (command line)",
    "rotate_keys": "Rotated encryption keys",
    "create_operator": "Created an operator",
}
OUTCOMES = ("ok", "refused", "failed")
PAGE_SIZE = 50


def record(action: str, actor: str, *, company_source_id: Optional[str] = None, object_type: Optional[str] = None,
           outcome: str = "ok", detail: Optional[str] = None, remote_addr: Optional[str] = None,
           now: Optional[datetime] = None) -> AuditEvent:
    """Append one event and commit it (an action is on record even if what follows fails)."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}")
    if outcome not in OUTCOMES:
        raise ValueError(f"Unknown audit outcome {outcome!r}")
    event = AuditEvent(occurred_at=now or utcnow(), actor=(actor or "anonymous")[:120], action=action,
                       company_source_id=company_source_id, object_type=object_type, outcome=outcome,
                       detail=detail, remote_addr=(remote_addr or None) and remote_addr[:64])
    db.session.add(event)
    db.session.commit()
    return event


def for_company(company_source_id: str, limit: int = 20) -> list[AuditEvent]:
    """The company's latest events, newest first (one indexed statement)."""
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.company_source_id == company_source_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)))


@dataclass(frozen=True)
class AuditFilter:
    """What the global page narrows to; every part is optional."""

    company: Optional[str] = None
    action: Optional[str] = None
    actor: Optional[str] = None
    since: Optional[date] = None   # from the start of this day (UTC)
    until: Optional[date] = None   # to the end of this day (UTC)
    before_id: Optional[int] = None  # the page after the one that ended at this id


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_before_id: Optional[int]  # None: no older events


def search(filters: AuditFilter, page_size: int = PAGE_SIZE) -> AuditPage:
    """Events matching ``filters``, newest first, one page at a time (keyset on id)."""
    stmt = select(AuditEvent)
    if filters.company:
        stmt = stmt.where(AuditEvent.company_source_id == filters.company)
    if filters.action:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.actor:
        stmt = stmt.where(AuditEvent.actor == filters.actor)
    if filters.since:
        stmt = stmt.where(AuditEvent.occurred_at >= _day_start(filters.since))
    if filters.until:
        stmt = stmt.where(AuditEvent.occurred_at < _day_start(filters.until) + timedelta(days=1))
    if filters.before_id:
        stmt = stmt.where(AuditEvent.id < filters.before_id)
    rows = list(db.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(page_size + 1)))
    more = len(rows) > page_size
    rows = rows[:page_size]
    return AuditPage(rows, rows[-1].id if more else None)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)
