"""Writing synced records: bulk upserts, late links, deletion marks. Callers own the transaction.

Every statement handles a whole page (one INSERT … ON CONFLICT, one UPDATE … FROM), not
one row at a time. On PostgreSQL a page is streamed with ``COPY`` into a temporary
staging table on the session's own connection (so in the caller's transaction) and
upserted from there with one ``INSERT … SELECT … ON CONFLICT``, which also resolves the
page's links; each record's JSON is serialised once, by orjson. SQLite takes the
SQLAlchemy ``INSERT … ON CONFLICT`` executemany. Both apply the same newer-wins rule.
"""
from __future__ import annotations

import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable, Sequence

import orjson
from sqlalchemy import Table, and_, case, column, func, or_, select, table as table_clause, update
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import utcnow
from ..sync.specs import SPECS, EntitySpec, Row

# Columns the upsert never overwrites.
_KEEP = {"id", "created_at", "company_source_id", "source_id"}


def table_for(spec: EntitySpec) -> Table:
    return db.metadata.tables[spec.table]


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _newest(spec: EntitySpec, company_source_id: str, rows: Sequence[Row]) -> list[tuple[int, dict[str, Any]]]:
    """Return the page's values with their row index, one per source id: Intuit may send a record twice."""
    now = utcnow()
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, row in enumerate(rows):
        value = {**row, "company_source_id": company_source_id, "created_at": now, "updated_at": now}
        seen = newest.get(value["source_id"])
        if seen is None or (value["sync_token"], value["source_updated_at"]) >= (
                seen[1]["sync_token"], seen[1]["source_updated_at"]):
            newest[value["source_id"]] = (index, value)
    return list(newest.values())


def _on_conflict(stmt, table: Table, columns: Iterable[str], spec: EntitySpec, *, linked: bool,
                 revive: bool = False):
    """Add the newer-wins ON CONFLICT clause shared by both write paths.

    ``revive``: a backfill read the record whole, so it exists, even if a row says it was
    deleted (a tombstone sent in error, a merge): the row comes back. Other reads never
    undo a delete.
    """
    excluded = stmt.excluded
    set_: dict[str, Any] = {c: excluded[c] for c in columns if c not in _KEEP}
    for source_col, fk_col, _target in spec.links:
        if linked:
            # The INSERT looked the link up already: the target row that exists now (or NULL).
            set_[fk_col] = excluded[fk_col]
        else:
            # A changed reference drops the old link; the link step sets the new one.
            set_[fk_col] = case((table.c[source_col] == excluded[source_col], table.c[fk_col]), else_=None)
    newer = and_(table.c.is_deleted.is_(False),
                 or_(table.c.sync_token.is_(None), excluded.sync_token > table.c.sync_token,
                     and_(excluded.sync_token == table.c.sync_token,
                          excluded.source_updated_at >= table.c.source_updated_at)))
    return stmt.on_conflict_do_update(
        index_elements=[table.c.company_source_id, table.c.source_id],
        set_=set_,
        # Ids are never reused: a deleted row stays deleted (unless a backfill reads it
        # whole); an older read never wins.
        where=or_(newer, table.c.is_deleted.is_(True)) if revive else newer,
    )


def upsert_rows(spec: EntitySpec, company_source_id: str, rows: Sequence[Row],
                lines: Sequence[str] | None = None, revive: bool = False) -> int:
    """Insert or update a page of rows; never go back to an older version.

    ``lines`` are the rows already rendered by ``copy_lines`` (off the writing thread);
    on PostgreSQL the page's links are resolved by the same statement (see ``write_rows``).
    """
    if not rows:
        return 0
    indexed = _newest(spec, company_source_id, rows)
    if _dialect() == "postgresql":
        _copy_upsert(spec, company_source_id, indexed, lines, revive)
        return len(indexed)
    values = [value for _, value in indexed]
    table = table_for(spec)
    stmt = _on_conflict(sqlite.insert(table), table, values[0], spec, linked=False, revive=revive)
    # RETURNING lets SQLAlchemy 2.1 batch the executemany (insertmanyvalues).
    db.session.execute(stmt.returning(table.c.id), values).all()
    return len(values)


def write_rows(spec: EntitySpec, company_source_id: str, rows: Sequence[Row],
               lines: Sequence[str] | None = None, revive: bool = False) -> int:
    """Upsert a page and fill the links it makes possible (the caller commits both with its cursor)."""
    written = upsert_rows(spec, company_source_id, rows, lines, revive)
    # PostgreSQL's upsert linked the page's own references; late targets still need the UPDATE.
    link_rows(company_source_id, spec, sources=_dialect() != "postgresql")
    return written


def uses_copy() -> bool:
    """Whether pages are written with COPY (PostgreSQL): then ``copy_lines`` is worth calling."""
    return _dialect() == "postgresql"


def copy_lines(rows: Sequence[Row]) -> list[str]:
    """Render each row's own columns in COPY text format (pure: safe in fetch threads)."""
    return ["\t".join([_copy_text(v) for v in row.values()]) for row in rows]


