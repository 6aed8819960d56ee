"""The sync of one company: backfill, incremental (CDC or timestamps) and reconciliation.

After every completed cycle the database equals QuickBooks. Each page is upserted in
the transaction that advances its cursor, so a crash at any instant resumes from the
last committed page. Pages are fetched ahead concurrently (within the realm's limits)
and committed strictly in order; overlapping pages prove they still join up.
"""
from __future__ import annotations

import contextvars
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Protocol, Sequence

from sqlalchemy import inspect, select, update
from sqlalchemy.exc import SQLAlchemyError

from .. import logs
from ..extensions import db
from ..models import SyncState, SyncStatus, utcnow
from ..qbo.client import BATCH_MAX_ITEMS, QboClient
from ..sync import parity as parity_rules
from ..sync import policy
from ..sync.cdc import CDC_MAX_OBJECTS, EntityChanges, parse_cdc
from ..sync.cursor import ScanCursor
from ..sync.errors import BadData, DatabaseFailure, IntuitServerError, RequestRejected, SyncError, Throttled
from ..sync.pages import PagePlan
from ..sync.queries import CREATED, PAGE_SIZE, UPDATED, count_query, page_start, scan_query
from ..sync.specs import CDC, DAILY_READ, EntitySpec, Row, depends_on, ordered
from ..sync.timestamps import parse_qbo_time
from . import metrics, sync_store

log = logging.getLogger(__name__)

Progress = Callable[[str, int, "int | None"], None]

# Failures of one type's own reads (Intuit refuses the query, or sends data we cannot
# store): the same next time, and nothing to do with the other types.
TYPE_SCOPED = (RequestRejected, BadData)


@dataclass(frozen=True)
class EngineOptions:
    page_size: int = PAGE_SIZE
    concurrency: int = 4            # pages fetched ahead at once
    overlap: timedelta = policy.DEFAULT_OVERLAP
    max_restarts: int = 25          # shifted-page re-reads per scan before giving up
    cdc_cap: int = CDC_MAX_OBJECTS  # objects per CDC answer beyond which it may be cut


class Fence(Protocol):
    """The run's claim on its work: checked (and counters added) in each page's transaction."""

    def beat(self, *, pages: int = 0, records: int = 0, requests: int = 0) -> None: ...


@dataclass
class Summary:
    records: dict[str, int] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)  # types with rows marked deleted in this run

    @property
    def changed(self) -> bool:
        """Whether the run wrote or deleted anything."""
        return bool(self.deleted) or any(self.records.values())


