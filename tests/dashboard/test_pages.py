"""Companies page and company page: what an operator sees in each state."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from dashboard.models import ConnectionState, RunKind, RunStatus, SyncStatus, utcnow
from tests.dashboard import factories as make

HX = {"HX-Request": "true"}


def text(response) -> str:
    return response.get_data(as_text=True)


def rows(html: str) -> list[str]:
    """Company names in table order."""
    return re.findall(r'<a href="/companies/[^"]+">([^<]+)</a>\s*<small class="muted block">Realm', html)


# --- sign-in ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/companies/123", "/companies/123/status",
                                  "/companies/123/full-resync", "/companies/123/disconnect"])
def test_pages_send_anonymous_visitors_to_sign_in_and_back(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/sign-in?next={path}"


def test_an_expired_session_during_a_poll_redirects_the_whole_page(client, app):
    with app.app_context():
        make.company("123", "Acme")
    response = client.get("/companies/123/status", headers={
        **HX, "HX-Target": "company-status", "HX-Current-URL": "http://localhost/companies/123"})
    assert response.status_code == 200  # htmx follows HX-Redirect, not a fragment
    assert response.headers["HX-Redirect"] == "/sign-in?next=/companies/123"
    assert text(response) == ""


# --- companies page ----------------------------------------------------------------------------

def test_empty_state_invites_to_connect(signed_in):
    html = text(signed_in.get("/"))
    assert "No companies yet" in html
    assert '<a role="button" href="/v1/oauth/authorize/qbo">Connect QuickBooks</a>' in html


def test_companies_page_shows_each_state_with_failures_first(signed_in, app):
    now = utcnow()
    with app.app_context():
        make.company("100", "Alpha Healthy")
        make.healthy("100", at=now - timedelta(minutes=3), records={"customer": 3, "invoice": 2})
        make.company("200", "Bravo Failing")
        make.sync_state("200", "customer", SyncStatus.SUCCEEDED, last_successful_sync_time=now)
        make.sync_state("200", "invoice", SyncStatus.FAILED, error_message="QuickBooks said 500: internal",
                        attempts=4, last_failed_at=now)
        make.company("300", "Charlie Reconnect", ConnectionState.RECONNECT_REQUIRED,
                     connection_error="invalid_grant: refresh token revoked")
        make.company("400", "Delta Gone", ConnectionState.DISCONNECTED, disconnected_at=now)
    response = signed_in.get("/")
    html = text(response)
    assert response.status_code == 200
    assert response.headers["Referrer-Policy"] == "same-origin"
    # Companies needing attention first, then by name.
    assert rows(html) == ["Bravo Failing", "Charlie Reconnect", "Alpha Healthy", "Delta Gone"]
    # Object types counted by state (the 26 the test settings leave off counted too), the
    # failed one named with its message; the records stored are the sync states' counts.
    cells = status_cells(html)
    assert cells["Alpha Healthy"] == "✓ 2 synced ○ 26 off"
    assert cells["Bravo Failing"].startswith("✕ 1 failed ✓ 1 synced ○ 26 off")
    assert 'title="Failed: Invoices"' in html
    assert "Invoices: QuickBooks said 500: internal" in html
    assert "Reconnect required" in html and "Disconnected" in html
    assert record_cells(html)["Alpha Healthy"] == "5"
    assert "3 min ago" in html and "in 4 min" in html
    assert "After the backfill" in html  # Bravo's backfill never completed
    assert "Paused" not in html and "Not scheduled" not in html  # nothing for companies not connected
    assert html.count('class="attention"') == 2
    assert "4 companies" in html and "1 with a failed sync" in html
    assert 'scope="col"' in html and 'scope="row"' in html
    # Nothing is queued or running, so nothing polls.
    assert 'hx-trigger="every 2s"' not in html


def test_companies_page_polls_only_while_something_is_busy(signed_in, app):
    with app.app_context():
        make.company("100", "Alpha")
        make.healthy("100")
    assert "every 2s" not in text(signed_in.get("/"))
    with app.app_context():
        make.run("100", status=RunStatus.QUEUED)
    html = text(signed_in.get("/"))
    assert 'hx-get="/" hx-trigger="every 2s"' in html and status_cells(html)["Alpha"] == "… 2 queued ○ 26 off"


@pytest.mark.parametrize("state, expected", [
    ("connected", ["Bravo", "Alpha"]),  # failing first
    ("reconnect_required", ["Charlie"]),
    ("disconnected", ["Delta"]),
    ("failing", ["Bravo"]),
    ("", ["Bravo", "Charlie", "Alpha", "Delta"]),
])
def test_filter_by_state(signed_in, app, state, expected):
    with app.app_context():
        make.company("100", "Alpha")
        make.company("200", "Bravo")
        make.sync_state("200", "customer", SyncStatus.FAILED, error_message="x")
        make.company("300", "Charlie", ConnectionState.RECONNECT_REQUIRED)
        make.company("400", "Delta", ConnectionState.DISCONNECTED)
    html = text(signed_in.get(f"/?state={state}"))
    assert rows(html) == expected
    if state:
        assert f'<option value="{state}" selected>' in html


@pytest.mark.parametrize("q, expected", [("acme", ["Acme Corp"]), ("ACME", ["Acme Corp"]),
                                         ("9130", ["Beta 9130 Ltd", "Gamma"]), ("100%", []),
                                         ("a_b", ["a_b Shop"]), ("zzz", [])])
def test_search_by_name_or_realm(signed_in, app, q, expected):
    with app.app_context():
        make.company("111", "Acme Corp")
        make.company("222", "Beta 9130 Ltd")
        make.company("9130777", "Gamma")
        make.company("444", "axb Shop")  # "_" must not act as a wildcard
        make.company("555", "a_b Shop")
    response = signed_in.get("/", query_string={"q": q})
    assert rows(text(response)) == expected
    if not expected:
        assert "No companies match" in text(response)


@pytest.mark.parametrize("q, expected", [("%", ["50% off"]), ("_", ["a_b"]), ("\\", ["a\\b"]), ("/", ["a/b"]),
                                         ("É", ["école"]), ("'", [])])
def test_search_takes_wildcards_and_escape_characters_literally(signed_in, app, q, expected):
    with app.app_context():
        for realm, name in enumerate(("50% off", "a_b", "a\\b", "a/b", "axb", "école")):
            make.company(str(realm + 1), name)
    assert rows(text(signed_in.get("/", query_string={"q": q}))) == expected


def test_pagination_fifty_per_page(signed_in, app):
    from dashboard.extensions import db

    with app.app_context():
        make.many_companies(120)
        db.session.remove()
    first = text(signed_in.get("/?state=connected"))
    assert len(rows(first)) == 50 and "Page 1 of 3" in first and "Showing 1–50 of 120" in first
    assert 'href="/?state=connected&amp;page=2"' in first and "Previous" not in first
    last = text(signed_in.get("/?state=connected&page=3"))
    assert len(rows(last)) == 20 and "Showing 101–120 of 120" in last and "Next →" not in last
    # Pages do not overlap and cover everything.
    pages = [rows(text(signed_in.get(f"/?page={n}"))) for n in (1, 2, 3)]
    assert len({name for page in pages for name in page}) == 120
    # Past the end shows the last page rather than an empty one.
    assert rows(text(signed_in.get("/?page=99"))) == rows(text(signed_in.get("/?page=3")))


@pytest.mark.parametrize("query, message", [("state=bogus", "Unknown state filter"),
                                            ("page=0", "Page must be a whole number"),
                                            ("page=two", "Page must be a whole number"),
                                            ("q=" + "x" * 201, "too long")])
def test_bad_filters_get_a_clear_error(signed_in, query, message):
    response = signed_in.get(f"/?{query}")
    assert response.status_code == 400 and message in text(response)


def test_htmx_list_request_gets_the_fragment_and_the_summary_out_of_band(signed_in, app):
    with app.app_context():
        make.company("100", "Alpha")
    response = signed_in.get("/?q=alp", headers={**HX, "HX-Target": "companies-list"})
    html = text(response)
    assert html.lstrip().startswith('<section id="companies-list"')
    assert '<p id="companies-summary" class="summary" hx-swap-oob="true">' in html
    assert "<html" not in html and rows(html) == ["Alpha"]
    # A history restore (back button, nothing cached) needs the whole page.
    restore = text(signed_in.get("/", headers={**HX, "HX-Target": "companies-list",
                                               "HX-History-Restore-Request": "true"}))
    assert "<html" in restore


# --- company page ------------------------------------------------------------------------------

def test_unknown_company_is_a_404(signed_in):
    response = signed_in.get("/companies/nope")
    assert response.status_code == 404 and "No company with realm" in text(response)


def test_company_page_connected_and_healthy(signed_in, app):
    now = utcnow()
    with app.app_context():
        make.company("100", "Alpha", last_webhook_at=now - timedelta(minutes=10))
        make.healthy("100")
        make.records("100", customers=5, invoices=7)
        make.run("100", RunKind.BACKFILL, RunStatus.SUCCEEDED, trigger="connect", started_at=now - timedelta(hours=1),
                 finished_at=now - timedelta(hours=1) + timedelta(seconds=95), records_written=12, pages=3)
    html = text(signed_in.get("/companies/100"))
    assert "<h1>Alpha</h1>" in html and "Realm 100" in html
    assert html.count("Synced</span>") == 2 and html.count("Off</span>") == 26
    assert "Resync now" in html and "Full resync…" in html and "Disconnect…" in html
    assert "Retry" not in html and "every 2s" not in html
    # Connection details, never the tokens themselves.
    assert "Access token expires" in html and "in 50 min" in html and "10 min ago" in html
    # The run history.
    assert "Backfill" in html and "Succeeded" in html and "took 1 min 35 s" in html
    assert re.search(r'class="num">12</td>\s*<td class="num">3</td>', html)


def test_company_page_never_shows_tokens(signed_in, app):
    with app.app_context():
        make.company("100", "Alpha", access_token="gAAAA-ciphertext-access", refresh_token="gAAAA-ciphertext-refresh")
    html = text(signed_in.get("/companies/100"))
    assert "ciphertext" not in html


def test_company_page_backfill_running_shows_progress_and_polls(signed_in, app):
    now = utcnow()
    with app.app_context():
        make.company("100", "Alpha")
        make.sync_state("100", "customer", SyncStatus.IN_PROGRESS, records_total=1000, records_synced=250,
                        initial_attempt_time=now - timedelta(minutes=1), last_attempt_time=now)
        make.run("100", RunKind.BACKFILL, RunStatus.RUNNING, started_at=now - timedelta(minutes=1))
    html = text(signed_in.get("/companies/100"))
    assert '<progress value="250" max="1000"' in html
    assert "250 of 1,000 records (25%)" in html
    assert "about 3 min" in html  # 250/min, 750 left
    assert "Running 25%" in html and "Waiting for customers</span>" in html
    assert 'hx-get="/companies/100/status" hx-trigger="every 2s"' in html


def test_company_page_failed_shows_message_attempts_and_retry(signed_in, app):
    now = utcnow()
    with app.app_context():
        make.company("100", "Alpha")
        make.sync_state("100", "customer", SyncStatus.SUCCEEDED, last_successful_sync_time=now)
        make.sync_state("100", "invoice", SyncStatus.FAILED, error_message="Intuit answered 503 three times",
                        error_kind="server_error", attempts=4, last_failed_at=now - timedelta(minutes=2))
        make.run("100", status=RunStatus.FAILED, error_message="Intuit answered 503 three times")
    html = text(signed_in.get("/companies/100"))
    assert "Failed (server error):</strong> Intuit answered 503 three times" in html
    assert "4 attempts, last failed" in html and "2 min ago" in html
    assert 'name="object_type" value="invoice"' in html and "Retry invoices" in html
    assert "Retry customers" not in html and "every 2s" not in html


def test_company_page_reconnect_required(signed_in, app):
    with app.app_context():
        make.company("100", "Alpha", ConnectionState.RECONNECT_REQUIRED,
                     connection_error="The refresh token was rejected (invalid_grant).")
    html = text(signed_in.get("/companies/100"))
    assert "syncing has stopped" in html and "(invalid_grant)" in html
    assert "Sync status: Reconnect required." in html  # the live summary
    assert 'href="/v1/oauth/reconnect?realm=100">Reconnect QuickBooks</a>' in html
    assert "Resync now" not in html and "Next scheduled sync" not in html


def test_company_page_disconnected(signed_in, app):
    with app.app_context():
        make.company("100", "Alpha", ConnectionState.DISCONNECTED, disconnected_at=utcnow())
        make.healthy("100")
    html = text(signed_in.get("/companies/100"))
    assert "This company is disconnected" in html and "synced data is kept" in html
    assert "Resync now" not in html and "Disconnect…" not in html


def test_status_fragment_for_polls(signed_in, app):
    with app.app_context():
        make.company("100", "Alpha")
        make.run("100", status=RunStatus.RUNNING)
    html = text(signed_in.get("/companies/100/status", headers={**HX, "HX-Target": "company-status"}))
    assert html.lstrip().startswith('<section id="company-status"') and "<html" not in html
    assert '<section id="company-runs" class="card runs" aria-labelledby="runs-title" hx-swap-oob="true">' in html
    assert 'id="company-details"' in html and 'id="flashes"' not in html
    # Without htmx the fragment URL leads to the page.
    assert signed_in.get("/companies/100/status").headers["Location"] == "/companies/100"


def test_pages_load_htmx_and_our_script_without_inline_code(signed_in):
    response = signed_in.get("/")
    html = text(response)
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "script-src 'self'" in csp
    assert "/static/js/htmx-2.0.11.min.js" in html and "/static/js/app.js" in html
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None  # no inline script
    assert " style=" not in html and "<style" not in html
    assert "onclick" not in html


def test_pages_list_companies_needing_attention_first_then_by_name_across_page_boundaries(signed_in, app):
    """Each page reads both groups only as far as it reaches: the order must still be global."""
    names = ["alpha", "Bravo", None, "charlie", "ALPHA", "delta", "Echo", "echo", "foxtrot", "Golf"]
    expected = []
    with app.app_context():
        for i in range(130):
            realm, name = f"{500 + i}", names[i % len(names)]
            name = f"{name} {i % 13:02d}" if name else None
            state = ConnectionState.RECONNECT_REQUIRED if i % 11 == 0 else ConnectionState.CONNECTED
            make.company(realm, name, state)
            failing = i % 4 == 0
            make.sync_state(realm, "invoice", SyncStatus.FAILED if failing else SyncStatus.SUCCEEDED,
                            error_message="boom" if failing else None)
            attention = failing or state is ConnectionState.RECONNECT_REQUIRED
            expected.append((0 if attention else 1, (name or "").lower(), realm, name or f"Company {realm}"))
    listed = [name for n in (1, 2, 3) for name in rows(text(signed_in.get(f"/?page={n}")))]
    assert listed == [display for *_, display in sorted(expected)]


@pytest.mark.parametrize("query, expected", [
    ("q=alp", ["Alpha", "Alpine", "Alps"]),  # all three need attention
    ("q=alp&state=failing", ["Alpha", "Alps"]),
    ("q=alp&state=connected", ["Alpha"]),
    ("q=alp&state=disconnected", ["Alps"]),
    ("state=failing", ["Alpha", "Alps"]),
    ("state=connected", ["Alpha", "Beta"]),
])
def test_counts_match_what_each_filter_lists(signed_in, app, query, expected):
    with app.app_context():
        make.company("1", "Alpha")
        make.sync_state("1", "invoice", SyncStatus.FAILED, error_message="x")
        make.sync_state("1", "customer", SyncStatus.FAILED, error_message="y")  # still one failing company
        make.company("2", "Alpine", ConnectionState.RECONNECT_REQUIRED)
        make.company("3", "Beta")
        make.company("4", "Alps", ConnectionState.DISCONNECTED)
        make.sync_state("4", "customer", SyncStatus.FAILED, error_message="z")
    html = text(signed_in.get(f"/?{query}"))
    assert rows(html) == expected
    assert f"Showing 1–{len(expected)} of {len(expected)}" in html
    assert "4 companies" in html and "2 with a failed sync" in html


def _cells(html: str, pattern: str) -> dict[str, str]:
    found = re.findall(r'<a href="/companies/[^"]+">([^<]+)</a>' + pattern, html, re.S)
    return {name: " ".join(re.sub(r"<[^>]+>", " ", cell).split()) for name, cell in found}


def status_cells(html: str) -> dict[str, str]:
    """Company name -> the text of its "Sync status" cell's badges."""
    return _cells(html, r'.*?<ul class="badges">(.*?)</ul>')


