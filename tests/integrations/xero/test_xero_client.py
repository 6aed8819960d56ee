"""The Xero Accounting API client over real HTTP: paging, If-Modified-Since, archived,
voided/deleted, dates, limits and the fault mapping."""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from dashboard.integrations.xero.client import RequestEvent
from dashboard.integrations.xero.dates import if_modified_since, parse_date, updated_at
from dashboard.integrations.xero.faults import DayLimitReached, XeroThrottled
from dashboard.sync.errors import LedgerServerError, ReconnectRequired, TokenRejected

from .conftest import Tokens, client_for, connect, install


@pytest.fixture
def tenant_client(server, xero, settings):
    """Build (simulator, client of its first tenant, token holder) with simulator options."""
    def build(**options):
        sim = install(server, **options)
        tokens = Tokens(xero, connect(xero, sim.tenants()[:2]))
        events: list[RequestEvent] = []
        waits: list[float] = []
        client = client_for(settings, tokens, sim.tenants()[0], sleep=waits.append, observers=[events.append])
        return sim, client, tokens, events, waits
    return build


def _all_pages(client, name, **kwargs):
    pages, page = [], 1
    while True:
        got = client.get_page(name, page=page, **kwargs)
        pages.append(got)
        if got.is_last:
            return pages
        page += 1


def test_paging_reads_every_invoice_once_with_statuses_and_line_items(tenant_client) -> None:
    sim, client, _, events, _ = tenant_client()
    tenant = client.tenant_id
    pages = _all_pages(client, "Invoices", page_size=50)
    truth = sim.records(tenant, "Invoices")
    got = [r for p in pages for r in p.records]
    assert len(pages) == 5 and [len(p.records) for p in pages] == [50, 50, 50, 50, 30]
    assert (pages[0].page_count, pages[0].item_count, pages[0].page_size) == (5, 230, 50)
    assert sorted(r["InvoiceID"] for r in got) == sorted(r["InvoiceID"] for r in truth)
    # Voided and deleted invoices are listed with their status (the sync keeps them, marked).
    assert Counter(r["Status"] for r in got) == Counter(r["Status"] for r in truth)
    assert {"VOIDED", "DELETED"} <= {r["Status"] for r in got}
    # Paged calls carry line items; without ``page`` Xero sends every record without them.
    with_lines = sum(1 for r in got if r.get("LineItems"))
    assert with_lines == sum(1 for r in truth if r.get("LineItems")) > 0
    summary = client.get_page("Invoices")
    assert summary.page is None and len(summary.records) == 230 and not any(r.get("LineItems") for r in summary.records)
    # Unpaged resources come whole in one answer.
    accounts = client.get_page("Accounts", page=3)
    assert accounts.page is None and accounts.is_last and len(accounts.records) == len(sim.records(tenant, "Accounts"))
    assert [e.kind for e in events] == ["Invoices"] * 6 + ["Accounts"] and all(e.status == 200 for e in events)
    assert all(e.realm == tenant and e.day_remaining is not None and e.minute_remaining is not None for e in events)
    assert events[-1].day_remaining < events[0].day_remaining


