"""What the operator dashboard shows, as plain values: view models and the rules that fill them.

No database here: ``services/overview.py`` reads the rows and hands them to these rules, and
tests drive the rules with plain values. Object types come from the entity specs, read at
call time, so a spec registered after import is listed like the others.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timedelta
from typing import Optional, Sequence

from ..models import ConnectionState, RunKind, RunStatus, SyncStatus
from ..sync import objects as object_catalogue, parity as sync_parity, specs
from . import type_switches

PER_PAGE = 50
# The "failing" filter is not a connection state but what an operator looks for first.
FAILING = "failing"
STATE_FILTERS: tuple[str, ...] = tuple(s.value for s in ConnectionState) + (FAILING,)
# Filters that only match companies needing attention: their page is simply by name.
ATTENTION_ONLY_FILTERS = (FAILING, ConnectionState.RECONNECT_REQUIRED.value)


class OverviewError(ValueError):
    """A filter or page number the dashboard cannot show; the message says why."""


# --- object types ----------------------------------------------------------------------------

def object_types() -> tuple[tuple[str, str], ...]:
    """Return (object type, display name) for every object type new connections sync, in sync order."""
    return tuple((spec.name, spec.label) for spec in specs.ordered(type_switches.default_types()))


def all_object_types() -> tuple[tuple[str, str], ...]:
    """Return (object type, display name) for every registered object type, in sync order."""
    return tuple((spec.name, spec.label) for spec in specs.ordered())


def group_heading(group: str) -> str:
    """Return the heading of a group of object types ("Sales"); "Other types" for an undeclared group."""
    return object_catalogue.GROUPS.get(group, "Other types")


def group_order(group: str) -> int:
    """Return where a group comes on the page: the declared groups in their order, then the rest."""
    keys = list(object_catalogue.GROUPS)
    return keys.index(group) if group in keys else len(keys)


def direct_dependencies(spec: specs.EntitySpec) -> tuple[str, ...]:
    """Return the types ``spec`` syncs after (those it links to and those its lines name), in sync order."""
    wanted = {target for _, _, target in spec.links if target != spec.name} | set(spec.after)
    return tuple(name for name in specs.SPECS if name in wanted)


def object_type_label(object_type: str) -> str:
    """Return the display name of an object type; its own name once no spec declares it."""
    spec = specs.SPECS.get(object_type)
    return spec.label if spec else object_type


def object_types_in_words() -> str:
    """Return the object types new connections sync in a sentence: "customers and invoices"."""
    return in_words([label for _name, label in object_types()])


def waiting_text(labels: Sequence[str]) -> str:
    """Return "Waiting for customers, items": the types a queued one waits for, lower case."""
    return "Waiting for " + ", ".join(label.lower() for label in labels)


def in_words(labels: list[str], most: int = 4) -> str:
    """Return labels as a sentence, the first few then a count past ``most``: "a, b, c and 25 other types"."""
    names = [label.lower() for label in labels]
    if len(names) > most:
        names = [*names[:most - 1], f"{len(names) - most + 1} other object types"]
    return " and ".join(filter(None, (", ".join(names[:-1]), names[-1] if names else "")))


# --- view models -------------------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    """How far a running backfill has come."""

    synced: int
    total: Optional[int]
    percent: Optional[int]
    time_left: Optional[timedelta]


# A parity check that found a drift this many times in a row is a failure, not a blip
# (records changed between QuickBooks' count and ours).
PARITY_FAILURE_DRIFTS = sync_parity.FAILURE_STREAK


@dataclass(frozen=True)
class Parity:
    """The last parity check of one object type: QuickBooks' count against our live rows."""

    checked_at: Optional[datetime] = None
    source_count: Optional[int] = None
    local_count: Optional[int] = None
    drifts: int = 0

    @property
    def state(self) -> str:
        """One of: unchecked, in_parity, drift (found once), failed (found in consecutive checks)."""
        if self.checked_at is None or self.source_count is None or self.local_count is None:
            return "unchecked"
        if self.source_count == self.local_count:
            return "in_parity"
        return "failed" if self.drifts >= PARITY_FAILURE_DRIFTS else "drift"

    @property
    def failed(self) -> bool:
        return self.state == "failed"


NO_PARITY = Parity()

# The states an object type can be shown in, in the order a summary counts them, and
# their words in a count ("3 synced").
STATE_COUNT_WORDS = {"failed": "failed", "running": "running", "queued": "queued", "synced": "synced",
                     "pending": "not synced yet", "off": "off"}