def record_cells(html: str) -> dict[str, str]:
    """Company name -> the text of its "Records" cell."""
    return _cells(html, r'.*?<td class="num">([^<]*)</td>')


def next_sync_cells(html: str) -> dict[str, str]:
    """Company name -> the text of its "Next sync" cell (the one before the records)."""
    found = re.findall(r'<a href="/companies/[^"]+">([^<]+)</a>.*?<td>([^\n]*)</td>\s*<td class="num">', html, re.S)
    return {name: re.sub(r"<[^>]+>", "", cell) for name, cell in found}


def test_next_sync_is_expected_before_the_schedulers_first_tick(signed_in, app):
    now = utcnow()
    with app.app_context():
        make.company("100", "Alpha", next_sync_at=None)  # the scheduler has not ticked yet
        make.healthy("100", at=now - timedelta(minutes=2))
        make.company("200", "Bravo", next_sync_at=None)
        make.healthy("200", at=now - timedelta(minutes=9))
        make.company("300", "Charlie", next_sync_at=None)
        make.sync_state("300", "customer", SyncStatus.IN_PROGRESS, records_total=10, records_synced=5)
        make.run("300", RunKind.BACKFILL, RunStatus.RUNNING, started_at=now)
        make.company("400", "Delta", ConnectionState.RECONNECT_REQUIRED, next_sync_at=None)
        make.healthy("400")
    assert next_sync_cells(text(signed_in.get("/"))) == {
        "Alpha": "in 3 min", "Bravo": "Due now", "Charlie": "After the backfill", "Delta": ""}
    assert re.search(r"<dt>Next scheduled sync</dt><dd><time [^>]*>in 3 min</time></dd>",
                     text(signed_in.get("/companies/100")))
    assert "<dt>Next scheduled sync</dt><dd>After the backfill</dd>" in text(signed_in.get("/companies/300"))
    assert "Next scheduled sync" not in text(signed_in.get("/companies/400"))
