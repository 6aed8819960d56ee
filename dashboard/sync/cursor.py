"""Keyset scan cursors with ties, and the check that overlapping pages still join up.

A scan reads records ordered by a timestamp (then Id) with ``field >= cursor.time``.
``cursor.tie`` records at exactly ``cursor.time`` are already stored (ties can exceed
a page), and ``cursor.anchor`` is the Id of the last stored record. Pages overlap by
one record: if page k+1 does not begin with page k's last record, something before it
vanished (a delete, or an update moving a record away) and the speculative pages are
dropped and fetched again from the committed cursor.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from .queries import page_start


@dataclass(frozen=True)
class ScanCursor:
    time: datetime | None = None
    tie: int = 0
    anchor: str | None = None  # source id of the last committed record

    @property
    def anchored(self) -> bool:
        return self.anchor is not None and self.tie >= 1

    def start(self, k: int, page_size: int) -> int:
        """Return the STARTPOSITION of speculative page k from this cursor."""
        return page_start(self.tie, self.anchored, k, page_size)

    def without_anchor(self) -> "ScanCursor":
        """Forget the tie group: re-read every record at ``time`` (after a shifted page 0)."""
        return ScanCursor(self.time, 0, None)


def advance(cursor: ScanCursor, keys: Sequence[tuple[datetime, str]]) -> ScanCursor:
    """Return the cursor after committing records with these (time, id) keys, in scan order."""
    if not keys:
        return cursor
    last_time, last_id = keys[-1]
    trailing = 0
    for key_time, _ in reversed(keys):
        if key_time != last_time:
            break
        trailing += 1
    if trailing == len(keys) and cursor.time == last_time:
        return ScanCursor(last_time, cursor.tie + trailing, last_id)
    return ScanCursor(last_time, trailing, last_id)


@dataclass(frozen=True)
class PageCheck:
    fresh: int        # index in the page of the first record not stored yet
    joined: bool      # the page begins where the previous one ended
    last: bool        # the page is short: the scan ends here


def check_page(ids: Sequence[str], expected_first: str | None, page_size: int) -> PageCheck:
    """Decide whether a fetched page joins the previous one and what of it is new."""
    last = len(ids) < page_size
    if expected_first is None:
        return PageCheck(0, True, last)
    if not ids or ids[0] != expected_first:
        return PageCheck(0, False, last)
    return PageCheck(1, True, last)
