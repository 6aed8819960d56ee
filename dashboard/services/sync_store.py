"""Writing synced records: bulk upserts, late links, deletion marks. Callers own the transaction.

Every statement handles a whole page (one INSERT … ON CONFLICT, one UPDATE … FROM), not
one row at a time.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import Table, and_, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import utcnow
from ..sync.specs import SPECS, EntitySpec, Row

# Columns the upsert never overwrites.
_KEEP = {"id", "created_at", "company_source_id", "source_id"}


def table_for(spec: EntitySpec) -> Table:
    return db.metadata.tables[spec.table]


def _insert(table: Table):
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def upsert_rows(spec: EntitySpec, company_source_id: str, rows: Sequence[Row]) -> int:
    """Insert or update a page of rows in one statement; never go back to an older version."""
    if not rows:
        return 0
    table = table_for(spec)
    now = utcnow()
    values = [{**row, "company_source_id": company_source_id, "created_at": now, "updated_at": now}
              for row in rows]
    # Intuit may send the same record twice in one page set (overlaps); keep the newest.
    newest: dict[str, dict[str, Any]] = {}
    for value in values:
        seen = newest.get(value["source_id"])
        if seen is None or (value["sync_token"], value["source_updated_at"]) >= (
                seen["sync_token"], seen["source_updated_at"]):
            newest[value["source_id"]] = value
    stmt = _insert(table)
    excluded = stmt.excluded
    set_: dict[str, Any] = {c: excluded[c] for c in values[0] if c not in _KEEP}
    for source_col, fk_col, _target in spec.links:
        # A changed reference drops the old link; the link step sets the new one.
        set_[fk_col] = case((table.c[source_col] == excluded[source_col], table.c[fk_col]), else_=None)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.company_source_id, table.c.source_id],
        set_=set_,
        # Ids are never reused, so a deleted row stays deleted; an older read never wins.
        where=and_(table.c.is_deleted.is_(False),
                   or_(table.c.sync_token.is_(None), excluded.sync_token > table.c.sync_token,
                       and_(excluded.sync_token == table.c.sync_token,
                            excluded.source_updated_at >= table.c.source_updated_at))),
    ).returning(table.c.id)  # RETURNING lets SQLAlchemy 2.1 batch the executemany (insertmanyvalues)
    db.session.execute(stmt, list(newest.values())).all()
    return len(newest)


def link_rows(company_source_id: str, touched: EntitySpec) -> int:
    """Fill missing links (an invoice's customer) whose target now exists, in one UPDATE … FROM."""
    linked = 0
    for spec in SPECS.values():
        for source_col, fk_col, target_name in spec.links:
            if touched.name not in (spec.name, target_name):
                continue
            table, target = table_for(spec), table_for(SPECS[target_name])
            result = db.session.execute(
                update(table)
                .where(table.c.company_source_id == company_source_id, table.c[fk_col].is_(None),
                       table.c[source_col].is_not(None),
                       target.c.company_source_id == table.c.company_source_id,
                       target.c.source_id == table.c[source_col])
                .values({fk_col: target.c.id, "updated_at": table.c.updated_at}))  # a link is not a fresh read
            linked += result.rowcount or 0
    return linked


def mark_deleted(spec: EntitySpec, company_source_id: str, deleted: Iterable[tuple[str, datetime]]) -> int:
    """Mark rows Intuit reports deleted (never erase them)."""
    table = table_for(spec)
    count = 0
    for source_id, when in deleted:
        result = db.session.execute(
            update(table).where(table.c.company_source_id == company_source_id, table.c.source_id == source_id,
                                table.c.is_deleted.is_(False))
            .values(is_deleted=True, deleted_at=when, updated_at=utcnow()))
        count += result.rowcount or 0
    return count


def mark_untouched_deleted(spec: EntitySpec, company_source_id: str, since: datetime, when: datetime) -> int:
    """Mark live rows that a complete scan begun at ``since`` did not write: Intuit deleted them."""
    table = table_for(spec)
    result = db.session.execute(
        update(table).where(table.c.company_source_id == company_source_id, table.c.is_deleted.is_(False),
                            table.c.updated_at < since)
        .values(is_deleted=True, deleted_at=when))
    return result.rowcount or 0


def count_rows(spec: EntitySpec, company_source_id: str) -> int:
    table = table_for(spec)
    from sqlalchemy import func

    return db.session.execute(select(func.count()).select_from(table).where(
        table.c.company_source_id == company_source_id, table.c.is_deleted.is_(False))).scalar_one()
