"""Parity checks: Intuit's COUNT(*) per object type against the rows we hold, recorded.

A check covers every type the company syncs whose first backfill is complete. The counts
go to Intuit as batch requests of up to 10 ``Query`` items, so a check costs one HTTP
call per 10 types (3 for all 28); an item Intuit refuses spoils only its own type ("could not check").
Each type gets a ``parity_check`` row and its ``sync_state`` parity columns:
``parity_drifts`` counts the drifting checks in a row, and two make a failure
(``failure``). ``SyncState.status`` is left alone: the next sync would overwrite it.

When: inside a company's sync run, under its company lock, right after the run
succeeded (our rows then match what we just read), if the company's daily slot has
come, an operator asked (``request_check``), or the run was a full resync (the drift's
fix shows its result at once). A check never fails its run: its own errors are logged
and recorded per type. A company's first check, after its initial backfill, costs no
call: each type's backfill asked Intuit's COUNT(*) when it began, and that count stands.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import select, update

from ..extensions import db
from ..locks import LockBusy, hold
from ..models import Company, ParityCheck, RunKind, SyncRun, SyncState, utcnow
from ..qbo.client import BATCH_MAX_ITEMS, QboClient
from ..sync import parity as rules
from ..sync.errors import RunCancelled, SyncError
from ..sync.parity import Verdict
from ..sync.specs import SPECS, EntitySpec, ordered
from . import sync_jobs, sync_store, type_switches
from .sync_client import build_client, option

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


# -- the check -------------------------------------------------------------------
def checked_types(company_source_id: str) -> list[EntitySpec]:
    """Return the types a check covers, in sync order: switched on, first backfill complete."""
    done = set(db.session.execute(select(SyncState.object_type).where(
        SyncState.company_source_id == company_source_id,
        SyncState.is_initial_backfill_completed.is_(True))).scalars())
    return [spec for spec in ordered(type_switches.enabled_types(company_source_id)) if spec.name in done]


def _source_counts(client: QboClient, specs: list[EntitySpec]) -> dict[str, int | str]:
    """Ask Intuit for the counts, 30 to a batch; map each type to its count or why there is none."""
    counts: dict[str, int | str] = {}
    for chunk in rules.chunks(specs, BATCH_MAX_ITEMS):
        try:
            answers = client.batch_query(rules.statements(chunk))
        except SyncError as exc:
            log.warning("Parity counts of %s failed: %s", client.realm, exc)
            answers = {spec.name: exc for spec in chunk}
        except Exception as exc:  # a bug or a limiter timeout: this batch's types are not checked
            log.exception("Parity counts of %s failed", client.realm)
            answers = {spec.name: SyncError(f"unexpected {type(exc).__name__}: {str(exc)[:200]}") for spec in chunk}
        for spec in chunk:
            answer = answers[spec.name]
            if isinstance(answer, SyncError):
                counts[spec.name] = str(answer)
                continue
            try:
                counts[spec.name] = rules.source_count(answer)
            except ValueError as exc:
                counts[spec.name] = str(exc)
    return counts


def _backfill_counts(company_source_id: str, specs: list[EntitySpec]) -> dict[str, int | str]:
    """The COUNT(*) each type's backfill asked Intuit for when it began (no call made here)."""
    totals = dict(db.session.execute(select(SyncState.object_type, SyncState.records_total).where(
        SyncState.company_source_id == company_source_id,
        SyncState.object_type.in_([spec.name for spec in specs]))).all())
    return {spec.name: totals[spec.name] if totals.get(spec.name) is not None
            else "the backfill could not count them" for spec in specs}


def check_company(company_source_id: str, client: QboClient, clock: Clock = utcnow) -> list[Verdict]:
    """Compare Intuit's count with our live rows for every checked type; record and return the verdicts.

    Also moves the company's next daily check to its slot and answers a pending request
    (one made after this check began stays pending). Call it under the company lock.
    """
    return _check(company_source_id, lambda specs: _source_counts(client, specs), clock)


