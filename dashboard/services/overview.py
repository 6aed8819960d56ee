"""Screen data for the operator dashboard: the queries that fill the view models.

Templates only render what is built here (``overview_models`` holds the dataclasses and
the rules), and every function issues a fixed number of queries whatever the number of
companies: the counts, the page of companies, then one query per kind of fact (sync
states, record counts, active runs) over that page's realms. Tokens are never selected,
so they cannot leak into a page.
"""
from __future__ import annotations

import math
from collections import defaultdict, namedtuple
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional, Sequence

from flask import current_app
from sqlalchemy import Select, and_, case, distinct, func, literal, not_, null, or_, select, union_all

from ..extensions import db
from ..models import COMPANY_NAME_ORDER, Company, ConnectionState, RunStatus, SyncRun, SyncState, SyncStatus
from ..sync import parity as parity_rules, specs
from . import type_switches
from .alerts.problems import hard_expiry_stage
from .overview_models import (
    ATTENTION_ONLY_FILTERS, FAILING, CompaniesPage, CompaniesQuery, CompanyDetail, CompanySummary, ObjectStatus,
    RunView, StateCounts, direct_dependencies, next_sync, object_status,
)

RECENT_RUNS = 20
ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)

_COMPANY_COLUMNS = (Company.source_id, Company.name, Company.connection_state, Company.connection_error,
                    Company.next_sync_at)
# What object_status reads of a sync_state (the resume cursors stay out).
_STATE_COLUMNS = (SyncState.company_source_id, SyncState.object_type, SyncState.status,
                  SyncState.is_initial_backfill_completed, SyncState.initial_attempt_time,
                  SyncState.last_attempt_time, SyncState.last_successful_sync_time, SyncState.records_synced,
                  SyncState.records_total, SyncState.error_message, SyncState.error_kind, SyncState.attempts,
                  SyncState.last_failed_at, SyncState.enabled, SyncState.parity_checked_at,
                  SyncState.parity_source_count, SyncState.parity_local_count, SyncState.parity_drifts)
# A state as a named tuple: object_status reads a dozen of its fields for each of 28 types
# per company, and a named tuple's attribute is several times quicker to read than a Row's.
_StateRow = namedtuple("_StateRow", [column.key for column in _STATE_COLUMNS])


def _list_state_columns(busy_realms: Sequence[str]) -> tuple:
    """The sync-state columns of the companies list: a time only where the list uses it.

    A page of 50 companies holds 1,400 states (28 types each), and turning timestamps
    into datetimes costs more than the query itself. The list shows every type's last
    success (the company's oldest), but the start of a backfill only for a running type,
    the last attempt only to tell what an active run has yet to do (``_still_to_do``), and
    a parity check or a failure's time not at all (only that parity failed); the others
    are read as NULL. The company page reads every column.
    """
    def only(condition, column):
        return case((condition, column), else_=None).label(column.key)

    busy = SyncState.company_source_id.in_(busy_realms) if busy_realms else literal(False)
    replaced = {
        "initial_attempt_time": only(SyncState.status == SyncStatus.IN_PROGRESS, SyncState.initial_attempt_time),
        "last_attempt_time": only(busy, SyncState.last_attempt_time),
        "last_failed_at": null().label("last_failed_at"),  # untyped: no result processing
        "parity_checked_at": only(SyncState.parity_drifts >= parity_rules.FAILURE_STREAK,
                                  SyncState.parity_checked_at),
    }
    return tuple(replaced.get(column.key, column) for column in _STATE_COLUMNS)


# A type fails by its sync failing or by drifting from QuickBooks' count in two parity
# checks in a row; either needs attention (the "failing" filter, first in the list). A
# failure of a type an operator switched off needs none: nothing syncs or checks it.
# Written as the predicate of ix_sync_state_failing (models.SYNC_STATE_FAILING), term for
# term, so PostgreSQL answers from that index alone (an index-only scan), never the table.
_FAILED = and_(SyncState.enabled, or_(SyncState.status == SyncStatus.FAILED,
                                      SyncState.parity_drifts >= parity_rules.FAILURE_STREAK))


