"""The companies page reads companies in index order on PostgreSQL instead of sorting them all."""
from __future__ import annotations

import pytest
from sqlalchemy import event, text

from tests.dashboard import factories as make

pytestmark = pytest.mark.services


def _page_statement(app, client, url: str) -> str:
    """Return the SQL (parameters bound) that read the page's companies."""
    from dashboard.extensions import db

    seen: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "company.name" in statement and "LIMIT" in statement:
            seen.append(cursor.mogrify(statement, parameters).decode())

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(seen) == 1, seen
    return seen[0]


# Left out: ?state=failing and searches, where the planner rightly picks the few matching
# companies first and sorts just those.
@pytest.mark.parametrize("url", ["/", "/?page=3", "/?state=connected"])
def test_page_is_an_index_walk_not_a_sort_of_every_company(app, signed_in, url):
    from dashboard.extensions import db

    with app.app_context():
        make.many_companies(2000)
        with db.engine.begin() as conn:  # planner statistics, as a live database has them
            conn.execute(text("ANALYZE company, sync_state"))
        db.session.remove()
    statement = _page_statement(app, signed_in, url)
    with app.app_context(), db.engine.connect() as conn:
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement.replace("%", "%%")).scalars())
    assert "ix_company_name_order" in plan, plan
    assert "Seq Scan on company" not in plan, plan


def _statements(app, client, url: str) -> list[str]:
    from dashboard.extensions import db

    seen: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append(cursor.mogrify(statement, parameters).decode())

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen


def test_failures_are_read_from_the_failing_index_alone_not_every_sync_state(app, signed_in):
    """A failed sync or a parity failure: the failing count and filter read only ix_sync_state_failing."""
    from sqlalchemy import update

    from dashboard.extensions import db
    from dashboard.models import SyncState

    with app.app_context():
        make.many_companies(2000)
        db.session.execute(update(SyncState).where(SyncState.company_source_id.like("%13"),
                                                   SyncState.object_type == "customer")
                           .values(parity_source_count=2, parity_local_count=1, parity_drifts=2))
        db.session.commit()
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE company, sync_state"))
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM sync_state"))  # the visibility map an index-only scan needs
        db.session.remove()
    html = signed_in.get("/?state=failing").get_data(as_text=True)
    assert "with a failed sync or a parity failure" in html
    plans = []
    for statement in _statements(app, signed_in, "/?state=failing"):
        if "status = 'FAILED'" in statement:  # the failing predicate, not the list's columns
            with app.app_context(), db.engine.connect() as conn:
                plans.append("\n".join(conn.exec_driver_sql("EXPLAIN " + statement.replace("%", "%%")).scalars()))
    assert len(plans) == 2, plans  # the counts and the page
    # The count of failing companies is an index-only scan of the partial index that holds
    # exactly the failing states (no visit to the table to check ``enabled``); nothing reads
    # all of sync_state.
    assert "Index Only Scan using ix_sync_state_failing" in plans[0], plans[0]
    for plan in plans:
        assert "Seq Scan on sync_state" not in plan, plan


def test_search_finds_matches_in_the_trigram_indexes_not_by_testing_every_company(app, signed_in):
    """A search (any part of the name or realm) is counted and paged from ix_company_*_trgm.

    At 20,000 companies: with a few thousand, testing each name is still the cheaper plan.
    """
    from dashboard.extensions import db

    with app.app_context():
        make.many_companies(20_000)
        # As autovacuum leaves a live database: statistics, and the trigram indexes' pending
        # lists (GIN's fast update) merged in.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE company, sync_state"))
        db.session.remove()
    assert "Company 00123" in signed_in.get("/?q=company+0012").get_data(as_text=True)
    for url in ("/?q=company+0012", "/?q=company+0012&state=failing", "/?q=000123"):
        plans = []
        for statement in _statements(app, signed_in, url):
            if "LIKE" in statement:
                with app.app_context(), db.engine.connect() as conn:
                    plans.append("\n".join(conn.exec_driver_sql("EXPLAIN " + statement.replace("%", "%%")).scalars()))
        assert len(plans) == 2, plans  # the counts and the page
        for plan in plans:
            assert "ix_company_name_trgm" in plan and "ix_company_source_id_trgm" in plan, (url, plan)
            lines = plan.splitlines()
            # No company is tested against the text one by one (a Seq Scan filtered by LIKE).
            for above, line in zip(lines, lines[1:]):
                assert not ("~~" in line and "Seq Scan" in above), (url, plan)
