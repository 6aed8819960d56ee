"""Database models (SQLAlchemy 2 typed style).

Table and column names follow the seed's ER diagram in snake_case; the interface
contract in ARCHITECTURE.md relies on them, so add columns freely but rename none.
Timestamps are aware UTC everywhere (see ``types.UTCDateTime``).
"""
from __future__ import annotations

import enum
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Optional

from flask_login import UserMixin
from sqlalchemy import (
    BigInteger, Boolean, Column, Date, Enum, ForeignKey, Index, Integer, MetaData, Numeric, String, Table, Text,
    UniqueConstraint, func, text, true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .sync import specs
from .types import JSONType, UTCDateTime

# BIGINT identity on PostgreSQL; SQLite only auto-increments an INTEGER primary key.
PrimaryKey = BigInteger().with_variant(Integer(), "sqlite")

# Deterministic constraint names so migrations are identical on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StrEnum(str, enum.Enum):
    def __str__(self) -> str:  # render as the bare value in templates and logs
        return self.value


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    RECONNECT_REQUIRED = "reconnect_required"
    DISCONNECTED = "disconnected"


class SyncStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunKind(StrEnum):
    BACKFILL = "backfill"
    INCREMENTAL = "incremental"
    FULL_RESYNC = "full_resync"


def _enum(cls: type[enum.Enum], length: int = 32):
    """A portable string column for an enum (no native PG ENUM: adding a value stays a
    one-line change, not an ALTER TYPE migration)."""
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e],
                validate_strings=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow,
                                                 nullable=False)


class Operator(UserMixin, TimestampMixin, Base):
    """A person allowed into the dashboard."""

    __tablename__ = "operator"

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    last_sign_in_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<Operator {self.username!r}>"


class SignInThrottle(Base):
    """Failed sign-ins per account and per address, shared by every web process."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "user:<name>" / "addr:<ip>"
    failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    locked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())


class Company(TimestampMixin, Base):
    """A connected QuickBooks Online company (Intuit's realm)."""

    __tablename__ = "company"

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    source_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)  # realmId
    integration: Mapped[str] = mapped_column(String(32), default="qbo", nullable=False)
    name: Mapped[Optional[str]] = mapped_column(String(255))
    # Indexed for the dashboard's counts per state (an index-only scan, already grouped).
    connection_state: Mapped[ConnectionState] = mapped_column(
        _enum(ConnectionState), default=ConnectionState.CONNECTED, nullable=False, index=True)
    connection_error: Mapped[Optional[str]] = mapped_column(Text)
    connected_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    disconnected_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # Tokens are Fernet ciphertexts bound to source_id (see the token vault); never plain text.
    access_token: Mapped[Optional[str]] = mapped_column(Text)
    access_token_expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    refresh_token: Mapped[Optional[str]] = mapped_column(Text)
    refresh_token_expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # Intuit's 5-year cap on the grant (x_refresh_token_hard_expires_in); None when not told.
    refresh_token_hard_expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # Bumped on every token write: a fence against a late write from a paused refresher.
    token_version: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_webhook_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # When the scheduler should next queue an incremental cycle for this company.
    next_sync_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), index=True)
    # Parity checks: when the next daily one is due (the company's slot of the day), and
    # when an operator asked for one that no check has answered yet (durable: a run
    # already queued honours it).
    parity_due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    parity_requested_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # A scheduled cycle that changed nothing keeps no sync_run row (the table would grow
    # with time, not with work): it is counted here, with when the company was last checked.
    last_checked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    idle_cycles: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)

    sync_states: Mapped[list["SyncState"]] = relationship(
        back_populates="company", order_by="SyncState.object_type", lazy="selectin")

    def __repr__(self) -> str:  # no tokens, ever
        return f"<Company {self.source_id} {self.connection_state}>"


# The dashboard lists companies by name, ignoring case, the realm breaking ties. The index
# hands out that order, so a page is a short index walk with LIMIT instead of a sort of
# every company. PostgreSQL only: SQLite cannot reflect an expression index, so rebuilding
# the table there (a batch migration) would silently drop it, and the embedded backend
# never holds enough companies to need it.
COMPANY_NAME_ORDER = (func.lower(func.coalesce(Company.name, "")), Company.source_id)
Index("ix_company_name_order", *COMPANY_NAME_ORDER).ddl_if(dialect="postgresql")
# The dashboard's search matches any part of the name or the realm, ignoring case
# (``lower(x) LIKE '%text%'``, which no B-tree serves): trigram indexes find the matches
# without testing every company. PostgreSQL only (pg_trgm), like the index above.
for _column in (Company.name, Company.source_id):
    Index(f"ix_company_{_column.key}_trgm", func.lower(_column).label(f"{_column.key}_lower"),
          postgresql_using="gin", postgresql_ops={f"{_column.key}_lower": "gin_trgm_ops"}).ddl_if(dialect="postgresql")