def _failed_realms() -> Select:
    return select(SyncState.company_source_id).where(_FAILED)


def _has_failure(failed_realms=None):
    """Whether the company has a failed sync or a parity failure (``_FAILED``).

    Written as ``IN (realms with a failure)`` rather than a correlated EXISTS: PostgreSQL
    reads the failed states once into a hash instead of probing sync_state per company,
    which matters for the filter and the ordering that look at every company. A statement
    that asks more than once passes the realms as one CTE, so they are read only once.
    """
    if failed_realms is None:
        return Company.source_id.in_(_failed_realms())
    return Company.source_id.in_(select(failed_realms.c.company_source_id))


def _has_failure_probed():
    """Whether the company has a failed sync or a parity failure, looked up for this company alone.

    One index lookup per company, cheaper than reading every failed state when only a
    page's worth of companies is looked at. A scalar subquery, because PostgreSQL would
    turn an EXISTS back into the hash.
    """
    found = (select(literal(True)).where(SyncState.company_source_id == Company.source_id, _FAILED)
             .limit(1).scalar_subquery())
    return func.coalesce(found, False)


def _matches_search(search: str):
    """Match the search as plain text anywhere in the name or the realm, ignoring case.

    ``contains(autoescape=True)`` on the lowered columns rather than ``icontains``: the
    statement stays ``lower(x) LIKE`` (the plans PostgreSQL picks for it, walking the
    name-order index, are unchanged), and the text is lowered by Python, which knows every
    alphabet, where SQLite's lower() knows only ASCII.
    """
    text = search.lower()
    return or_(func.lower(Company.name).contains(text, autoescape=True),
               func.lower(Company.source_id).contains(text, autoescape=True))


def _filtered(stmt: Select, query: CompaniesQuery) -> Select:
    if query.state == FAILING:
        stmt = stmt.where(_has_failure())
    elif query.state:
        stmt = stmt.where(Company.connection_state == ConnectionState(query.state))
    if query.search:
        stmt = stmt.where(_matches_search(query.search))
    return stmt


def _counts(query: CompaniesQuery) -> tuple[StateCounts, int]:
    """Count companies per state, the failing ones, and those the query matches, in one query.

    Each count reads an index alone: the total the smallest index of company (an
    index-only scan, which PostgreSQL does not have to group), the states other than
    connected a range of ix_company_connection_state each (few rows; connected is the
    rest), the failing companies ix_sync_state_failing (a failed state always has its
    company). A search is counted apart, as its own filtered count, so PostgreSQL finds
    the matches in the name and realm trigram indexes instead of testing every company.
    """
    def count(stmt: Select):
        return stmt.correlate(None).scalar_subquery()

    others = [state for state in ConnectionState if state is not ConnectionState.CONNECTED]
    columns = [count(select(func.count()).select_from(Company)),
               count(select(func.count(distinct(SyncState.company_source_id))).where(_FAILED)),
               *(count(select(func.count()).where(Company.connection_state == state)) for state in others)]
    if query.search:
        columns.append(count(_filtered(select(func.count()).select_from(Company), query)))
    total, failing, *found = db.session.execute(select(*columns)).one()
    by_state = {str(state): n for state, n in zip(others, found)}
    by_state = {str(ConnectionState.CONNECTED): total - sum(by_state.values()), **by_state}
    if query.search:
        matching = found[-1]
    elif query.state == FAILING:
        matching = failing
    else:
        matching = by_state.get(query.state, 0) if query.state else total
    return StateCounts(by_state=by_state, failing=failing), matching


