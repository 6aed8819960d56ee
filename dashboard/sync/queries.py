"""Query text for Intuit's query language, built from specs and cursors."""
from __future__ import annotations

from datetime import datetime

from .specs import EntitySpec
from .timestamps import format_qbo_time

PAGE_SIZE = 1000  # Intuit's MAXRESULTS cap
CREATED = "MetaData.CreateTime"
UPDATED = "MetaData.LastUpdatedTime"


def _where(spec: EntitySpec, field: str | None, since: datetime | None) -> str:
    terms = list(spec.filters)
    if field and since is not None:
        terms.append(f"{field} >= '{format_qbo_time(since)}'")
    return f" WHERE {' AND '.join(terms)}" if terms else ""


def scan_query(spec: EntitySpec, field: str, since: datetime | None, start_position: int,
               page_size: int = PAGE_SIZE) -> str:
    """Return one page of records with ``field >= since``, oldest first (ties by Id)."""
    if start_position < 1:
        raise ValueError("STARTPOSITION is 1-based")
    return (f"SELECT * FROM {spec.entity}{_where(spec, field, since)} ORDERBY {field} "
            f"STARTPOSITION {start_position} MAXRESULTS {page_size}")


def count_query(spec: EntitySpec) -> str:
    """Return the statement counting every record of this type (for backfill progress)."""
    return f"SELECT COUNT(*) FROM {spec.entity}{_where(spec, None, None)}"


def page_start(tie_offset: int, anchored: bool, k: int, page_size: int = PAGE_SIZE) -> int:
    """Return page k's STARTPOSITION; consecutive pages overlap by one record.

    Anchored (the last committed record is known) page 0 starts on that record, so its
    first record proves no earlier record vanished; otherwise it starts just after the
    ``tie_offset`` records already stored at the cursor time.
    """
    base = tie_offset if anchored and tie_offset >= 1 else tie_offset + 1
    return base + k * (page_size - 1)
