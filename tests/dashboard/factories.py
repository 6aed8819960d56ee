"""Rows for dashboard tests, written straight to the database (the sync engine's job in life)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import insert

from dashboard.extensions import db
from dashboard.models import (
    Company, ConnectionState, Customer, Invoice, RunKind, RunStatus, SyncRun, SyncState, SyncStatus, utcnow,
)


def company(realm: str, name: Optional[str] = None, state: ConnectionState = ConnectionState.CONNECTED,
            **columns: Any) -> str:
    now = utcnow()
    defaults = {"connected_at": now - timedelta(days=2), "next_sync_at": now + timedelta(minutes=4),
                "access_token_expires_at": now + timedelta(minutes=50),
                "refresh_token_expires_at": now + timedelta(days=99)}
    db.session.add(Company(source_id=realm, name=name, connection_state=state, **{**defaults, **columns}))
    db.session.commit()
    return realm


def sync_state(realm: str, object_type: str, status: SyncStatus, **columns: Any) -> None:
    db.session.add(SyncState(company_source_id=realm, object_type=object_type, status=status, **columns))
    db.session.commit()


def healthy(realm: str, at: Optional[datetime] = None, records: Optional[dict[str, int]] = None,
            types: tuple[str, ...] = ("customer", "invoice")) -> None:
    """Write synced states for ``types``; ``records``: records stored per type (``records_synced``)."""
    at = at or utcnow() - timedelta(minutes=2)
    for object_type in types:
        sync_state(realm, object_type, SyncStatus.SUCCEEDED, is_initial_backfill_completed=True,
                   last_attempt_time=at, last_successful_sync_time=at,
                   records_synced=(records or {}).get(object_type, 0))


def run(realm: str, kind: RunKind = RunKind.INCREMENTAL, status: RunStatus = RunStatus.SUCCEEDED,
        **columns: Any) -> None:
    db.session.add(SyncRun(company_source_id=realm, kind=kind, status=status, **columns))
    db.session.commit()


def records(realm: str, customers: int = 0, invoices: int = 0, deleted_invoices: int = 0) -> None:
    if customers:
        db.session.execute(insert(Customer), [
            {"company_source_id": realm, "source_id": str(i), "display_name": f"C{i}"} for i in range(customers)])
    rows = [{"company_source_id": realm, "source_id": str(i), "is_deleted": i < deleted_invoices}
            for i in range(invoices + deleted_invoices)]
    if rows:
        db.session.execute(insert(Invoice), rows)
    db.session.commit()


def many_companies(count: int, prefix: str = "9") -> None:
    """Insert companies with sync states, records and runs in bulk (a handful of statements)."""
    now = utcnow()
    realms = [f"{prefix}{i:06d}" for i in range(count)]
    db.session.execute(insert(Company), [
        {"source_id": r, "name": f"Company {i:05d}", "connection_state": ConnectionState.CONNECTED,
         "connected_at": now, "next_sync_at": now + timedelta(minutes=5), "created_at": now, "updated_at": now}
        for i, r in enumerate(realms)])
    db.session.execute(insert(SyncState), [
        {"company_source_id": r, "object_type": t, "created_at": now, "updated_at": now,
         "status": SyncStatus.FAILED if i % 7 == 0 and t == "invoice" else SyncStatus.SUCCEEDED,
         "error_message": "boom" if i % 7 == 0 and t == "invoice" else None,
         "last_successful_sync_time": now}
        for i, r in enumerate(realms) for t in ("customer", "invoice")])
    db.session.execute(insert(Customer), [
        {"company_source_id": r, "source_id": "1", "created_at": now, "updated_at": now} for r in realms])
    db.session.execute(insert(SyncRun), [
        {"company_source_id": r, "kind": RunKind.INCREMENTAL, "status": RunStatus.QUEUED, "created_at": now,
         "updated_at": now} for i, r in enumerate(realms) if i % 3 == 0])
    db.session.commit()