def _page_rows(query: CompaniesQuery, offset: int) -> Sequence:
    """Read one page of companies: those needing attention first, then the others, by name.

    Each group is read in the order of ix_company_name_order and only as far as the page
    reaches, so a page costs an index walk of (offset + page size) rows, not a sort of
    every company.
    """
    name_key = COMPANY_NAME_ORDER[0].label("name_key")

    def group(rank: int, condition) -> Select:
        stmt = _filtered(select(literal(rank).label("rank"), *_COMPANY_COLUMNS, name_key), query)
        if condition is not None:
            stmt = stmt.where(condition)
        return select(stmt.order_by(*COMPANY_NAME_ORDER).limit(offset + query.per_page).subquery())

    if query.state in ATTENTION_ONLY_FILTERS:
        groups = [group(0, None)]
    else:
        # The first page (the one polled while syncs run) walks about a page per group, so
        # it looks failures up per company; deeper pages read the failed realms once.
        failing = _has_failure_probed() if offset == 0 else _has_failure(_failed_realms().cte("failed_realms"))
        attention = or_(Company.connection_state == ConnectionState.RECONNECT_REQUIRED, failing)
        groups = [group(0, attention), group(1, not_(attention))]
    page = union_all(*groups).subquery()
    return db.session.execute(
        select(*(page.c[c.key] for c in _COMPANY_COLUMNS))
        .order_by(page.c.rank, page.c.name_key, page.c.source_id)
        .limit(query.per_page).offset(offset)).all()


def _sync_states(realms: Sequence[str], columns: tuple = _STATE_COLUMNS) -> dict[str, dict[str, Any]]:
    """Read the page's sync states as named tuples: building ORM objects cost more than the query."""
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    if realms:
        # Core execution: the ORM's row loading (for plain columns) cost more than the query.
        rows = db.session.connection().execute(select(*columns).where(SyncState.company_source_id.in_(realms)))
        for state in map(_StateRow._make, rows.all()):
            found[state.company_source_id][state.object_type] = state
    return found


def _active_runs(realms: Sequence[str]) -> dict[str, list[SyncRun]]:
    found: dict[str, list[SyncRun]] = defaultdict(list)
    if realms:
        stmt = (select(SyncRun).where(SyncRun.company_source_id.in_(realms),
                                      SyncRun.status.in_(ACTIVE_RUN_STATUSES))
                .order_by(SyncRun.created_at))
        for run in db.session.scalars(stmt):
            found[run.company_source_id].append(run)
    return found


@dataclass(frozen=True)
class _TypeFacts:
    """What ``_objects`` needs of one registered type, worked out once per page, not once per company."""

    spec: specs.EntitySpec
    dependencies: tuple[str, ...]         # direct_dependencies(spec)


@dataclass(frozen=True)
class _Facts:
    """What the per-page queries found about a page's companies."""

    types: tuple[_TypeFacts, ...]         # every registered type, in sync order, read once per page
    labels: dict[str, str]                # type -> display name
    default_on: frozenset[str]            # the types on for a company without a switch written down
    states: dict[str, dict[str, Any]]     # realm -> object type -> sync state row
    runs: dict[str, list[SyncRun]]        # realm -> its queued and running runs
    interval: timedelta


def _facts(realms: Sequence[str], for_list: bool = False) -> _Facts:
    """Read the sync states and active runs of these realms: two queries, whatever the number of types.

    ``for_list``: read only what the companies list shows of each state (``_list_state_columns``).
    """
    ordered = tuple(specs.ordered())
    runs = _active_runs(realms)
    columns = _list_state_columns(list(runs)) if for_list else _STATE_COLUMNS
    return _Facts(types=tuple(_TypeFacts(spec, direct_dependencies(spec)) for spec in ordered),
                  labels={spec.name: spec.label for spec in ordered},
                  default_on=frozenset(type_switches.default_types()),
                  states=_sync_states(realms, columns), runs=runs,
                  interval=timedelta(minutes=current_app.config["SETTINGS"].sync_interval_minutes))


def _still_to_do(state, runs: Sequence[SyncRun]) -> list[SyncRun]:
    """Return the active runs that have yet to sync this type (it counts as queued in them).

    A run covers the type until the type has an outcome written since the run started:
    a type done early in a long run shows that outcome, not "Queued", while the later
    types run. A type left pending (a retry to come) is still to do.
    """
    if state is None or state.status not in (SyncStatus.SUCCEEDED, SyncStatus.FAILED) \
            or state.last_attempt_time is None:
        return list(runs)
    return [r for r in runs if r.started_at is None or state.last_attempt_time < r.started_at]


