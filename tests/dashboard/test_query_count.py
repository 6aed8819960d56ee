"""The companies page costs the same number of SQL queries for 10 or 1,000 companies."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from tests.dashboard import factories as make


@contextmanager
def counting_queries(engine):
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _queries_for_page(app, client, url: str) -> list[str]:
    from dashboard.extensions import db

    with app.app_context():
        engine = db.engine
    with counting_queries(engine) as statements:
        response = client.get(url)
    assert response.status_code == 200
    return statements


def test_companies_page_query_count_does_not_grow_with_companies(app, signed_in):
    from dashboard.extensions import db

    with app.app_context():
        make.many_companies(10, prefix="1")
        db.session.remove()
    small = _queries_for_page(app, signed_in, "/")
    assert "Company 00009" in signed_in.get("/").get_data(as_text=True)

    with app.app_context():
        make.many_companies(990, prefix="2")
        db.session.remove()
    large = _queries_for_page(app, signed_in, "/")
    html = signed_in.get("/").get_data(as_text=True)
    assert "of 1,000" in html and "1,000 companies" in html

    assert len(small) == len(large), "\n\n".join(large)
    # The operator loader, the counts, the page, sync states, record counts and active
    # runs: a fixed handful, never one per company.
    assert len(large) <= 6, "\n\n".join(large)


def test_filtered_and_paged_requests_are_constant_too(app, signed_in):
    from dashboard.extensions import db

    with app.app_context():
        make.many_companies(1000)
        db.session.remove()
    counts = {len(_queries_for_page(app, signed_in, url))
              for url in ("/?page=2", "/?page=20", "/?state=failing", "/?q=Company+001", "/?state=disconnected")}
    assert len(counts) <= 2, counts  # an empty page skips the per-page lookups
    assert max(counts) <= 6


def test_company_page_query_count_does_not_grow_with_history(app, signed_in):
    from dashboard.extensions import db
    from dashboard.models import RunStatus

    with app.app_context():
        make.company("100", "Alpha")
        make.run("100", status=RunStatus.SUCCEEDED)
        db.session.remove()
    few = _queries_for_page(app, signed_in, "/companies/100")
    with app.app_context():
        for _ in range(60):
            make.run("100", status=RunStatus.SUCCEEDED)
        make.records("100", customers=500, invoices=500)
        db.session.remove()
    many = _queries_for_page(app, signed_in, "/companies/100")
    # Two of them are the API budget's: the pause banner's count (embedded backend; none with
    # Redis) and the governor's pace for the "Scheduled syncs" card.
    assert len(few) == len(many) <= 8, "\n\n".join(many)


def test_statements_per_page_do_not_grow_with_the_object_types_switched_on(app, signed_in):
    """2 types or all 28: the same statements (records stored come from sync_state, not a COUNT per table)."""
    from sqlalchemy import update

    from dashboard.extensions import db
    from dashboard.models import RunStatus, SyncState
    from dashboard.sync import specs

    with app.app_context():
        make.company("100", "Alpha")
        make.healthy("100", types=tuple(specs.SPECS))
        db.session.execute(update(SyncState).where(SyncState.object_type.not_in(["customer", "invoice"]))
                           .values(enabled=False))
        db.session.commit()
        make.run("100", status=RunStatus.RUNNING)  # every type's "Waiting for" is worked out
        db.session.remove()
    urls = ("/", "/companies/100", "/companies/100/status")
    headers = {"/companies/100/status": {"HX-Request": "true", "HX-Target": "company-status"}}

    def measure() -> dict[str, list[str]]:
        with app.app_context():
            engine = db.engine
        found = {}
        for url in urls:
            with counting_queries(engine) as statements:
                assert signed_in.get(url, headers=headers.get(url, {})).status_code == 200
            found[url] = statements
        return found

    two = measure()
    assert "2 queued" in signed_in.get("/").get_data(as_text=True)
    with app.app_context():
        db.session.execute(update(SyncState).values(enabled=True))
        db.session.commit()
        db.session.remove()
    all_types = measure()
    assert "28 queued" in signed_in.get("/").get_data(as_text=True)
    html = signed_in.get("/companies/100").get_data(as_text=True)
    assert html.count('aria-checked="true"') == 28
    for url in urls:
        assert len(two[url]) == len(all_types[url]), (url, "\n\n".join(all_types[url]))
    # One statement each is the API-budget banner's (embedded backend; with Redis it costs none).
    assert len(all_types["/"]) <= 6 and len(all_types["/companies/100"]) <= 8, all_types
