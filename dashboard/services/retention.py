"""Retention: prune what only grows with time, in small batches, once a day.

``sync_run`` rows and processed webhook deliveries older than ``RETENTION_DAYS`` go,
except each company's last ``RETENTION_KEEP_RUNS`` runs per object type (the company page
keeps its history even for a company idle for months) and runs still active; parity
checks and finished alert deliveries older than that go too (a type's parity verdict
lives on ``sync_state``; an alert's state on its ``alert`` row). The
audit trail keeps ``AUDIT_RETENTION_DAYS`` (at least a year: the database refuses to
delete a younger event).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from ..extensions import db
from ..models import AlertDelivery, AuditEvent, ParityCheck, RunStatus, SyncRun, WebhookDelivery, utcnow
from .sync_client import option

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
BATCH = 1000  # rows per delete: short transactions, never a long lock on a busy table


@dataclass
class PruneReport:
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def prune(now: datetime | None = None, batch: int = BATCH) -> PruneReport:
    """Delete what is past its retention; return how many rows of each table went."""
    now = now or utcnow()
    cutoff = now - timedelta(days=option("RETENTION_DAYS", int))
    keep = option("RETENTION_KEEP_RUNS", int)
    # Finished runs ranked newest first within each company and object type (NULL: all types).
    ranked = select(SyncRun.id, SyncRun.created_at, func.row_number().over(
        partition_by=(SyncRun.company_source_id, SyncRun.object_type),
        order_by=(SyncRun.created_at.desc(), SyncRun.id.desc())).label("rank")
    ).where(SyncRun.status.in_(FINISHED)).subquery()
    targets = {
        "sync_run": (SyncRun, select(ranked.c.id).where(ranked.c.rank > keep, ranked.c.created_at < cutoff)),
        "webhook_delivery": (WebhookDelivery, select(WebhookDelivery.id).where(
            WebhookDelivery.processed_at.is_not(None), WebhookDelivery.received_at < cutoff)),
        "parity_check": (ParityCheck, select(ParityCheck.id).where(ParityCheck.checked_at < cutoff)),
        "alert_delivery": (AlertDelivery, select(AlertDelivery.id).where(
            AlertDelivery.finished_at.is_not(None), AlertDelivery.finished_at < cutoff)),
        "audit_event": (AuditEvent, select(AuditEvent.id).where(
            AuditEvent.occurred_at < now - timedelta(days=option("AUDIT_RETENTION_DAYS", int)))),
    }
    report = PruneReport()
    for name, (model, ids) in targets.items():
        report.deleted[name] = _delete_in_batches(model, ids, batch)
    return report


def _delete_in_batches(model, ids, batch: int) -> int:
    total = 0
    while True:
        chunk = list(db.session.scalars(ids.limit(batch)))
        if not chunk:
            return total
        total += db.session.execute(delete(model).where(model.id.in_(chunk))).rowcount
        db.session.commit()
        if len(chunk) < batch:
            return total