# -- PostgreSQL: COPY into a staging table, then one INSERT … SELECT … ON CONFLICT ------------
def _escape(text: str) -> str:
    """Escape a string for COPY's text format: backslash, tab and line breaks."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_text(value: Any) -> str:
    """Render one value in COPY's text format (\\N is NULL)."""
    format_ = _COPY_FORMATS.get(type(value))
    if format_ is not None:
        return format_(value)
    for kind, format_ in _COPY_FORMATS.items():  # subclasses of those types
        if isinstance(value, kind):
            return format_(value)
    return _escape(str(value))


def _copy_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.isoformat()


# Looked up by exact type first (one dict lookup per value: a page has some 13,000 of
# them), then in this order by isinstance: bool before int and datetime before date,
# their base classes.
_COPY_FORMATS = {
    str: _escape, bool: lambda v: "t" if v else "f", int: str, Decimal: str, type(None): lambda _v: "\\N",
    datetime: _copy_time, date: date.isoformat,
    dict: lambda v: _escape(_json_text(v)), list: lambda v: _escape(_json_text(v)),
}


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        # Integers beyond 64 bits or other values orjson refuses: the standard library takes them.
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _stage_name(table: Table) -> str:
    return f"qbosync_stage_{table.name}"


def _copy_upsert(spec: EntitySpec, company_source_id: str, indexed: list[tuple[int, dict[str, Any]]],
                 lines: Sequence[str] | None, revive: bool) -> None:
    table = table_for(spec)
    columns = list(indexed[0][1])
    stage = _stage_name(table)
    col_list = ", ".join(columns)
    if lines is None:
        text = "".join(["\t".join([_copy_text(value[c]) for c in columns]) + "\n" for _, value in indexed])
    else:
        # A row's own columns come first (``_newest``: ``{**row, company, created_at, updated_at}``).
        first = indexed[0][1]
        tail = "\t" + "\t".join([_copy_text(first[c]) for c in ("company_source_id", "created_at", "updated_at")])
        text = "".join([lines[i] + tail + "\n" for i, _ in indexed])
    buf = io.BytesIO(text.encode())  # bytes: psycopg2 streams them as they are (no UCS-4 buffer)
    del text
    # The session's own connection: the staged page is upserted in the caller's transaction.
    cursor = db.session.connection().connection.cursor()
    try:
        # The stage lives as long as the connection; ON COMMIT DELETE ROWS empties it at each
        # commit (a rollback discards its rows), TRUNCATE covers two pages in one transaction.
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
                       f"SELECT {col_list} FROM {table.name} WITH NO DATA; TRUNCATE {stage}")
        cursor.copy_expert(f"COPY {stage} ({col_list}) FROM STDIN", buf)
    finally:
        cursor.close()
    db.session.execute(_staged_insert(spec, tuple(columns), revive))


_STAGED: dict[tuple[str, tuple[str, ...]], Any] = {}


def _staged_insert(spec: EntitySpec, columns: tuple[str, ...], revive: bool):
    """Build (once) ``INSERT INTO t SELECT stage… LEFT JOIN link targets ON CONFLICT …``."""
    key = (spec.name, columns, revive)
    stmt = _STAGED.get(key)
    if stmt is not None:
        return stmt
    table = table_for(spec)
    stage = table_clause(_stage_name(table), *[column(c, table.c[c].type) for c in columns]).alias("s")
    selected = [stage.c[c] for c in columns]
    names = list(columns)
    source = stage
    for source_col, fk_col, target_name in spec.links:
        target = table_for(SPECS[target_name]).alias(f"link_{fk_col}")
        source = source.outerjoin(target, and_(target.c.company_source_id == stage.c.company_source_id,
                                               target.c.source_id == stage.c[source_col]))
        selected.append(target.c.id.label(fk_col))
        names.append(fk_col)
    query = select(*selected).select_from(source)
    stmt = _on_conflict(postgresql.insert(table).from_select(names, query), table, names, spec, linked=True,
                        revive=revive)
    _STAGED[key] = stmt
    return stmt


def link_rows(company_source_id: str, touched: EntitySpec, *, sources: bool = True) -> int:
    """Fill missing links (an invoice's customer) whose target now exists, in one UPDATE … FROM.

    ``sources=False`` skips the links from ``touched``'s own rows (the upsert resolved them)
    and keeps those to it: rows written before their target (late customers).
    """
    linked = 0
    for spec in SPECS.values():
        for source_col, fk_col, target_name in spec.links:
            if touched.name != target_name and not (sources and touched.name == spec.name):
                continue
            # An alias, so a link to the same type (an account's parent) joins two rows.
            table, target = table_for(spec), table_for(SPECS[target_name]).alias("target")
            result = db.session.execute(
                update(table)
                .where(table.c.company_source_id == company_source_id, table.c[fk_col].is_(None),
                       table.c[source_col].is_not(None),
                       target.c.company_source_id == table.c.company_source_id,
                       target.c.source_id == table.c[source_col])
                .values({fk_col: target.c.id, "updated_at": table.c.updated_at}))  # a link is not a fresh read
            linked += result.rowcount or 0
    return linked


def live_count(spec: EntitySpec, company_source_id: str) -> int:
    """Count the company's rows of this type that are not deleted (inactive name-list rows count)."""
    table = table_for(spec)
    return db.session.execute(select(func.count()).select_from(table).where(
        table.c.company_source_id == company_source_id, table.c.is_deleted.is_(False))).scalar_one()


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