del _column


class SourceRecordMixin(TimestampMixin):
    """Columns every synced QuickBooks object shares."""

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    source_id: Mapped[str] = mapped_column(String(64), nullable=False)
    sync_token: Mapped[Optional[int]] = mapped_column(Integer)
    raw_data: Mapped[Optional[dict[str, Any]]] = mapped_column(JSONType)
    source_created_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    source_updated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # Rows deleted (invoices) in QuickBooks are marked, never erased.
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    deleted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())


class Customer(SourceRecordMixin, Base):
    __tablename__ = "customer"
    __table_args__ = (UniqueConstraint("company_source_id", "source_id"),)

    company_source_id: Mapped[str] = mapped_column(
        ForeignKey("company.source_id", ondelete="CASCADE"), nullable=False)
    display_name: Mapped[Optional[str]] = mapped_column(String(500))
    company_name: Mapped[Optional[str]] = mapped_column(String(500))
    email: Mapped[Optional[str]] = mapped_column(String(500))
    balance: Mapped[Optional[Decimal]] = mapped_column(Numeric(18, 2))
    currency: Mapped[Optional[str]] = mapped_column(String(64))
    # Customers are never deleted in QuickBooks, only made inactive.
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class Invoice(SourceRecordMixin, Base):
    __tablename__ = "invoice"
    __table_args__ = (
        UniqueConstraint("company_source_id", "source_id"),
        # Linking late customers looks invoices up by their CustomerRef.
        Index("ix_invoice_company_customer_source", "company_source_id", "customer_source_id"),
    )

    company_source_id: Mapped[str] = mapped_column(
        ForeignKey("company.source_id", ondelete="CASCADE"), nullable=False)
    customer_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    # QuickBooks' CustomerRef, kept even before the customer row exists.
    customer_source_id: Mapped[Optional[str]] = mapped_column(String(64))
    doc_number: Mapped[Optional[str]] = mapped_column(String(64))
    txn_date: Mapped[Optional[date]] = mapped_column(Date)
    due_date: Mapped[Optional[date]] = mapped_column(Date)
    total_amt: Mapped[Optional[Decimal]] = mapped_column(Numeric(18, 2))
    balance: Mapped[Optional[Decimal]] = mapped_column(Numeric(18, 2))
    currency: Mapped[Optional[str]] = mapped_column(String(8))


# The typed columns of ``sync.specs`` kinds.
COLUMN_TYPES = {
    specs.TEXT: String(500), specs.CODE: String(64), specs.DATE: Date(), specs.AMOUNT: Numeric(18, 2),
    specs.NUMBER: Numeric(18, 6), specs.INT: Integer(), specs.BOOL: Boolean(),
}


def object_table(spec: specs.EntitySpec) -> Table:
    """Declare the table of an object type from its spec (customer and invoice are classes above).

    The shared columns of ``SourceRecordMixin``, then the typed ones; a reference gets its
    source id (indexed with the company, for linking late targets) and a foreign key.
    """
    columns: list[Any] = [
        Column("id", PrimaryKey, primary_key=True),
        Column("company_source_id", ForeignKey("company.source_id", ondelete="CASCADE"), nullable=False),
        Column("source_id", String(64), nullable=False),
        Column("sync_token", Integer), Column("raw_data", JSONType),
        Column("source_created_at", UTCDateTime()), Column("source_updated_at", UTCDateTime()),
        Column("is_deleted", Boolean, default=False, nullable=False), Column("deleted_at", UTCDateTime()),
        Column("created_at", UTCDateTime(), default=utcnow, nullable=False),
        Column("updated_at", UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False),
        UniqueConstraint("company_source_id", "source_id"),
    ]
    for col in spec.columns:
        if isinstance(col, specs.Ref):
            target = specs.SPECS[col.target].table if col.target in specs.SPECS else col.target
            columns += [Column(col.source_column, String(64)),
                        Column(col.fk_column, ForeignKey(f"{target}.id", ondelete="SET NULL")),
                        Index(f"ix_{spec.table}_company_{col.source_column}", "company_source_id",
                              col.source_column)]
        elif col.column == "active":
            columns.append(Column("active", Boolean, default=True, nullable=False))
        else:
            columns.append(Column(col.column, COLUMN_TYPES[col.kind]))
    return Table(spec.table, Base.metadata, *columns)


def declare_object_tables() -> None:
    """Declare the table of every registered object type that has none yet."""
    for spec in specs.SPECS.values():
        if spec.table not in Base.metadata.tables:
            object_table(spec)