class CompanySync:
    """Sync the object types of one company, in dependency order."""

    def __init__(self, company_source_id: str, client: QboClient, fence: Fence,
                 options: EngineOptions = EngineOptions(), progress: Progress | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.company = company_source_id
        self.client = client
        self.fence = fence
        self.options = options
        self.progress = progress
        self.clock = clock
        self.summary = Summary()
        self._cdc: dict[str, tuple[EntityChanges | None, datetime | None]] | None = None
        self._cdc_covered: list[EntitySpec] = []
        self._cdc_failed = False
        self._states: dict[str, SyncState] = {}
        self._requests_reported = 0
        # COUNT(*) answers asked ahead for types about to begin their backfill, and when.
        self._counts: dict[str, tuple[dict[str, Any], datetime]] = {}
        self._count_failure: tuple[str, SyncError] | None = None
        # First pages of small types asked ahead, by statement, and the pool fetching them.
        self._pages_ahead: dict[str, Future] = {}
        self._ahead_pool: ThreadPoolExecutor | None = None

    # -- entry ---------------------------------------------------------------------
    def run(self, object_types: Sequence[str] | None = None, *, full: bool = False,
            final_attempt: bool = True, force: bool = False, throttle_waits: bool = False) -> Summary:
        """Sync the given object types (all when None); record each one's outcome in sync_state.

        A type Intuit refuses to serve or sends bad data for fails alone: the types that do
        not depend on it go on, and the run raises that first error at its end. Any other
        failure (tokens, throttling, an outage, our database) stops the run at once.
        ``force`` reads the once-a-day types even when their day is not over.
        ``throttle_waits``: a 429 will make the run wait and start again, so it is never final.
        """
        specs = ordered(None if object_types is None else list(object_types))
        if full:
            self._reset(specs)
        self._count_backfills_ahead(specs)
        try:
            return self._run_in_order(specs, final_attempt, force, throttle_waits)
        finally:
            self._drop_pages_ahead()

    def _run_in_order(self, specs: Sequence[EntitySpec], final_attempt: bool, force: bool,
                      throttle_waits: bool) -> Summary:
        failed: dict[str, SyncError] = {}
        # Types whose CDC answer is empty: their outcome is written together (one UPDATE,
        # one commit) before the next type that has work, or at the end.
        idle: list[EntitySpec] = []
        for spec in specs:
            blocked = [name for name in depends_on(spec) if name in failed]
            if blocked:
                failed[spec.name] = failed[blocked[0]]
                self.summary.paths[spec.name] = "skipped"
                continue
            state = self._state(spec)
            if not force and self._fresh(spec, state):
                self.summary.paths[spec.name] = "fresh"
                continue
            try:
                if self._idle_cdc(spec, state, specs):
                    self.summary.paths[spec.name] = "cdc"
                    idle.append(spec)
                    continue
                self._settle_idle(idle)
                self._begin(state)
                with logs.bound(object_type=spec.name):
                    self._sync_one(spec, specs)
            except SyncError as exc:
                db.session.rollback()
                final = (final_attempt or not exc.retryable) and not (throttle_waits and isinstance(exc, Throttled))
                for failing in (self._cdc_covered if self._cdc_failed else [spec]):
                    self._fail(failing, exc, final)
                if self._cdc_failed or not isinstance(exc, TYPE_SCOPED):
                    raise
                failed[spec.name] = exc
            except SQLAlchemyError as exc:
                db.session.rollback()
                error = DatabaseFailure(f"Our database failed while saving {spec.name}s: {type(exc).__name__}: "
                                        f"{str(exc).splitlines()[0][:300]}")
                self._fail(spec, error, final_attempt)
                raise error from exc
        self._settle_idle(idle)
        if failed:
            raise next(iter(failed.values()))
        return self.summary

    def _idle_cdc(self, spec: EntitySpec, state: SyncState, specs: Sequence[EntitySpec]) -> bool:
        """Whether this type is read by CDC this cycle and its answer holds nothing for it."""
        if not (spec.refresh == CDC and state.is_initial_backfill_completed
                and policy.incremental_path(state.last_successful_sync_time, self.clock()) == policy.CDC):
            return False
        changes, _ = self._cdc_changes(spec, specs)
        return changes is not None and not changes.live and not changes.deleted

    def _settle_idle(self, idle: list[EntitySpec]) -> None:
        """Record the types CDC found unchanged as synced up to the CDC answer's time: one
        UPDATE per answer (usually one), with the run's request count, in one commit."""
        if not idle:
            return
        now = self.clock()
        by_time: dict[datetime, list[str]] = {}
        for spec in idle:
            by_time.setdefault(self._cdc[spec.entity][1] or now, []).append(spec.name)
        for cursor_time, names in by_time.items():
            db.session.execute(
                update(SyncState).where(SyncState.company_source_id == self.company,
                                        SyncState.object_type.in_(names))
                .values(status=SyncStatus.SUCCEEDED, last_attempt_time=now, last_successful_sync_time=cursor_time,
                        error_message=None, error_kind=None, attempts=0)
                .execution_options(synchronize_session=False))
        self._beat()
        db.session.commit()
        idle.clear()

    def _fresh(self, spec: EntitySpec, state: SyncState) -> bool:
        """Tell whether a type CDC does not cover was read less than a day ago (nothing to do).

        A backfill's end is not such a read: its cursor is its count's time, and its pages
        may have been read ahead of changes made while it ran, so the next cycle reads what
        changed since (once), as CDC does for the other types.
        """
        return (spec.refresh != CDC and state.is_initial_backfill_completed
                and state.status == SyncStatus.SUCCEEDED
                and state.last_successful_sync_time != state.initial_attempt_time
                and not policy.refresh_due(state.last_successful_sync_time, self.clock()))

    def _sync_one(self, spec: EntitySpec, specs: Sequence[EntitySpec]) -> None:
        state = self._state(spec)
        if not state.is_initial_backfill_completed:
            self.summary.paths[spec.name] = "backfill"
            self._backfill(spec)
            return
        if spec.refresh != CDC:
            self._refresh_daily(spec, state)
            return
        path = policy.incremental_path(state.last_successful_sync_time, self.clock())
        if path == policy.CDC:
            changes, cdc_time = self._cdc_changes(spec, specs)
            if changes is not None:
                self.summary.paths[spec.name] = "cdc"
                self._apply_cdc(spec, changes, cdc_time)
                return
            # Even alone, this type's changes overflow the 1,000-object cap: read it by
            # timestamps (and Ids for deletes) up to the time of that answer.
            path = policy.long_gap_path(spec.deletable)
            since_time = cdc_time or self.clock()
        else:
            path = policy.long_gap_path(spec.deletable)
            since_time = None
        self.summary.paths[spec.name] = path
        if path == policy.RECONCILE:
            first = self._reconcile(spec)
        else:
            since = policy.changed_since(state.last_successful_sync_time, self.options.overlap)
            first = self._scan_incremental(spec, since)
        self._succeed(spec, since_time or first or self.clock())

    def _refresh_daily(self, spec: EntitySpec, state: SyncState) -> None:
        """Read a type CDC does not cover: a small list whole, the others by timestamps.

        A deletable one is read whole every 30 days too (a delete leaves no timestamp).
        """
        now = self.clock()
        whole = spec.refresh == DAILY_READ or (spec.deletable and (
            state.backfill_started_at is None or now - state.backfill_started_at >= policy.RECONCILE_EVERY))
        if whole:
            self.summary.paths[spec.name] = policy.RECONCILE
            first = self._reconcile(spec, ahead=False)  # a daily read is small: one page, then the next if full
            state.backfill_started_at = now
        else:
            self.summary.paths[spec.name] = policy.TIMESTAMP
            first = self._scan_incremental(
                spec, policy.changed_since(state.last_successful_sync_time, self.options.overlap))
        self._succeed(spec, first or now)

    # -- sync_state bookkeeping ----------------------------------------------------
    def _state(self, spec: EntitySpec) -> SyncState:
        """The type's row, read with all of the company's rows in one SELECT whenever the one
        held is stale (a commit or rollback expired it), created when missing."""
        state = self._states.get(spec.name)
        if state is None or inspect(state).expired:
            self._states = {s.object_type: s for s in db.session.execute(
                select(SyncState).where(SyncState.company_source_id == self.company)
                .execution_options(populate_existing=True)).scalars()}
            state = self._states.get(spec.name)
        if state is None:
            state = SyncState(company_source_id=self.company, object_type=spec.name, status=SyncStatus.PENDING,
                              is_initial_backfill_completed=False, backfill_tie_offset=0, records_synced=0,
                              attempts=0)
            db.session.add(state)
            db.session.commit()
            self._states[spec.name] = state
        return state

    def _reset(self, specs: Sequence[EntitySpec]) -> None:
        for spec in specs:
            state = self._state(spec)
            state.is_initial_backfill_completed = False
            state.initial_attempt_time = None
            state.backfill_started_at = None
            state.last_sync_most_recent_source_created_at_time = None
            state.backfill_tie_offset = 0
            state.backfill_last_source_id = None
            state.records_total = None
            state.records_synced = 0
        db.session.commit()

    def _begin(self, state: SyncState) -> None:
        state.status = SyncStatus.IN_PROGRESS
        state.last_attempt_time = self.clock()
        db.session.commit()

    def _succeed(self, spec: EntitySpec, cursor_time: datetime) -> None:
        state = self._state(spec)
        if self.summary.records.get(spec.name) or spec.name in self.summary.deleted:
            # What the dashboard shows as stored; an idle cycle changed nothing and counts nothing.
            state.records_synced = sync_store.live_count(spec, self.company)
        state.last_successful_sync_time = cursor_time
        state.status = SyncStatus.SUCCEEDED
        state.error_message = None
        state.error_kind = None
        state.attempts = 0
        self._beat()
        db.session.commit()

    def _fail(self, spec: EntitySpec, error: SyncError, final: bool) -> None:
        state = self._state(spec)
        state.attempts = (state.attempts or 0) + 1
        state.error_kind = error.kind
        state.last_failed_at = self.clock()
        if final:
            state.status = SyncStatus.FAILED
            state.error_message = describe(error, state.attempts)
        else:
            state.status = SyncStatus.PENDING
            state.error_message = f"Attempt {state.attempts} failed, retrying: {error}"
        db.session.commit()

    def _beat(self, pages: int = 0, records: int = 0) -> None:
        sent = self.client.requests_sent
        self.fence.beat(pages=pages, records=records, requests=sent - self._requests_reported)
        self._requests_reported = sent

    # -- backfill ------------------------------------------------------------------
    def _count_backfills_ahead(self, specs: Sequence[EntitySpec]) -> None:
        """Ask the COUNT(*) of every type about to begin its backfill, 10 to a batch request.

        Each backfill starts from its count (progress, pages not fetched past the end, the
        first parity check); asked type by type, 28 small types spent 28 round trips with
        one request in flight. An item Intuit refuses leaves its type to ask its own; a
        batch that fails is the failure of the first type it was to count (asking again
        type by type would only double the requests spent on an outage).
        """
        starting = [spec for spec in specs if self._starts_backfill(self._state(spec))]
        db.session.rollback()  # no transaction held open across the HTTP calls
        if len(starting) < 2:
            return
        for chunk in parity_rules.chunks(starting, BATCH_MAX_ITEMS):
            started_local = self.clock()
            try:
                answers, at = self.client.batch_query_at({spec.name: count_query(spec) for spec in chunk})
            except SyncError as exc:
                self._count_failure = (chunk[0].name, exc)
                break
            for spec in chunk:
                answer = answers[spec.name]
                if not isinstance(answer, SyncError):
                    self._counts[spec.name] = ({"QueryResponse": answer, "time": at}, started_local)
        self._beat()
        db.session.commit()
        self._fetch_small_types_ahead(starting)

    def _fetch_small_types_ahead(self, starting: Sequence[EntitySpec]) -> None:
        """Ask the one page of every small type at once, to be written in its turn.

        A type its count says fits in one page is read in one request; asked in turn, the
        small types of a books' 28 cost a round trip each with one request in flight. Their
        pages are asked now, side by side (within the realm's limits), and each backfill
        takes its own when it comes (still written in dependency order). Reading before
        writing is safe: each page was asked after its type's count, whose Intuit time is
        where the next incremental sync starts, so a change made since is read then.
        """
        small = [spec for spec in starting if 0 < _count_of(self._counts.get(spec.name)) <= self.options.page_size]
        if not small:
            return
        self._ahead_pool = ThreadPoolExecutor(max_workers=self.options.concurrency,
                                              thread_name_prefix=f"qbo-ahead-{self.company}")
        render = sync_store.uses_copy()
        for spec in small:
            statement = scan_query(spec, CREATED, None, page_start(0, False, 0, self.options.page_size),
                                   self.options.page_size)
            with logs.bound(object_type=spec.name):  # the client's lines say which type, as in its turn
                context = contextvars.copy_context()
            self._pages_ahead[statement] = self._ahead_pool.submit(
                context.run, _PageFetcher(self.client, spec, render), statement)

    def _drop_pages_ahead(self) -> None:
        """Cancel the pages asked ahead that no backfill took (the run ended early)."""
        _cancel(self._pages_ahead)
        if self._ahead_pool is not None:
            self._ahead_pool.shutdown(wait=True, cancel_futures=True)
            self._ahead_pool = None

    @staticmethod
    def _starts_backfill(state: SyncState) -> bool:
        return not state.is_initial_backfill_completed and (
            state.initial_attempt_time is None or state.backfill_started_at is None)

    def _backfill(self, spec: EntitySpec) -> None:
        state = self._state(spec)
        if self._starts_backfill(state):
            body, started_local = self._counts.pop(spec.name, None) or (None, self.clock())
            if self._count_failure and self._count_failure[0] == spec.name:
                raise self._count_failure[1]
            if body is None:
                body = self.client.query(count_query(spec))
            total = (body.get("QueryResponse") or {}).get("totalCount")
            state.initial_attempt_time = response_time(body) or started_local
            state.backfill_started_at = started_local
            state.records_total = int(total) if isinstance(total, int) else None
            state.records_synced = 0
            state.last_sync_most_recent_source_created_at_time = None
            state.backfill_tie_offset = 0
            state.backfill_last_source_id = None
            self._beat()
            db.session.commit()
        cursor = ScanCursor(state.last_sync_most_recent_source_created_at_time, state.backfill_tie_offset,
                            state.backfill_last_source_id)

        def commit(rows: list[Row], new_cursor: ScanCursor, lines: list[str] | None = None) -> None:
            self._write_page(spec, rows, lines, revive=True)
            state.last_sync_most_recent_source_created_at_time = new_cursor.time
            state.backfill_tie_offset = new_cursor.tie
            state.backfill_last_source_id = new_cursor.anchor
            state.records_synced = (state.records_synced or 0) + len(rows)
            self._beat(pages=1, records=len(rows))
            db.session.commit()
            self._report(spec, state.records_synced, state.records_total)

        # The count says where the end is: no page is fetched ahead past it (each costs a
        # metered request and a slot in the realm's limits). Records created since the
        # count are still read: past the expected end a page is fetched once the one
        # before it came back full.
        remaining = None
        if state.records_total is not None:
            remaining = max(0, state.records_total - (state.records_synced or 0))
        self._scan(spec, CREATED, cursor, commit, remaining)
        if spec.deletable:
            # Rows this backfill did not write no longer exist in QuickBooks (full resync).
            if self._count_deleted(spec, sync_store.mark_untouched_deleted(
                    spec, self.company, state.backfill_started_at, self.clock())):
                self.summary.deleted.add(spec.name)
        state.is_initial_backfill_completed = True
        # Changes made while the backfill ran are newer than this: the next cycle gets them.
        self._succeed(spec, state.initial_attempt_time)

    # -- incremental -----------------------------------------------------------------
    def _cdc_changes(self, spec: EntitySpec, specs: Sequence[EntitySpec]
                     ) -> tuple[EntityChanges | None, datetime | None]:
        """Return this type's changes from the cycle's CDC reads (None: too many for CDC), and their time."""
        if self._cdc is None:
            self._cdc = self._read_cdc(specs)
        return self._cdc[spec.entity]

    def _read_cdc(self, specs: Sequence[EntitySpec]) -> dict[str, tuple[EntityChanges | None, datetime | None]]:
        """Call CDC for every type on the CDC path: one request when idle.

        An answer cut by the 1,000-object cap is complete for the entities before the cut;
        the rest are asked again on their own. An entity cut while first in line would be
        cut again: it is left to the timestamp path.
        """
        now = self.clock()
        covered, oldest = [], None
        for spec in specs:
            state = self._state(spec)
            if spec.refresh == CDC and state.is_initial_backfill_completed and policy.incremental_path(
                    state.last_successful_sync_time, now) == policy.CDC:
                covered.append(spec)
                if oldest is None or state.last_successful_sync_time < oldest:
                    oldest = state.last_successful_sync_time
        self._cdc_covered = covered
        since = policy.changed_since(oldest, self.options.overlap)
        found: dict[str, tuple[EntityChanges | None, datetime | None]] = {}
        entities = [s.entity for s in covered]
        try:
            while entities:
                result = parse_cdc(self.client.cdc(entities, since), entities, self.options.cdc_cap)
                found.update((e, (result.changes[e], result.time)) for e in result.complete)
                cut = [e for e in entities if e not in result.complete]
                if cut and cut[0] == entities[0]:
                    found[cut.pop(0)] = (None, result.time)
                entities = cut
        except SyncError:
            self._cdc_failed = True
            raise
        return found

    def _apply_cdc(self, spec: EntitySpec, changes: EntityChanges, cdc_time: datetime | None) -> None:
        rows = self._unseen(spec, [spec.to_row(obj) for obj in changes.live])
        written = sync_store.write_rows(spec, self.company, rows) if rows else 0
        metrics.records_synced(self.company, spec.name, written)
        if changes.deleted and self._count_deleted(spec, sync_store.mark_deleted(spec, self.company,
                                                                                 changes.deleted)):
            self.summary.deleted.add(spec.name)
        self.summary.records[spec.name] = self.summary.records.get(spec.name, 0) + written
        self._beat(pages=1 if rows or changes.deleted else 0, records=written)
        db.session.commit()
        self._succeed(spec, cdc_time or self.clock())

    def _unseen(self, spec: EntitySpec, rows: list[Row]) -> list[Row]:
        """Drop the records whose version (SyncToken) we hold already. CDC windows overlap
        (clock skew), so one cycle's last changes come again in the next: written again,
        they would make that cycle look like one that changed data."""
        if not rows:
            return rows
        table = sync_store.table_for(spec)
        held = dict(db.session.execute(select(table.c.source_id, table.c.sync_token).where(
            table.c.company_source_id == self.company, table.c.is_deleted.is_(False),
            table.c.source_id.in_([row["source_id"] for row in rows]))).all())
        return [row for row in rows if held.get(row["source_id"]) != row["sync_token"]]

    def _scan_incremental(self, spec: EntitySpec, since: datetime | None, field_name: str = UPDATED,
                          ahead: bool = False) -> datetime | None:
        """Read and upsert every record with ``field_name >= since`` (all of them when None).

        A window of changes, or a small list, usually fits in a page: one page is asked for,
        the next only once it came back full (an idle read costs one call). ``ahead`` asks
        for pages ahead, for a read known to be large.
        """
        def commit(rows: list[Row], _cursor: ScanCursor, lines: list[str] | None = None) -> None:
            self._write_page(spec, rows, lines)
            self._beat(pages=1, records=len(rows))
            db.session.commit()

        return self._scan(spec, field_name, ScanCursor(since), commit, None if ahead else 0)

    def _reconcile(self, spec: EntitySpec, ahead: bool = True) -> datetime | None:
        """Read every record (upserting it) and mark the rows not read as deleted."""
        started_local = self.clock()
        first = self._scan_incremental(spec, None, CREATED, ahead)
        if self._count_deleted(spec, sync_store.mark_untouched_deleted(spec, self.company, started_local,
                                                                       self.clock())):
            self.summary.deleted.add(spec.name)
        db.session.commit()
        return first

    def _count_deleted(self, spec: EntitySpec, count: int) -> int:
        metrics.records_deleted(self.company, spec.name, count)
        return count

    # -- pages -----------------------------------------------------------------------
    def _write_page(self, spec: EntitySpec, rows: list[Row], lines: list[str] | None = None,
                    revive: bool = False) -> None:
        sync_store.write_rows(spec, self.company, rows, lines, revive)
        self.summary.records[spec.name] = self.summary.records.get(spec.name, 0) + len(rows)
        metrics.records_synced(self.company, spec.name, len(rows))

    def _report(self, spec: EntitySpec, done: int, total: int | None) -> None:
        if self.progress:
            self.progress(spec.name, done, total)

    def _scan(self, spec: EntitySpec, field_name: str, cursor: ScanCursor,
              commit: Callable[..., None], remaining: int | None = None) -> datetime | None:
        """Read every record with ``field >= cursor`` in order, committing page by page.

        The page plan (``sync.pages``) decides which pages to ask for and what each answer
        means; this runs it: the fetches on a thread pool, the commits here, in order.
        ``remaining`` is what a backfill's count says is left. Return Intuit's time of the
        first answer (the start of this read).
        """
        plan = PagePlan(cursor, self.options.page_size, width=self.options.concurrency,
                        remaining=remaining, max_restarts=self.options.max_restarts)
        key_of = "source_created_at" if field_name == CREATED else "source_updated_at"
        fetch = _PageFetcher(self.client, spec, sync_store.uses_copy())
        first_time: datetime | None = None
        pending: dict[int, Future] = {}
        pool = ThreadPoolExecutor(max_workers=plan.width, thread_name_prefix=f"qbo-{self.company}")
        try:
            while True:
                for ask in plan.asks():
                    statement = scan_query(spec, field_name, plan.since, ask.start, plan.page_size)
                    # A page asked ahead at the run's start, or asked now with the run's log
                    # context (the client's lines say which realm, run and type).
                    pending[ask.index] = self._pages_ahead.pop(statement, None) or pool.submit(
                        contextvars.copy_context().run, fetch, statement)
                page = pending.pop(plan.awaited).result()
                if first_time is None:
                    first_time = response_time(page.body)
                check = plan.receive(page.record_ids(spec))
                if not check.joined:
                    _cancel(pending)
                    self._restart(plan, spec)
                    continue
                rows, lines = page.fresh(spec, check.fresh)
                commit(rows, plan.advance([(row[key_of], row["source_id"]) for row in rows]), lines)
                if check.last:
                    _cancel(pending)
                    return first_time
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _restart(self, plan: PagePlan, spec: EntitySpec) -> None:
        """Start the plan's read again after a page that did not join; give up past the limit."""
        shifted = plan.awaited
        if not plan.restart():
            raise IntuitServerError(f"{spec.entity} records kept shifting while being read "
                                    f"({plan.restarts} re-reads); will try again later")
        log.info("Realm %s: %s page %d did not join the previous one; re-reading from the cursor",
                 self.company, spec.entity, shifted)


def _cancel(pending: dict[int, Future]) -> None:
    """Drop the pages asked for ahead (those already running finish unread)."""
    for future in pending.values():
        future.cancel()
    pending.clear()


class _PageFetcher:
    """Fetch one page on a pool thread, parsed, mapped and rendered for COPY there.

    The work happens while the committing thread waits on the database; once a page is
    rendered into COPY lines its parsed records are let go (memory).
    """

    def __init__(self, client: QboClient, spec: EntitySpec, render: bool) -> None:
        self.client = client
        self.spec = spec
        self.render = render

    def __call__(self, statement: str) -> "_Fetched":
        body = self.client.query(statement)
        try:
            records = page_records(body, self.spec)
            rows = [self.spec.to_row(r) for r in records]
            ids = [str(r.get("Id")) for r in records]
        except SyncError:
            return _Fetched(body)  # the committing thread maps it again and raises where it always did
        if not self.render:
            return _Fetched(body, ids, rows)
        lines = sync_store.copy_lines(rows)
        for row in rows:
            row["raw_data"] = None  # rendered into ``lines``
        return _Fetched({"time": body.get("time")}, ids, rows, lines)


@dataclass
class _Fetched:
    """A fetched page, parsed, mapped and rendered for COPY by its fetch thread (None: not done)."""

    body: dict[str, Any]                # only ``time`` once rendered for COPY
    ids: list[str] | None = None
    rows: list[Row] | None = None       # raw_data dropped when ``lines`` holds it
    lines: list[str] | None = None

    def record_ids(self, spec: EntitySpec) -> list[str]:
        """Return the page's record ids in order (parsing here what the fetch thread could not)."""
        if self.ids is None:
            self.ids = [str(r.get("Id")) for r in page_records(self.body, spec)]
        return self.ids

    def fresh(self, spec: EntitySpec, start: int) -> tuple[list[Row], list[str] | None]:
        """Return the rows from ``start`` on, with their COPY lines when rendered."""
        if self.rows is None:
            # Only the fresh records are mapped: a bad overlap record was stored already.
            return [spec.to_row(r) for r in page_records(self.body, spec)[start:]], None
        return self.rows[start:], self.lines[start:] if self.lines is not None else None


def _count_of(counted: tuple[Mapping[str, Any], datetime] | None) -> int:
    """The totalCount of a COUNT(*) answer asked ahead (0 when none or unreadable)."""
    total = (counted[0].get("QueryResponse") or {}).get("totalCount") if counted else None
    return total if isinstance(total, int) else 0


def response_time(body: Mapping[str, Any]) -> datetime | None:
    """Return Intuit's clock from an answer's ``time`` field (None when absent)."""
    raw = body.get("time")
    if raw in (None, ""):
        return None
    return parse_qbo_time(raw, "response time")


def page_records(body: Mapping[str, Any], spec: EntitySpec) -> list[dict[str, Any]]:
    response = body.get("QueryResponse")
    if not isinstance(response, Mapping):
        raise BadData(f"Intuit sent a {spec.entity} query answer without QueryResponse")
    records = response.get(spec.entity) or []
    if not isinstance(records, list):
        raise BadData(f"Intuit sent {spec.entity} records that are not a list")
    return records


ADVICE = {
    "reconnect_required": "Reconnect the company from the dashboard; syncing resumes after that.",
    "throttled": "Intuit kept throttling; the next cycle (or Retry) continues where this stopped.",
    "intuit_server": "Intuit kept failing; the next cycle (or Retry) continues where this stopped.",
    "token_unavailable": "No access token could be obtained; the next cycle (or Retry) tries again.",
    "bad_data": "Intuit sent a record we cannot store; earlier pages are kept. Report this record.",
    "request_rejected": "Intuit rejected our query; this needs a fix in the service.",
    "database": "Our database failed; check its health. The next cycle resumes from the last page.",
}


def describe(error: SyncError, attempts: int) -> str:
    """Return a message a person can act on: what failed, after how many attempts, what to do."""
    advice = ADVICE.get(error.kind, "The next cycle (or Retry) tries again.")
    return f"{error} — failed after {attempts} attempt{'s' if attempts != 1 else ''}. {advice}"
