"""Which pages of a keyset scan to ask for, and what each answer decides.

A scan reads pages of ``page_size`` records from a cursor, each page starting on the
last record of the one before (see ``cursor``). Pages are asked for ahead of need, up
to ``width`` at once; answers are taken strictly in order. When a backfill's COUNT says
how many records are left, no page is asked for ahead past that end (each costs a
metered request): beyond it page j is asked for only once page j-1 came back full, so
records created since the count are still read. A page that does not join the one
before it means a record before it vanished: the pages ahead are dropped and a new read
starts from the committed cursor, a bounded number of times.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from .cursor import PageCheck, ScanCursor, advance, check_page


@dataclass(frozen=True)
class PageRequest:
    index: int   # k: pages from the start of the current read
    start: int   # its STARTPOSITION


def may_ask_ahead(k: int, page_size: int, expected: int | None) -> bool:
    """Whether page k is worth asking for before page k-1 came back.

    Pages 0..k-1 hold ``(k-1) * (page_size-1) + page_size`` records when all full (one
    record of overlap each); ``expected`` is what the read should find (None: unknown).
    """
    return expected is None or (k - 1) * (page_size - 1) + page_size <= expected


class PagePlan:
    """One keyset scan's pages: which to ask for next, and what an answer decides.

    Drive it with ``asks()`` (pages to request now), ``receive(ids)`` for the page awaited
    (``awaited``), then ``advance(keys)`` with the (time, id) keys of the fresh records
    committed, or ``restart()`` when the page did not join.
    """

    def __init__(self, cursor: ScanCursor, page_size: int, *, width: int = 1,
                 remaining: int | None = None, max_restarts: int = 25) -> None:
        self.cursor = cursor            # what is committed
        self.page_size = page_size
        self.width = max(1, width)
        self.remaining = remaining      # records the count says are left (None: no count)
        self.max_restarts = max_restarts
        self.restarts = 0
        self._begin()

    def _begin(self) -> None:
        """Start a read from the committed cursor."""
        self.base = self.cursor
        self.awaited = 0                # k of the page whose answer is taken next
        self._asked = 0                 # pages of this read asked for so far
        self._expected_first = self.base.anchor if self.base.anchored else None
        self._last_id: str | None = None
        # Records page 0 onwards should hold (page 0 re-reads the anchor when anchored).
        self._expected = None if self.remaining is None else self.remaining + (1 if self.base.anchored else 0)

    @property
    def since(self) -> datetime | None:
        """Return the time every page of the current read starts from."""
        return self.base.time

    def asks(self) -> list[PageRequest]:
        """Return the pages to ask for now: ``width`` in flight, past the expected end only the awaited one."""
        asks = []
        while self._asked - self.awaited < self.width:
            k = self._asked
            if k > self.awaited and not may_ask_ahead(k, self.page_size, self._expected):
                break
            asks.append(PageRequest(k, self.base.start(k, self.page_size)))
            self._asked += 1
        return asks

    def receive(self, ids: Sequence[str]) -> PageCheck:
        """Decide whether the awaited page (its record ids in order) joins and what of it is new."""
        self._last_id = ids[-1] if ids else None
        return check_page(ids, self._expected_first, self.page_size)

    def advance(self, keys: Sequence[tuple[datetime, str]]) -> ScanCursor:
        """Return the cursor after the fresh records with these keys, and await the next page."""
        self.cursor = advance(self.cursor, keys)
        if self.remaining is not None:
            self.remaining = max(0, self.remaining - len(keys))
        self._expected_first = self._last_id
        self.awaited += 1
        return self.cursor

    def restart(self) -> bool:
        """Start again from the committed cursor after the awaited page did not join; False: give up.

        The pages asked for ahead are void. A shifted page 0 means the committed tie group
        itself changed: the new read takes the whole group again.
        """
        self.restarts += 1
        if self.restarts > self.max_restarts:
            return False
        if self.awaited == 0:
            self.cursor = self.cursor.without_anchor()
        self._begin()
        return True
