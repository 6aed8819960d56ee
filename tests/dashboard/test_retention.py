"""Retention: old runs, deliveries, parity checks and audit events are pruned in batches."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import AlertDelivery, AuditEvent, ParityCheck, RunStatus, SyncRun, WebhookDelivery, utcnow
from dashboard.services import audit
from dashboard.services.retention import prune
from tests.dashboard import factories as make


def _runs(realm: str, object_type: str | None, ages_in_days: list[int], status=RunStatus.SUCCEEDED) -> None:
    now = utcnow()
    for age in ages_in_days:
        make.run(realm, status=status, object_type=object_type, created_at=now - timedelta(days=age))


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_old_rows_go_in_batches_keeping_the_last_runs_of_each_type_and_active_ones(db_session):
    now = utcnow()
    make.company("100", "Acme")
    make.company("200", "Idle Co")
    _runs("100", None, [40 + i for i in range(12)] + [1, 2])  # 12 old whole-company runs, 2 recent
    _runs("100", "invoice", [50, 60])                           # only 2 runs of invoices: both kept
    _runs("100", None, [90], status=RunStatus.RUNNING)          # still active: never pruned
    _runs("200", None, [100 + i for i in range(7)])             # an idle company keeps its last 5
    for age in (45, 31, 2):
        db.session.add(WebhookDelivery(integration="qbo", body_sha256=f"{age:064d}", payload={},
                                       received_at=now - timedelta(days=age), processed_at=now - timedelta(days=age)))
    db.session.add(WebhookDelivery(integration="qbo", body_sha256="f" * 64, payload={},
                                   received_at=now - timedelta(days=60)))  # never processed: kept
    for age in (40, 3):
        db.session.add(ParityCheck(company_source_id="100", object_type="customer", local_count=1,
                                   checked_at=now - timedelta(days=age)))
    for age, finished in ((40, True), (40, False), (2, True)):  # a pending one is kept, however old
        db.session.add(AlertDelivery(channel="webhook", event="problem", title="t", payload={},
                                     status="sent" if finished else "pending", created_at=now - timedelta(days=age),
                                     finished_at=now - timedelta(days=age) if finished else None))
    db.session.commit()
    audit.record("sign_in", "alice", now=now - timedelta(days=400))
    audit.record("sign_in", "alice", now=now - timedelta(days=200))

    report = prune(now, batch=3)

    assert report.deleted == {"sync_run": 9 + 2, "webhook_delivery": 2, "parity_check": 1, "alert_delivery": 1,
                              "audit_event": 1}
    kept = sorted((r.company_source_id, r.object_type or "", round((now - r.created_at) / timedelta(days=1)), r.status.value)
                  for r in db.session.scalars(select(SyncRun)))
    assert kept == sorted(
        [("100", "", d, "succeeded") for d in (1, 2, 40, 41, 42)] + [("100", "", 90, "running")]
        + [("100", "invoice", d, "succeeded") for d in (50, 60)]
        + [("200", "", d, "succeeded") for d in (100, 101, 102, 103, 104)])
    assert _count(WebhookDelivery) == 2 and _count(ParityCheck) == 1 and _count(AuditEvent) == 1
    assert _count(AlertDelivery) == 2
    assert prune(now).total == 0  # nothing left to do: a second pass deletes nothing