@dataclass(frozen=True)
class ObjectStatus:
    """The sync of one object type of one company, as the operator sees it."""

    object_type: str
    label: str
    # One of: running, waiting (queued behind a type it depends on), queued, failed,
    # synced, pending (never synced yet), off (switched off by an operator).
    state: str
    state_label: str
    sync_status: Optional[SyncStatus]
    backfill_done: bool
    progress: Optional[Progress]
    last_attempt_at: Optional[datetime]
    last_success_at: Optional[datetime]
    error_message: Optional[str]
    error_kind: Optional[str]
    attempts: int
    last_failed_at: Optional[datetime]
    record_count: int
    enabled: bool = True
    group: str = "other"
    waiting_for: tuple[str, ...] = ()      # display names of the types it waits for
    parity: Parity = NO_PARITY

    @property
    def busy(self) -> bool:
        return self.state in ("running", "queued", "waiting")

    @property
    def count_state(self) -> str:
        """The state a summary counts it under (waiting is a kind of queued)."""
        return "queued" if self.state == "waiting" else self.state

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    @property
    def can_retry(self) -> bool:
        return self.sync_status is SyncStatus.FAILED and self.enabled and not self.busy


@dataclass(frozen=True)
class NextSync:
    """What an operator can expect of a connected company's next scheduled sync."""

    # One of: at (expected at ``at``), due (the next scheduler tick takes it),
    # after_backfill (incremental syncs start once the initial backfill is done).
    kind: str
    at: Optional[datetime] = None


@dataclass(frozen=True)
class CompanySummary:
    """One row of the companies page.

    What it works out of its 28 types is kept once asked (``cached_property``: the list
    asks for the failed ones, for instance, several times per row).
    """

    realm: str
    name: Optional[str]
    connection_state: ConnectionState
    connection_error: Optional[str]
    # None while the company is not connected: nothing is scheduled for it.
    next_sync: Optional[NextSync]
    objects: tuple[ObjectStatus, ...]

    @property
    def display_name(self) -> str:
        return self.name or f"Company {self.realm}"

    @cached_property
    def busy(self) -> bool:
        return any(o.busy for o in self.objects)

    @cached_property
    def failing(self) -> bool:
        return any(o.failed for o in self.objects)

    @cached_property
    def needs_attention(self) -> bool:
        """A failed sync, a parity failure or a lost connection: what the list puts first."""
        return self.failing or bool(self.parity_failures) \
            or self.connection_state is ConnectionState.RECONNECT_REQUIRED

    @cached_property
    def enabled_objects(self) -> tuple[ObjectStatus, ...]:
        return tuple(o for o in self.objects if o.enabled)

    @property
    def last_success_at(self) -> Optional[datetime]:
        """Return when every synced object type last succeeded (the oldest of them), if all have."""
        times = [o.last_success_at for o in self.enabled_objects]
        return min(times) if times and all(times) else None

    @property
    def record_count(self) -> int:
        """Records stored of every type, switched off ones included (their rows are kept)."""
        return sum(o.record_count for o in self.objects)

    @cached_property
    def failed_objects(self) -> tuple[ObjectStatus, ...]:
        return tuple(o for o in self.objects if o.failed)

    @cached_property
    def running_objects(self) -> tuple[ObjectStatus, ...]:
        return tuple(o for o in self.objects if o.state == "running")

    @cached_property
    def parity_failures(self) -> tuple[ObjectStatus, ...]:
        return tuple(o for o in self.objects if o.enabled and o.parity.failed)

    @cached_property
    def state_counts(self) -> tuple[tuple[str, int], ...]:
        """Return (state, how many types are in it) for the states that occur, in STATE_COUNT_WORDS order."""
        counts = dict.fromkeys(STATE_COUNT_WORDS, 0)
        for o in self.objects:
            counts[o.count_state] += 1
        return tuple((state, n) for state, n in counts.items() if n)

    @property
    def groups(self) -> tuple["ObjectGroup", ...]:
        """Return the object types by group, the declared groups first; sync order inside each."""
        by_group: dict[str, list[ObjectStatus]] = {}
        for o in self.objects:
            by_group.setdefault(o.group, []).append(o)
        return tuple(ObjectGroup(key=key, heading=group_heading(key), objects=tuple(found))
                     for key, found in sorted(by_group.items(), key=lambda item: group_order(item[0])))