def check_after_first_backfill(company_source_id: str, clock: Clock = utcnow) -> list[Verdict]:
    """The company's first check, free: each type's backfill counted Intuit's records when it
    began, so that count stands for Intuit's (a record added during the backfill shows as a
    drift of one check, which the next daily check clears: a failure takes two in a row)."""
    return _check(company_source_id, lambda specs: _backfill_counts(company_source_id, specs), clock)


def _check(company_source_id: str, counts_of: Callable[[list[EntitySpec]], dict[str, int | str]],
           clock: Clock) -> list[Verdict]:
    started = clock()
    specs = checked_types(company_source_id)
    db.session.rollback()  # no transaction held open across the HTTP calls
    if not specs:
        return []
    counts = counts_of(specs)
    checked_at = clock()
    verdicts = []
    for spec in specs:
        count = counts[spec.name]
        local = sync_store.live_count(spec, company_source_id)
        if isinstance(count, int):
            verdicts.append(Verdict(spec.name, count, local))
        else:
            verdicts.append(Verdict(spec.name, None, local, count))
    _record(company_source_id, verdicts, checked_at)
    _reschedule(company_source_id, started, checked_at)
    db.session.commit()
    for verdict in verdicts:
        message = failure(_state(company_source_id, verdict.object_type))
        if message:
            log.warning("Parity failure of %s %s: %s", company_source_id, verdict.object_type, message)
    return verdicts


def _state(company_source_id: str, object_type: str) -> SyncState:
    return db.session.execute(select(SyncState).where(
        SyncState.company_source_id == company_source_id, SyncState.object_type == object_type)).scalar_one()


def _record(company_source_id: str, verdicts: list[Verdict], checked_at: datetime) -> None:
    for verdict in verdicts:
        db.session.add(ParityCheck(company_source_id=company_source_id, object_type=verdict.object_type,
                                   checked_at=checked_at, source_count=verdict.source_count,
                                   local_count=verdict.local_count, error=verdict.error))
        state = _state(company_source_id, verdict.object_type)
        state.parity_checked_at = checked_at
        state.parity_error = verdict.error
        if verdict.error is not None:
            # A check that could not count says nothing about the drift: the last counts
            # and the streak stand.
            continue
        state.parity_source_count = verdict.source_count
        state.parity_local_count = verdict.local_count
        if verdict.drifts:
            if not state.parity_drifts:
                state.parity_drift_since = checked_at
            state.parity_drifts = (state.parity_drifts or 0) + 1
        elif verdict.in_parity:
            state.parity_drifts = 0
            state.parity_drift_since = None


def _reschedule(company_source_id: str, started: datetime, checked_at: datetime) -> None:
    db.session.execute(update(Company).where(Company.source_id == company_source_id).values(
        parity_due_at=rules.next_check_at(company_source_id, checked_at)))
    # Compare-and-set: a request made while this check ran asks for a later one.
    db.session.execute(update(Company).where(Company.source_id == company_source_id,
                                             Company.parity_requested_at <= started)
                       .values(parity_requested_at=None))


# -- when ------------------------------------------------------------------------
def is_due(company_source_id: str, now: datetime) -> bool:
    """Whether the company's check is due: asked for, never made, or its daily slot has come."""
    due_at, requested_at = db.session.execute(
        select(Company.parity_due_at, Company.parity_requested_at)
        .where(Company.source_id == company_source_id)).one()
    return rules.check_due(due_at, requested_at, now)


def _never_checked(company_source_id: str) -> bool:
    due_at, requested_at = db.session.execute(
        select(Company.parity_due_at, Company.parity_requested_at)
        .where(Company.source_id == company_source_id)).one()
    return due_at is None and requested_at is None