# A state needing attention: a failed sync or a parity failure (two drifting checks in a
# row, sync.parity.FAILURE_STREAK) of a type that is switched on.
SYNC_STATE_FAILING = "enabled AND (status = 'FAILED' OR parity_drifts >= 2)"


class SyncState(TimestampMixin, Base):
    """Where the sync of one object type of one company stands."""

    __tablename__ = "sync_state"
    __table_args__ = (
        UniqueConstraint("company_source_id", "object_type"),
        # The dashboard asks "which companies have a failure?" on every poll: a partial
        # index holds only the few failed states, so that costs nothing with many companies.
        Index("ix_sync_state_failed", "company_source_id",
              postgresql_where=text("status = 'FAILED'"), sqlite_where=text("status = 'FAILED'")),
        # Likewise for parity failures (drifting in 2 checks in a row, sync.parity.FAILURE_STREAK).
        Index("ix_sync_state_parity_failed", "company_source_id",
              postgresql_where=text("parity_drifts >= 2"), sqlite_where=text("parity_drifts >= 2")),
        # Exactly the states that need attention (overview._FAILED): the companies page counts
        # and looks up failing companies with an index-only scan, never visiting the table.
        Index("ix_sync_state_failing", "company_source_id",
              postgresql_where=text(SYNC_STATE_FAILING), sqlite_where=text(SYNC_STATE_FAILING)),
    )

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    company_source_id: Mapped[str] = mapped_column(
        ForeignKey("company.source_id", ondelete="CASCADE"), nullable=False)
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)  # "customer", "invoice"
    status: Mapped[SyncStatus] = mapped_column(_enum(SyncStatus), default=SyncStatus.PENDING,
                                               nullable=False)
    is_initial_backfill_completed: Mapped[bool] = mapped_column(Boolean, default=False,
                                                                nullable=False)
    initial_attempt_time: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    last_attempt_time: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    last_successful_sync_time: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # Backfill resume cursor: every record created before this instant is stored, plus
    # ``backfill_tie_offset`` records created exactly at it (ties may exceed a page).
    last_sync_most_recent_source_created_at_time: Mapped[Optional[datetime]] = mapped_column(
        UTCDateTime())
    backfill_tie_offset: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # Id of the last stored record: the next page must begin with it, or a delete
    # shifted the tie group and it is read again.
    backfill_last_source_id: Mapped[Optional[str]] = mapped_column(String(64))
    # Our clock when this backfill began: rows it did not touch by the end were deleted.
    backfill_started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    records_total: Mapped[Optional[int]] = mapped_column(Integer)  # COUNT(*) at backfill start
    records_synced: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    error_message: Mapped[Optional[str]] = mapped_column(Text)
    error_kind: Mapped[Optional[str]] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_failed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # Switched off by an operator: not synced, its rows kept.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true(), nullable=False)
    # The last parity check: Intuit's COUNT(*) against our live rows, and how many checks
    # in a row found them apart (two is a failure).
    parity_checked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    parity_source_count: Mapped[Optional[int]] = mapped_column(Integer)
    parity_local_count: Mapped[Optional[int]] = mapped_column(Integer)
    parity_drifts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"), nullable=False)
    # The first check of the current run of drifting ones (the failure says "since").
    parity_drift_since: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # Why the last check could not count this type (None when it could).
    parity_error: Mapped[Optional[str]] = mapped_column(Text)

    company: Mapped[Company] = relationship(back_populates="sync_states")


ONE_ACTIVE = "status IN ('queued', 'running')"


class SyncRun(TimestampMixin, Base):
    """One sync job. The database, not the queue, is its record: Huey delivers at most
    once, so a run whose lease expired is re-queued by the reaper."""

    __tablename__ = "sync_run"
    __table_args__ = (
        Index("ix_sync_run_company_created", "company_source_id", "created_at"),
        # One active run per company, enforced by the database itself (not only by a lock
        # and a check): a second queued or running row for a company cannot be written.
        Index("uq_sync_run_one_active", "company_source_id", unique=True,
              postgresql_where=text(ONE_ACTIVE), sqlite_where=text(ONE_ACTIVE)),
    )

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    company_source_id: Mapped[str] = mapped_column(
        ForeignKey("company.source_id", ondelete="CASCADE"), nullable=False)
    object_type: Mapped[Optional[str]] = mapped_column(String(32))  # None: every object type
    kind: Mapped[RunKind] = mapped_column(_enum(RunKind), nullable=False)
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus), default=RunStatus.QUEUED,
                                              nullable=False, index=True)
    trigger: Mapped[Optional[str]] = mapped_column(String(32))  # schedule, operator, webhook, connect
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    lease_expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    records_written: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    pages: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    requests: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    error_message: Mapped[Optional[str]] = mapped_column(Text)
    checkpoint: Mapped[Optional[dict[str, Any]]] = mapped_column(JSONType)