@dataclass(frozen=True)
class ObjectGroup:
    """The object types of one group ("Sales"), as the company page lists them."""

    key: str
    heading: str
    objects: tuple[ObjectStatus, ...]


@dataclass(frozen=True)
class StateCounts:
    """How many companies are in each connection state, and how many are failing."""

    by_state: dict[str, int]
    failing: int

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    def get(self, key: str) -> int:
        return self.failing if key == FAILING else self.by_state.get(key, 0)


@dataclass(frozen=True)
class CompaniesQuery:
    """What the operator asked the companies page for."""

    state: Optional[str] = None
    search: str = ""
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def from_args(cls, args, per_page: int = PER_PAGE) -> "CompaniesQuery":
        """Parse the page's query string; raise OverviewError on a value it cannot use."""
        state = (args.get("state") or "").strip() or None
        if state is not None and state not in STATE_FILTERS:
            raise OverviewError(f"Unknown state filter {state!r}: use one of {', '.join(STATE_FILTERS)}.")
        search = (args.get("q") or "").strip()
        if len(search) > 200:
            raise OverviewError("The search text is too long (200 characters at most).")
        raw_page = (args.get("page") or "1").strip()
        if not raw_page.isdigit() or int(raw_page) < 1:
            raise OverviewError(f"Page must be a whole number from 1 up, not {raw_page!r}.")
        return cls(state=state, search=search, page=int(raw_page), per_page=per_page)

    def args(self, **changes) -> dict[str, str]:
        """Return the query-string arguments for this query with some changed (for links)."""
        values = {"state": self.state, "q": self.search, "page": self.page, **changes}
        return {k: str(v) for k, v in values.items() if v not in (None, "") and not (k == "page" and v == 1)}


@dataclass(frozen=True)
class CompaniesPage:
    query: CompaniesQuery
    companies: tuple[CompanySummary, ...]
    matching: int
    page: int
    pages: int
    counts: StateCounts

    @property
    def busy(self) -> bool:
        return any(c.busy for c in self.companies)

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.query.per_page + 1 if self.companies else 0

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.companies) - 1 if self.companies else 0


@dataclass(frozen=True)
class RunView:
    """One row of a company's sync history."""

    id: int
    kind: RunKind
    object_type: Optional[str]
    status: RunStatus
    trigger: Optional[str]
    queued_at: datetime
    started_at: Optional[datetime]
    finished_at: Optional[datetime]
    records_written: int
    pages: int
    requests: int
    error_message: Optional[str]

    @property
    def object_label(self) -> Optional[str]:
        """Return the display name of the one object type this run covered (None: all of them)."""
        return object_type_label(self.object_type) if self.object_type else None

    @property
    def duration(self) -> Optional[timedelta]:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


@dataclass(frozen=True)
class CompanyDetail:
    """Everything the company page shows (never the tokens)."""

    summary: CompanySummary
    connected_at: Optional[datetime]
    disconnected_at: Optional[datetime]
    created_at: datetime
    access_token_expires_at: Optional[datetime]
    refresh_token_expires_at: Optional[datetime]
    last_webhook_at: Optional[datetime]
    runs: tuple[RunView, ...]
    active_runs: tuple[RunView, ...] = field(default=())
    # Intuit's 5-year cap on the grant, and how near it is ("30 days", "7 days", "expired", None).
    refresh_token_hard_expires_at: Optional[datetime] = None
    hard_expiry_stage: Optional[str] = None
    # The last successful sync of any kind; scheduled cycles that changed nothing are only counted.
    last_checked_at: Optional[datetime] = None
    idle_cycles: int = 0

    @property
    def realm(self) -> str:
        return self.summary.realm

    @property
    def busy(self) -> bool:
        return self.summary.busy or bool(self.active_runs)


# --- pure rules ------------------------------------------------------------------------------

def estimate_time_left(synced: int, total: Optional[int], started_at: Optional[datetime],
                       now: datetime) -> Optional[timedelta]:
    """Estimate the time left at the average rate since ``started_at``; None when unknown."""
    if not total or started_at is None or synced <= 0 or synced >= total:
        return None
    elapsed = (now - started_at).total_seconds()
    if elapsed <= 0:
        return None
    rate = synced / elapsed
    return timedelta(seconds=math.ceil((total - synced) / rate))


