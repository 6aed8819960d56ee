"""One alert pass: ask every source, compare with the ``alert`` rows, record what changed
and queue the messages. Runs in the worker every minute, never in a sync.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from flask import current_app
from sqlalchemy import false, or_, select

from ...extensions import db
from ...locks import LockBusy, hold
from ...models import Alert, utcnow
from ..work_queue import work_queue
from . import delivery, messages, rules
from .problems import SOURCES, Problem, Source

log = logging.getLogger(__name__)

LOCK = "alerts:reconcile"


@dataclass
class Pass:
    """What one pass did."""

    opened: int = 0
    reminded: int = 0
    resolved: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)
    failed_sources: list[str] = field(default_factory=list)
    skipped: bool = False       # another pass held the lock


def gather(now: datetime, sources: Mapping[str, Source]) -> tuple[list[Problem], list[str]]:
    """Ask every source; a source that fails is named (its open alerts stand) and logged."""
    problems: list[Problem] = []
    failed: list[str] = []
    for kind, source in sources.items():
        try:
            problems.extend(source(now))
        except Exception:
            db.session.rollback()
            log.exception("Alert source %r failed; its open alerts are kept as they are", kind)
            failed.append(kind)
    return problems, failed


def reconcile(now: datetime | None = None, sources: Mapping[str, Source] | None = None) -> Pass:
    """Run one pass (at most one at a time across all workers) and queue its deliveries."""
    now = now or utcnow()
    try:
        with hold(LOCK, ttl=120.0):
            result = _reconcile(now, SOURCES if sources is None else sources)
    except LockBusy:
        return Pass(skipped=True)
    # The channels with messages due (new ones, or ones whose drain task was lost).
    for channel in delivery.channels_with_due_deliveries(now):
        try:
            work_queue().deliver_alerts(channel)
        except Exception:  # the rows stay pending and are shown; a queue outage must not fail the pass
            log.exception("Could not queue the delivery of %s alerts", channel)
    db.session.rollback()
    return result


def _reconcile(now: datetime, sources: Mapping[str, Source]) -> Pass:
    settings = current_app.config["SETTINGS"]
    problems, failed = gather(now, sources)
    keys = {p.key for p in problems}
    rows = {a.key: a for a in db.session.scalars(
        select(Alert).where(or_(Alert.resolved_at.is_(None), Alert.key.in_(keys) if keys else false())))}
    open_alerts = {key: rules.OpenAlert(a.key, a.kind, a.stage, a.opened_at, a.last_notified_at)
                   for key, a in rows.items() if a.resolved_at is None}
    repeat_after = timedelta(hours=float(current_app.config["ALERT_REPEAT_HOURS"]))
    plan = rules.plan(problems, open_alerts, now, repeat_after, failed)
    base = settings.alert_base_url

    def as_item(alert: Alert) -> dict[str, Any]:
        return messages.item(key=alert.key, kind=alert.kind, title=alert.title, message=alert.message,
                             company_source_id=alert.company_source_id, object_type=alert.object_type,
                             stage=alert.stage, opened_at=alert.opened_at, resolved_at=alert.resolved_at,
                             base_url=base)

    opened = [as_item(_open(rows, problem, now)) for problem in plan.opened]
    reminded = [as_item(_remind(rows[problem.key], problem, now)) for problem in plan.reminded]
    for problem in plan.kept:  # the words may have changed (a new error message): nothing is sent
        _refresh(rows[problem.key], problem)
    resolved = [as_item(_resolve(rows[alert.key], now)) for alert in plan.resolved]
    threshold = int(current_app.config["ALERT_DIGEST_THRESHOLD"])
    events = (_events("problem", opened, threshold, now) + _events("reminder", reminded, threshold, now)
              + _events("recovery", resolved, threshold, now))
    deliveries = delivery.record(events, settings, now)
    db.session.commit()
    for event in events:
        log.log(logging.INFO if event["event"] == "recovery" else logging.WARNING, "Alert: %s",
                messages.summary(event))
    return Pass(opened=len(opened), reminded=len(reminded), resolved=len(resolved), events=events,
                deliveries=[d.id for d in deliveries], failed_sources=failed)


def _events(kind: str, items: list[dict[str, Any]], threshold: int, now: datetime) -> list[dict[str, Any]]:
    if not items:
        return []
    if rules.needs_digest(len(items), threshold):
        return [messages.digest(kind, items, now)]
    return [messages.single(kind, item, now) for item in items]


def _open(rows: dict[str, Alert], problem: Problem, now: datetime) -> Alert:
    """Open the problem's alert (a new row, or its old row opened again, or a new stage)."""
    alert = rows.get(problem.key)
    if alert is None:
        alert = Alert(key=problem.key, notifications=0, opened_at=now)
        db.session.add(alert)
        rows[problem.key] = alert
    elif alert.resolved_at is not None:
        alert.opened_at, alert.resolved_at, alert.notifications = now, None, 0
    _refresh(alert, problem)
    alert.stage = problem.stage
    alert.last_notified_at = now
    alert.notifications = (alert.notifications or 0) + 1
    return alert


def _remind(alert: Alert, problem: Problem, now: datetime) -> Alert:
    _refresh(alert, problem)
    alert.last_notified_at = now
    alert.notifications += 1
    return alert


def _refresh(alert: Alert, problem: Problem) -> None:
    alert.kind, alert.company_source_id, alert.object_type = problem.kind, problem.company_source_id, problem.object_type
    alert.title, alert.message = problem.title[:500], problem.message


def _resolve(alert: Alert, now: datetime) -> Alert:
    alert.resolved_at = now
    return alert