def test_if_modified_since_at_second_precision(tenant_client) -> None:
    sim, client, _, _, _ = tenant_client()
    tenant = client.tenant_id
    newest = max(updated_at(r) for r in sim.records(tenant, "Invoices"))
    sim.advance_clock(10)
    changed = sim.records(tenant, "Invoices")[3]["InvoiceID"]
    sim.void_invoice(tenant, changed)
    stamp = updated_at(sim.get(tenant, "Invoices", changed))
    # The header is sent at second precision, rounded down: a window starting mid-second
    # still returns the record updated in that second.
    assert if_modified_since(stamp) == stamp.strftime("%Y-%m-%dT%H:%M:%S")
    got = client.get_page("Invoices", page=1, modified_since=stamp + timedelta(milliseconds=999 - stamp.microsecond // 1000))
    assert [(r["InvoiceID"], r["Status"]) for r in got.records] == [(changed, "VOIDED")]
    assert newest < stamp - timedelta(seconds=5)
    assert client.get_page("Invoices", page=1, modified_since=stamp + timedelta(seconds=1)).records == []
    # Resources that ignore If-Modified-Since (TaxRates) are read whole.
    assert len(client.get_page("TaxRates", modified_since=stamp).records) == len(sim.records(tenant, "TaxRates"))


def test_archived_contacts_only_with_include_archived(tenant_client) -> None:
    sim, client, _, _, _ = tenant_client()
    tenant = client.tenant_id
    truth = sim.records(tenant, "Contacts")
    archived = {r["ContactID"] for r in truth if r["ContactStatus"] == "ARCHIVED"}
    assert archived
    everyone = {r["ContactID"]: r["ContactStatus"] for p in _all_pages(client, "Contacts") for r in p.records}
    assert len(everyone) == len(truth) and {i for i, s in everyone.items() if s == "ARCHIVED"} == archived
    active = {r["ContactID"] for p in _all_pages(client, "Contacts", include_archived=False) for r in p.records}
    assert active == set(everyone) - archived


def test_xero_dates() -> None:
    assert parse_date("/Date(1439434356790+0000)/") == datetime(2015, 8, 13, 2, 52, 36, 790000, tzinfo=timezone.utc)
    assert parse_date("\\/Date(1439434356790+1300)\\/") == parse_date("/Date(1439434356790+0000)/")
    assert parse_date("/Date(0+0000)/") == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert parse_date("/Date(-86400000+0000)/") == datetime(1969, 12, 31, tzinfo=timezone.utc)
    assert parse_date("/Date(1584585851967)/") == datetime(2020, 3, 19, 2, 44, 11, 967000, tzinfo=timezone.utc)
    assert parse_date("2020-03-18T21:20:07.7179250") == datetime(2020, 3, 18, 21, 20, 7, 717925, tzinfo=timezone.utc)
    assert parse_date("2018-10-20T00:00:00") == datetime(2018, 10, 20, tzinfo=timezone.utc)
    assert parse_date("not a date") is None and parse_date(None) is None
    assert if_modified_since(datetime(2026, 3, 1, 13, 0, 5, 999999, tzinfo=timezone(timedelta(hours=13)))) == \
        "2026-03-01T00:00:05"
    with pytest.raises(ValueError):
        if_modified_since(datetime(2026, 3, 1))


def test_record_dates_read_from_the_wire(tenant_client) -> None:
    sim, client, _, _, _ = tenant_client()
    record = client.get_page("Invoices", page=1, page_size=1).records[0]
    truth = sim.get(client.tenant_id, "Invoices", record["InvoiceID"])
    assert updated_at(record) == updated_at(truth) and updated_at(record).microsecond % 1000 == 0
    assert parse_date(record["Date"]).strftime("%Y-%m-%dT%H:%M:%S") == record["DateString"]


def test_minute_limit_429_is_throttled_with_retry_after_and_no_retry(tenant_client) -> None:
    sim, client, _, events, waits = tenant_client(rate_limits_enabled=True, per_minute=3)
    for _ in range(3):
        client.get_page("Accounts")
    with pytest.raises(XeroThrottled) as caught:
        client.get_page("Accounts")
    assert not isinstance(caught.value, DayLimitReached)
    assert caught.value.problem == "minute" and 1 <= caught.value.retry_after <= 60
    assert client.requests_sent == 4 and waits == []  # never slept, never retried
    assert [e.minute_remaining for e in events] == [2, 1, 0, 0] and events[-1].status == 429


def test_day_limit_is_a_distinct_throttle(tenant_client) -> None:
    sim, client, _, _, _ = tenant_client(rate_limits_enabled=True, per_day=2)
    client.get_page("Accounts")
    client.get_page("Accounts")
    with pytest.raises(DayLimitReached, match="daily call limit") as caught:
        client.get_page("Accounts")
    assert caught.value.problem == "day" and caught.value.retry_after > 3600 and caught.value.retryable


def test_concurrency_held_to_five_per_tenant(tenant_client) -> None:
    sim, client, _, _, _ = tenant_client(rate_limits_enabled=True, latency=0.3)
    with ThreadPoolExecutor(8) as pool:
        pages = list(pool.map(lambda _: client.get_page("Accounts"), range(8)))
    stats = sim.stats(client.tenant_id)
    assert len(pages) == 8 and stats["peak_concurrency"] <= 5 and stats["throttled"] == 0


def test_expired_token_refreshes_once(tenant_client) -> None:
    sim, client, tokens, _, _ = tenant_client()
    sim.expire_access_tokens()
    assert client.get_page("Accounts").records and tokens.refreshes == 1
    sim.inject_fault("401", target="Accounts", count=2)
    with pytest.raises(TokenRejected):
        client.get_page("Accounts")
    assert tokens.refreshes == 2


def test_forbidden_tenant_needs_reconnecting(tenant_client, settings) -> None:
    sim, client, tokens, _, _ = tenant_client()
    stranger = client_for(settings, tokens, sim.tenants()[2])  # not in this consent
    with pytest.raises(ReconnectRequired, match="HTTP 403"):
        stranger.get_page("Contacts", page=1)
    assert stranger.requests_sent == 1


def test_one_5xx_is_retried_then_the_error_is_raised(tenant_client) -> None:
    sim, client, _, _, waits = tenant_client()
    sim.inject_fault("503", target="Invoices", count=1)
    assert client.get_page("Invoices", page=1).records and client.requests_sent == 2 and waits == [0.5]
    sim.inject_fault("503", target="Invoices", count=2)
    with pytest.raises(LedgerServerError, match="Organisation is offline") as caught:
        client.get_page("Invoices", page=1)
    assert caught.value.retryable and client.requests_sent == 4
    sim.inject_fault("500", target="Invoices", count=2)
    with pytest.raises(LedgerServerError, match="HTTP 500"):
        client.get_page("Invoices", page=1)