class OAuthState(Base):
    """A pending authorization: the ``state`` sent to Intuit, claimed once on callback."""

    __tablename__ = "oauth_state"

    # SHA-256 of the state value: a database leak does not yield usable states.
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    integration: Mapped[str] = mapped_column(String(32), nullable=False)
    operator_id: Mapped[Optional[int]] = mapped_column(ForeignKey("operator.id", ondelete="CASCADE"))
    session_binding: Mapped[str] = mapped_column(String(64), nullable=False)
    company_source_id: Mapped[Optional[str]] = mapped_column(String(64))  # set on reconnect
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    consumed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """Inbox of verified webhook deliveries: stored before anything is queued."""

    __tablename__ = "webhook_delivery"

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    integration: Mapped[str] = mapped_column(String(32), nullable=False)
    # SHA-256 of the raw body: Intuit retries deliveries, a duplicate is ignored.
    body_sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    payload: Mapped[Any] = mapped_column(JSONType, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    processed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), index=True)


class AppLock(Base):
    """Expiring named locks for the embedded backend (Redis holds them in production)."""

    __tablename__ = "app_lock"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class ParityCheck(Base):
    """One parity check of one object type: Intuit's count against our live rows."""

    __tablename__ = "parity_check"
    __table_args__ = (Index("ix_parity_check_company_checked", "company_source_id", "checked_at"),)

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    company_source_id: Mapped[str] = mapped_column(
        ForeignKey("company.source_id", ondelete="CASCADE"), nullable=False)
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    source_count: Mapped[Optional[int]] = mapped_column(Integer)  # None: Intuit's count could not be had
    local_count: Mapped[int] = mapped_column(Integer, nullable=False)
    error: Mapped[Optional[str]] = mapped_column(Text)  # why, then


class AuditEvent(Base):
    """One operator action (or sign-in attempt): who, what, on which company, from where.

    Append-only: the code has no path that updates or deletes a row, and the database
    refuses both (a trigger, see the migration) except deleting rows older than a year.
    ``company_source_id`` is not a foreign key: the trail outlives a removed company.
    """

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_company_occurred", "company_source_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(120), nullable=False)  # operator username, "cli:<user>", or the name tried
    action: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    company_source_id: Mapped[Optional[str]] = mapped_column(String(64))
    object_type: Mapped[Optional[str]] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, default="ok")  # ok, refused, failed
    detail: Mapped[Optional[str]] = mapped_column(Text)  # one human sentence; never a token or password
    remote_addr: Mapped[Optional[str]] = mapped_column(String(64))


declare_object_tables()


# -- alerts (services/alerts) ---------------------------------------------------------
class Alert(Base):
    """One problem operators are told about, by its stable key (``sync_failed:<realm>:<type>``):
    opened when first seen, re-notified at most daily, resolved when gone (and opened again
    if it comes back)."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    company_source_id: Mapped[Optional[str]] = mapped_column(String(64), index=True)  # None: app-wide
    object_type: Mapped[Optional[str]] = mapped_column(String(32))
    stage: Mapped[Optional[str]] = mapped_column(String(32))  # e.g. "30 days" / "7 days" before an expiry
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_notified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    notifications: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), index=True)


class AlertDelivery(Base):
    """One message to one channel (the outbox of alert delivery): what, where, and how it went."""

    __tablename__ = "alert_delivery"
    __table_args__ = (Index("ix_alert_delivery_status_created", "status", "created_at"),
                      Index("ix_alert_delivery_channel_status", "channel", "status"))

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)   # webhook | email
    event: Mapped[str] = mapped_column(String(16), nullable=False)     # problem | reminder | recovery | digest | test
    title: Mapped[str] = mapped_column(String(500), nullable=False)
    payload: Mapped[Any] = mapped_column(JSONType, nullable=False)     # the event (README "Alerts"); no secrets
    status: Mapped[str] = mapped_column(String(16), default="pending", nullable=False)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())  # after a failed attempt
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())


# --- API-budget governor -----------------------------------------------------------------

class MeteredCall(Base):
    """Metered Intuit calls per hour and company (the embedded backend's counter; Redis
    holds it when REDIS_URL is set). A month's use is the sum of its hours."""

    __tablename__ = "metered_call"

    hour_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    company_source_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger, nullable=False)


class BudgetPace(Base):
    """The governor's last decision (one row): how much scheduled syncs are stretched, and why."""

    __tablename__ = "budget_pace"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Seconds between scheduled syncs: the configured interval, and the paced one of each group.
    base_interval_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    webhook_interval_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    idle_interval_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    used: Mapped[int] = mapped_column(BigInteger, nullable=False)
    projected: Mapped[int] = mapped_column(BigInteger, nullable=False)
    budget: Mapped[int] = mapped_column(BigInteger, nullable=False)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