def after_run(run: SyncRun, fence, clock: Clock = utcnow) -> list[Verdict] | None:
    """Check the company if it is due, after its run succeeded (under the run's company lock).

    The check's HTTP calls are added to the run's request count. Never raises: a check
    that fails is logged, and the run's outcome is not touched.
    """
    try:
        if not (run.kind == RunKind.FULL_RESYNC or is_due(run.company_source_id, clock())):
            db.session.rollback()
            return None
        if run.kind == RunKind.BACKFILL and _never_checked(run.company_source_id):
            return check_after_first_backfill(run.company_source_id, clock)
        client = build_client(run.company_source_id)
        try:
            return check_company(run.company_source_id, client, clock)
        finally:
            db.session.rollback()
            fence.beat(requests=client.requests_sent)
            db.session.commit()
    except RunCancelled:
        db.session.rollback()
        return None
    except Exception:
        db.session.rollback()
        log.exception("Parity check of %s after run %s failed", run.company_source_id, run.id)
        return None


def request_check(company_source_id: str, clock: Clock = utcnow) -> tuple[SyncRun, bool]:
    """Ask for a check on demand: recorded on the company, done by its next successful run.

    Queues an incremental run (trigger "parity"), or leans on the company's active run: a
    queued one checks when it ends, a running one is given a follow-up. Raises
    SyncRequestError for an unknown or disconnected company.
    """
    sync_jobs.connected_company(company_source_id)
    db.session.execute(update(Company).where(Company.source_id == company_source_id)
                       .values(parity_requested_at=clock()))
    db.session.commit()
    return sync_jobs.request_sync(company_source_id, kind=RunKind.INCREMENTAL, trigger="parity")


# -- in the foreground (the CLI) -------------------------------------------------
@dataclass(frozen=True)
class ForegroundCheck:
    company_source_id: str
    verdicts: list[Verdict]
    requests: int = 0
    busy: str | None = None   # the company's sync held the lock: not checked


def check_now(company_source_id: str, wait: float = 30.0, clock: Clock = utcnow) -> ForegroundCheck:
    """Check a company here, now, under its company lock (waiting up to ``wait`` s for a sync to end)."""
    sync_jobs.connected_company(company_source_id)
    try:
        with hold(f"sync:{company_source_id}", ttl=max(option("SYNC_LEASE_SECONDS"), 60.0), wait=wait):
            client = build_client(company_source_id)
            verdicts = check_company(company_source_id, client, clock)
            return ForegroundCheck(company_source_id, verdicts, client.requests_sent)
    except LockBusy:
        return ForegroundCheck(company_source_id, [], busy=f"a sync of {company_source_id} is running; try again")


# -- in words ----------------------------------------------------------------------
def verdict_of(state: SyncState) -> Verdict | None:
    """Return the type's last check as a verdict, None if it was never checked."""
    if state.parity_checked_at is None:
        return None
    if state.parity_error is not None:
        return Verdict(state.object_type, None, state.parity_local_count, state.parity_error)
    return Verdict(state.object_type, state.parity_source_count, state.parity_local_count)


def describe_verdict(verdict: Verdict) -> str:
    """Say one verdict of a check just made (see ``describe``)."""
    return rules.verdict_words(SPECS[verdict.object_type], verdict)


def describe(state: SyncState) -> str:
    """Say the type's last check: "in parity", "drift: QuickBooks has …", "could not check: …"."""
    verdict = verdict_of(state)
    if verdict is None or state.object_type not in SPECS:
        return "not checked yet"
    return rules.verdict_words(SPECS[state.object_type], verdict)


def failure(state: SyncState) -> str | None:
    """Return the type's parity failure in words (a drift in two checks in a row), or None."""
    if state.object_type not in SPECS:
        return None
    return rules.failure_message(SPECS[state.object_type], state.parity_source_count, state.parity_local_count,
                                 state.parity_drifts or 0, state.parity_drift_since)


def failures(company_source_id: str) -> dict[str, str]:
    """Return the company's parity failures by object type, in sync order."""
    states = {s.object_type: s for s in db.session.execute(select(SyncState).where(
        SyncState.company_source_id == company_source_id, SyncState.parity_drifts >= rules.FAILURE_STREAK))
        .scalars()}
    found = {name: failure(states[name]) for name in SPECS if name in states}
    return {name: message for name, message in found.items() if message}
