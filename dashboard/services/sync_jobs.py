"""Sync runs: record them, queue them, find them, cancel them.

Huey delivers a task at most once, so the ``sync_run`` row is the record of every run:
it is committed before its task is queued, and a reaper re-queues runs whose lease
expired. One company has at most one active (queued or running) run at a time; a
request that an active run already covers returns that run instead of queueing twice.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..locks import hold
from ..models import (
    ONE_ACTIVE, Company, ConnectionState, RunKind, RunStatus, SyncRun, SyncState, SyncStatus, utcnow,
)
from ..sync.specs import SPECS, dependents
from . import type_switches
from .work_queue import work_queue

log = logging.getLogger(__name__)

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
# A stronger kind covers a weaker one: a queued full resync also does what an
# incremental request asks for.
KIND_RANK = {RunKind.INCREMENTAL: 0, RunKind.BACKFILL: 1, RunKind.FULL_RESYNC: 2}
# Huey priority: backfills (and full resyncs) outrank the 5-minute incremental work.
PRIORITY = {RunKind.INCREMENTAL: 0, RunKind.BACKFILL: 10, RunKind.FULL_RESYNC: 10}


class SyncRequestError(Exception):
    """The sync cannot be requested (unknown company or object, not connected)."""


def check_object_type(object_type: str | None) -> None:
    if object_type is not None and object_type not in SPECS:
        raise SyncRequestError(f"Unknown object type {object_type!r}; expected one of {', '.join(SPECS)}")


def connected_company(company_source_id: str) -> Company:
    company = db.session.execute(
        select(Company).where(Company.source_id == company_source_id)).scalar_one_or_none()
    if company is None:
        raise SyncRequestError(f"No company {company_source_id!r}")
    if company.connection_state != ConnectionState.CONNECTED:
        raise SyncRequestError(f"Company {company_source_id} is {company.connection_state}; reconnect it first")
    return company


def active_run(company_source_id: str, object_type: str | None = None) -> SyncRun | None:
    """Return the queued or running run of this company (covering ``object_type`` if given)."""
    query = select(SyncRun).where(SyncRun.company_source_id == company_source_id,
                                  SyncRun.status.in_(ACTIVE))
    if object_type is not None:
        query = query.where((SyncRun.object_type.is_(None)) | (SyncRun.object_type == object_type))
    return db.session.execute(query.order_by(SyncRun.id.desc()).limit(1)).scalar_one_or_none()


def covers(run: SyncRun, kind: RunKind, object_type: str | None) -> bool:
    """Whether ``run`` does what a request for ``kind`` of ``object_type`` asks for."""
    return (run.object_type is None or run.object_type == object_type) and KIND_RANK[run.kind] >= KIND_RANK[kind]


def request_sync(company_source_id: str, *, kind: RunKind, trigger: str,
                 object_type: str | None = None) -> tuple[SyncRun, bool]:
    """Record a sync run (row committed BEFORE its task is queued), then queue it.

    If a queued run already covers this company/object, return it with created=False
    (a double click or a webhook burst never queues twice); one that does not cover the
    request is widened. A running run may have read before the change that prompted
    this request, so it is given one follow-up run (merged, however many requests come)
    that it queues when it finishes.
    """
    run, created = record_sync(company_source_id, kind=kind, trigger=trigger, object_type=object_type)
    if created:
        enqueue(run)
    return run, created


def record_sync(company_source_id: str, *, kind: RunKind, trigger: str, object_type: str | None = None,
                follow_up: bool = True) -> tuple[SyncRun, bool]:
    """Return the run that answers a sync request, and whether it is new (committed, not queued).

    The company's active run answers it when it can: a queued one (widened if need be) or,
    with ``follow_up``, a running one given a follow-up. Without ``follow_up`` a running
    run is returned as it is (`sync now` follows it; ``covers`` says whether that is enough).
    """
    check_object_type(object_type)
    kind = RunKind(kind)
    # The per-company lock makes check-then-insert atomic across web and worker processes;
    # the scheduler inserts without it, so the database's one-active-run index may still
    # refuse the insert: then the run it just wrote answers this request.
    with hold(f"request-sync:{company_source_id}", ttl=15, wait=10):
        connected_company(company_source_id)
        for _ in range(2):
            current = active_run(company_source_id)
            if current is not None and _extend(current, kind, object_type, follow_up):
                return current, False
            run = SyncRun(company_source_id=company_source_id, object_type=object_type, kind=kind,
                          status=RunStatus.QUEUED, trigger=trigger)
            db.session.add(run)
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                continue
            return run, True
    raise SyncRequestError(f"Company {company_source_id} has another active run that could not take this request")


def record_scheduled_runs(kinds: dict[str, RunKind]) -> list[Row]:
    """Record a scheduled run for each company in one statement (committed); return their
    ``id``, ``company_source_id`` and ``kind`` (plain rows: nothing to reload after the commit).

    A company that already has an active run gets none here (the one-active-run index
    refuses it, ON CONFLICT DO NOTHING): the caller hands it to ``request_sync``.
    """
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    now = utcnow()
    table = SyncRun.__table__
    # One statement compiled once (cached), sent as a multi-row INSERT … RETURNING by the driver.
    stmt = dialect.insert(table).on_conflict_do_nothing(
        index_elements=["company_source_id"], index_where=text(ONE_ACTIVE)).returning(
        table.c.id, table.c.company_source_id, table.c.kind, sort_by_parameter_order=True)
    runs = db.session.connection().execute(stmt, [
        {"company_source_id": realm, "kind": kind, "status": RunStatus.QUEUED, "trigger": "schedule",
         "created_at": now, "updated_at": now} for realm, kind in kinds.items()]).all()
    db.session.commit()
    return runs


def _extend(run: SyncRun, kind: RunKind, object_type: str | None, follow_up: bool = True) -> bool:
    """Make an active run answer the request; False if it ended in the meantime.

    Without ``follow_up`` a running run is left as it is (True while it still runs).

    Each write is conditional on the status it was decided for, because a worker may
    claim or finish the run between our read and our write: a widening that lands after
    the claim, or a follow-up after the finish, would be lost silently.
    """
    if run.status == RunStatus.QUEUED:
        if covers(run, kind, object_type):
            return True
        widened = {"object_type": run.object_type if run.object_type == object_type else None,
                   "kind": max(run.kind, kind, key=KIND_RANK.__getitem__)}
        if _update_if(run, RunStatus.QUEUED, widened):
            return True
        if run.status != RunStatus.RUNNING:  # finished or cancelled meanwhile
            return False
    if not follow_up:
        return run.status == RunStatus.RUNNING
    checkpoint: dict[str, Any] = dict(run.checkpoint or {})
    followup = checkpoint.get("followup") or {"kind": kind.value, "object_type": object_type}
    if followup.get("object_type") != object_type:
        followup["object_type"] = None
    if KIND_RANK[kind] > KIND_RANK[RunKind(followup["kind"])]:
        followup["kind"] = kind.value
    checkpoint["followup"] = followup
    return _update_if(run, RunStatus.RUNNING, {"checkpoint": checkpoint})


def _update_if(run: SyncRun, status: RunStatus, values: dict[str, Any]) -> bool:
    """Write ``values`` to the run if it still has ``status``; reload it either way."""
    result = db.session.execute(update(SyncRun).where(SyncRun.id == run.id, SyncRun.status == status)
                                .values(**values))
    db.session.commit()
    db.session.refresh(run)
    return result.rowcount == 1


def enqueue(run: SyncRun) -> None:
    """Queue the task that executes ``run`` (the row must already be committed)."""
    work_queue().run_sync(run.id, PRIORITY[run.kind])


def enqueue_many(runs: Sequence[SyncRun | Row]) -> None:
    """Queue the tasks of many committed runs at once (one round trip to Redis)."""
    if runs:
        work_queue().run_syncs([(run.id, PRIORITY[run.kind]) for run in runs])


def backfill_pending(company_source_id: str) -> bool:
    """Whether some object type the company syncs has not finished its first backfill."""
    return bool(backfill_pending_among([company_source_id]))


def backfill_pending_among(realms: list[str]) -> set[str]:
    """The companies among ``realms`` with a type switched on that never finished its first
    backfill (one statement for them all)."""
    if not realms:
        return set()
    states = db.session.execute(
        select(SyncState.company_source_id, SyncState.object_type, SyncState.enabled,
               SyncState.is_initial_backfill_completed).where(SyncState.company_source_id.in_(realms))).all()
    by_realm: dict[str, dict[str, tuple[bool, bool]]] = {realm: {} for realm in realms}
    for realm, name, enabled, done in states:
        by_realm[realm][name] = (enabled, bool(done))
    default_on = set(type_switches.default_types())
    return {realm for realm, stored in by_realm.items()
            if any(stored.get(name, (name in default_on, False)) == (True, False) for name in SPECS)}


def resume_kind(company_source_id: str) -> RunKind:
    """Return the kind of the company's next cycle: a backfill until every type has one, then incremental."""
    return RunKind.BACKFILL if backfill_pending(company_source_id) else RunKind.INCREMENTAL


