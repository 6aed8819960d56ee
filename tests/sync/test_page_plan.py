"""The page plan of a keyset scan, driven with plain values: which pages it asks for, restarts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dashboard.sync.cursor import ScanCursor, advance
from dashboard.sync.pages import PagePlan, may_ask_ahead

T0 = datetime(2026, 1, 2, tzinfo=timezone.utc)
Key = tuple[datetime, str]


def source(n: int, *, tie_every: int = 1) -> list[Key]:
    """Return n records in scan order; ``tie_every`` records share each time."""
    return [(T0 + timedelta(seconds=i // tie_every), str(i)) for i in range(n)]


class Source:
    """A list of (time, id) records answering STARTPOSITION pages like Intuit's query."""

    def __init__(self, records: list[Key]) -> None:
        self.records = records
        self.asked: list[int] = []                 # STARTPOSITION of every page asked for
        self.before_ask = lambda n: None           # called with the number of pages asked so far

    def page(self, since: datetime | None, start: int, size: int) -> list[Key]:
        self.before_ask(len(self.asked))
        self.asked.append(start)
        matching = [r for r in self.records if since is None or r[0] >= since]
        return matching[start - 1:start - 1 + size]


def read(src: Source, plan: PagePlan) -> list[Key] | None:
    """Run the plan as the engine does (answers taken in order); return the records committed, None: gave up."""
    pending: dict[int, list[Key]] = {}
    committed: list[Key] = []
    while True:
        for ask in plan.asks():
            pending[ask.index] = src.page(plan.since, ask.start, plan.page_size)
        page = pending.pop(plan.awaited)
        check = plan.receive([record_id for _, record_id in page])
        if not check.joined:
            pending.clear()
            if not plan.restart():
                return None
            continue
        fresh = page[check.fresh:]
        plan.advance(fresh)
        committed.extend(fresh)
        if check.last:
            return committed


def test_fetch_ahead_stops_at_the_counted_end():
    # 1,999 records, pages of 1,000 overlapping by one: 1..1000, 1000..1999, then 1999 alone
    # (page 1 came back exactly full, so the end is only known from a third page).
    records = source(1999)
    src = Source(records)
    assert read(src, PagePlan(ScanCursor(), 1000, width=4, remaining=1999)) == records
    assert src.asked == [1, 1000, 1999]
    # 2,600 records: the third page is short.
    src = Source(source(2600))
    assert read(src, PagePlan(ScanCursor(), 1000, width=4, remaining=2600)) == src.records
    assert src.asked == [1, 1000, 1999]


def test_without_a_count_width_pages_stay_in_flight():
    src = Source(source(1999))
    assert read(src, PagePlan(ScanCursor(), 1000, width=4)) == src.records
    # Four pages at once, then one more for each page taken, until page 2 ends the read.
    assert src.asked == [1, 1000, 1999, 2998, 3997, 4996]


def test_records_created_since_the_count_are_read_page_by_page():
    # The count said 1,000; 2,500 exist now. Past the counted end a page is asked for only
    # once the one before came back full.
    src = Source(source(2500))
    asked_when: list[tuple[int, int]] = []
    plan = PagePlan(ScanCursor(), 1000, width=4, remaining=1000)
    src.before_ask = lambda n: asked_when.append((n, plan.awaited))
    assert read(src, plan) == src.records
    assert src.asked == [1, 1000, 1999]
    assert asked_when == [(0, 0), (1, 0), (2, 2)]  # page 2 waited for page 1 to come back full


def test_resume_from_an_anchored_cursor_rereads_the_anchor():
    # 1,999 of 4,000 committed: page 0 starts on the last committed record, which proves
    # nothing before it vanished; 999 + 999 + 3 fresh records follow.
    records = source(4000)
    cursor = advance(ScanCursor(), records[:1999])
    assert cursor.anchored
    src = Source(records)
    plan = PagePlan(cursor, 1000, width=4, remaining=4000 - 1999)
    assert read(src, plan) == records[1999:]
    assert src.asked == [1, 1000, 1999]
    assert plan.cursor == advance(cursor, records[1999:])
    # 999 left after an anchored cursor: page 0 holds the anchor and all 999, so it will
    # come back full and page 1 (the overlap alone) is asked for with it.
    src = Source(records[:1999])
    plan = PagePlan(advance(ScanCursor(), records[:1000]), 1000, width=4, remaining=999)
    asked_when: list[int] = []
    src.before_ask = lambda n: asked_when.append(plan.awaited)
    assert read(src, plan) == records[1000:1999]
    assert src.asked == [1, 1000] and asked_when == [0, 0]


def test_a_shifted_page_drops_the_pages_ahead_and_resumes_from_the_committed_cursor():
    records = source(2500)
    src = Source(list(records))
    # Record 500 is deleted after page 0 was read: page 1 then starts one record later.
    src.before_ask = lambda n: n == 1 and src.records.remove(records[500])
    plan = PagePlan(ScanCursor(), 1000, width=1)
    assert read(src, plan) == records  # 500 was committed before it vanished; nothing twice
    assert plan.restarts == 1
    # The new read starts from the committed cursor (anchored on record 999): its page 0
    # re-reads that record, then the rest.
    assert src.asked == [1, 1000, 1, 1000]
    assert plan.cursor == ScanCursor(records[-1][0], 1, records[-1][1])


def test_a_shifted_first_page_rereads_the_whole_tie_group():
    # Ties of 10: the committed cursor is 3 records into a tie group anchored on "12".
    records = source(40, tie_every=10)
    cursor = advance(ScanCursor(), records[:13])
    assert cursor == ScanCursor(records[10][0], 3, "12")
    src = Source([r for r in records if r[1] != "12"])  # the anchor itself vanished
    plan = PagePlan(cursor, 10, width=2, remaining=27)
    committed = read(src, plan)
    assert plan.restarts == 1
    # Page 0 did not begin with the anchor: the group is read again from its first record.
    assert src.asked[:2] == [3, 12] and src.asked[2:] == [1, 10, 19, 28]
    assert committed == src.records[10:]


def test_too_many_restarts_give_up():
    src = Source(source(30))
    plan = PagePlan(ScanCursor(), 3, width=1, max_restarts=2)

    def delete_the_expected_record(_n: int) -> None:
        # Before each page 1, the record it should begin with (the last committed) vanishes.
        if plan.awaited >= 1:
            src.records.remove(next(r for r in src.records if r[1] == plan.cursor.anchor))

    src.before_ask = delete_the_expected_record
    assert read(src, plan) is None
    assert plan.restarts == 3
    # Read 1 shifts on page 1; read 2 (anchored on "2", now gone) shifts on page 0 and drops
    # the anchor; read 3 shifts on page 1 again: past the limit of 2.
    assert src.asked == [1, 3, 1, 1, 3]


def test_may_ask_ahead():
    # Pages 0..k-1 hold 1,000 + (k-1) * 999 records when all full.
    assert may_ask_ahead(1, 1000, 1000) and not may_ask_ahead(1, 1000, 999)
    assert may_ask_ahead(2, 1000, 1999) and not may_ask_ahead(2, 1000, 1998)
    assert may_ask_ahead(50, 1000, None)