def _objects(realm: str, facts: _Facts, now: datetime) -> tuple[ObjectStatus, ...]:
    """Decide every registered type's status for one company, in sync order.

    Sync order puts a type's dependencies before it, so whether they are still to do in
    a run is known when the type is reached ("Waiting for customers, items").
    """
    states, runs = facts.states.get(realm, {}), facts.runs.get(realm, ())
    result = []
    to_do: dict[str, set[int]] = {}       # type -> ids of the active runs that have yet to sync it
    for known in facts.types:
        spec = known.spec
        state = states.get(spec.name)
        enabled = state.enabled if state is not None else spec.name in facts.default_on
        pending, waiting, started = (), [], None
        if runs and enabled:  # most companies have no active run: nothing to work out for them
            covering = [r for r in runs if r.object_type in (None, spec.name)]
            pending = _still_to_do(state, covering)
            to_do[spec.name] = {r.id for r in pending}
            waiting = [facts.labels[d] for d in known.dependencies if to_do.get(d, set()) & to_do[spec.name]]
            started = next((r.started_at for r in covering if r.started_at), None)
        result.append(object_status(spec.name, spec.label, state, bool(pending), started,
                                    state.records_synced if state is not None else 0, now,
                                    enabled=enabled, group=spec.group, waiting_for=waiting))
    return tuple(result)


def _summary(row, facts: _Facts, now: datetime) -> CompanySummary:
    objects = _objects(row.source_id, facts, now)
    return CompanySummary(realm=row.source_id, name=row.name, connection_state=row.connection_state,
                          connection_error=row.connection_error,
                          next_sync=next_sync(row.connection_state, row.next_sync_at, objects, facts.interval, now),
                          objects=objects)


def companies_page(query: CompaniesQuery, now: datetime) -> CompaniesPage:
    """Build one page of the companies list in five queries, whatever its size.

    Companies that need attention (a failed sync, a parity failure, or reconnect required) come first.
    """
    counts, matching = _counts(query)
    pages = max(1, math.ceil(matching / query.per_page))
    page = min(query.page, pages)
    rows = _page_rows(query, offset=(page - 1) * query.per_page)
    facts = _facts([row.source_id for row in rows], for_list=True)
    return CompaniesPage(query=query, companies=tuple(_summary(row, facts, now) for row in rows),
                         matching=matching, page=page, pages=pages, counts=counts)


def _run_view(run: SyncRun) -> RunView:
    return RunView(id=run.id, kind=run.kind, object_type=run.object_type, status=run.status,
                   trigger=run.trigger, queued_at=run.created_at, started_at=run.started_at,
                   finished_at=run.finished_at, records_written=run.records_written, pages=run.pages,
                   requests=run.requests, error_message=run.error_message)


def company_detail(realm: str, now: datetime) -> Optional[CompanyDetail]:
    """Build the company page, or return None when no company has this realm."""
    row = db.session.execute(
        select(*_COMPANY_COLUMNS, Company.connected_at, Company.disconnected_at, Company.created_at,
               Company.access_token_expires_at, Company.refresh_token_expires_at, Company.last_webhook_at,
               Company.refresh_token_hard_expires_at, Company.last_checked_at, Company.idle_cycles)
        .where(Company.source_id == realm)).first()
    if row is None:
        return None
    facts = _facts([realm])
    recent = db.session.scalars(select(SyncRun).where(SyncRun.company_source_id == realm)
                                .order_by(SyncRun.created_at.desc(), SyncRun.id.desc())
                                .limit(RECENT_RUNS)).all()
    return CompanyDetail(
        summary=_summary(row, facts, now), connected_at=row.connected_at,
        disconnected_at=row.disconnected_at, created_at=row.created_at,
        access_token_expires_at=row.access_token_expires_at,
        refresh_token_expires_at=row.refresh_token_expires_at, last_webhook_at=row.last_webhook_at,
        runs=tuple(_run_view(r) for r in recent), active_runs=tuple(_run_view(r) for r in facts.runs.get(realm, ())),
        refresh_token_hard_expires_at=row.refresh_token_hard_expires_at,
        hard_expiry_stage=hard_expiry_stage(row.refresh_token_hard_expires_at, now),
        last_checked_at=row.last_checked_at, idle_cycles=row.idle_cycles)