def request_initial_sync(company_source_id: str, trigger: str = "connect") -> SyncRun:
    """Queue the backfill of every object type, or an incremental resume if it is complete."""
    run, _ = request_sync(company_source_id, kind=resume_kind(company_source_id), trigger=trigger)
    return run


def retry_failed(company_source_id: str, object_type: str) -> tuple[SyncRun, bool]:
    """Queue a new attempt for a failed object type (it resumes from its cursor).

    The types that depend on it, directly or through others (invoices on customers), did
    not run when it failed, so the retry runs every type, in order: the ones already
    synced cost one CDC call.
    """
    check_object_type(object_type)
    synced = set(type_switches.enabled_types(company_source_id))
    target = None if any(spec.name in synced for spec in dependents(object_type)) else object_type
    return request_sync(company_source_id, kind=resume_kind(company_source_id), trigger="retry",
                        object_type=target)


DISCONNECTED = "Cancelled: the company was disconnected"
RECONNECT_REQUIRED = "Cancelled: the company must be reconnected (its grant was refused)"


def cancel_company_syncs(company_source_id: str, reason: str = DISCONNECTED) -> int:
    """Cancel the company's queued and running runs, saying why; return how many.

    A running worker notices at its next page commit, when renewing its lease fails.
    """
    now = utcnow()
    result = db.session.execute(
        update(SyncRun).where(SyncRun.company_source_id == company_source_id, SyncRun.status.in_(ACTIVE))
        .values(status=RunStatus.CANCELLED, finished_at=now, lease_expires_at=None,
                error_message=reason))
    db.session.execute(
        update(SyncState).where(SyncState.company_source_id == company_source_id,
                                SyncState.status == SyncStatus.IN_PROGRESS)
        .values(status=SyncStatus.PENDING))
    db.session.commit()
    return result.rowcount or 0