def backfill_progress(synced: int, total: Optional[int], started_at: Optional[datetime],
                      now: datetime) -> Progress:
    """Return the progress of a backfill; ``total`` may be unknown (not counted yet)."""
    percent = None
    if total:
        percent = min(100, int(synced * 100 / total))
    elif total == 0:
        percent = 100
    return Progress(synced=synced, total=total, percent=percent,
                    time_left=estimate_time_left(synced, total, started_at, now))


def next_sync(connection_state: ConnectionState, scheduled_at: Optional[datetime],
              objects: Sequence[ObjectStatus], interval: timedelta, now: datetime) -> Optional[NextSync]:
    """Say when the next scheduled sync of a company is to be expected.

    The scheduler's slot once it has given the company one; before its first tick, the
    oldest last success plus the interval. A slot in the past is due at the next tick.
    """
    if connection_state is not ConnectionState.CONNECTED:
        return None
    objects = [o for o in objects if o.enabled]
    if not objects or not all(o.backfill_done for o in objects):
        return NextSync("after_backfill")
    last_success = min((o.last_success_at for o in objects if o.last_success_at), default=None)
    expected = scheduled_at or (last_success + interval if last_success else None)
    if expected is None or expected <= now:
        return NextSync("due")
    return NextSync("at", expected)


def object_status(object_type: str, label: str, state, queued: bool,
                  run_started_at: Optional[datetime], record_count: int, now: datetime, *,
                  enabled: bool = True, group: str = "other", waiting_for: Sequence[str] = ()) -> ObjectStatus:
    """Decide what an operator sees for one object type.

    ``state`` is its sync_state (a row of the columns ``overview`` reads, or a SyncState),
    None before the first sync. A type switched off is Off whatever else is true (no run
    syncs it). A sync that is running wins over a queued run (it is the queued run,
    started), which wins over the last outcome, so a pressed Retry shows at once as
    "Queued"; a queued type whose dependencies go first in the same run is "Waiting for"
    them (``waiting_for``: their display names).
    """
    status = state.status if state else None
    waiting_for = tuple(waiting_for)
    if not enabled:
        shown, text = "off", "Off"
    elif status is SyncStatus.IN_PROGRESS:
        shown, text = "running", "Running"
    elif queued and waiting_for:
        shown, text = "waiting", waiting_text(waiting_for)
    elif queued:
        shown, text = "queued", "Queued"
    elif status is SyncStatus.FAILED:
        shown, text = "failed", "Failed"
    elif status is SyncStatus.SUCCEEDED:
        shown, text = "synced", "Synced"
    else:
        shown, text = "pending", "Not synced yet"
    progress = None
    if state is not None and shown == "running" and not state.is_initial_backfill_completed:
        progress = backfill_progress(state.records_synced, state.records_total,
                                     state.initial_attempt_time or run_started_at, now)
    return _object_status_of(
        object_type=object_type, label=label, state=shown, state_label=text, sync_status=status,
        backfill_done=bool(state and state.is_initial_backfill_completed), progress=progress,
        last_attempt_at=state.last_attempt_time if state else None,
        last_success_at=state.last_successful_sync_time if state else None,
        error_message=state.error_message if state and status is SyncStatus.FAILED else None,
        error_kind=state.error_kind if state and status is SyncStatus.FAILED else None,
        attempts=state.attempts if state else 0,
        last_failed_at=state.last_failed_at if state else None,
        record_count=record_count, enabled=enabled, group=group,
        waiting_for=waiting_for if shown == "waiting" else (), parity=parity_of(state))


def _object_status_of(**values) -> ObjectStatus:
    """Build an ObjectStatus from every one of its fields, without the frozen dataclass's __init__.

    That __init__ sets each of the 18 fields through ``object.__setattr__``; a companies page
    builds 1,400 of them (50 companies, 28 types), where it cost more than the rest of the
    rules. The instance is the same and stays frozen (assignment still raises).
    """
    status = object.__new__(ObjectStatus)
    status.__dict__.update(values)
    return status


def parity_of(state) -> Parity:
    """Return the last parity check recorded on a sync_state row (NO_PARITY without one)."""
    if state is None or getattr(state, "parity_checked_at", None) is None:
        return NO_PARITY
    return Parity(checked_at=state.parity_checked_at, source_count=state.parity_source_count,
                  local_count=state.parity_local_count, drifts=state.parity_drifts or 0)
