"""Xero Accounting API reads: formats, paging, If-Modified-Since, archived/voided/deleted, filters."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from xero_client import XeroClient, xero, xserver  # noqa: F401 (fixtures)
from sandbox.xero.dates import ms_of

DATE = re.compile(r'"UpdatedDateUTC":"\\/Date\((\d+)\+0000\)\\/"')


@pytest.fixture
def connected(xero: XeroClient) -> XeroClient:
    xero.connect(xero.sim.tenants()[:2])
    return xero


def _ids(resp, key: str, id_field: str) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [r[id_field] for r in resp.json()[key]]


def test_json_only_when_asked_and_dotnet_dates(connected: XeroClient) -> None:
    tenant = connected.sim.tenants()[0]
    xml = connected.get("Invoices", tenant, {"page": 1}, accept_json=False)
    assert xml.status_code == 200 and xml.headers["Content-Type"].startswith("text/xml")
    assert xml.text.startswith("<Response") and "<Invoices><Invoice>" in xml.text and "<LineItem>" in xml.text
    resp = connected.get("Invoices", tenant, {"page": 1})
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.headers["Xero-Correlation-Id"] == resp.json()["Id"]
    raw = resp.text
    # Slashes escaped in the raw text; entity dates carry +0000, DateTimeUTC has no offset.
    assert len(DATE.findall(raw)) == 100
    assert re.search(r'"DateTimeUTC":"\\/Date\(\d+\)\\/"', raw)
    assert re.search(r'"DueDate":"\\/Date\(\d+\+0000\)\\/","DueDateString":"\d{4}-\d\d-\d\dT00:00:00"', raw)
    truth = {r["InvoiceID"]: ms_of(r["UpdatedDateUTC"]) for r in connected.sim.records(tenant, "Invoices")}
    for inv in resp.json()["Invoices"]:
        assert ms_of(inv["UpdatedDateUTC"]) == truth[inv["InvoiceID"]]


def test_paging_covers_every_invoice_once_with_lines_only_when_paged(connected: XeroClient) -> None:
    tenant = connected.sim.tenants()[0]
    truth = {r["InvoiceID"]: r["Status"] for r in connected.sim.records(tenant, "Invoices")}
    assert len(truth) == 230 and {"VOIDED", "DELETED", "PAID", "DRAFT", "AUTHORISED"} <= set(truth.values())
    seen, sizes, page = [], [], 1
    while True:
        body = connected.get("Invoices", tenant, {"page": page}).json()
        assert body["pagination"] == {"page": page, "pageSize": 100, "pageCount": 3, "itemCount": 230}
        if not body["Invoices"]:
            break
        assert all(inv["LineItems"] for inv in body["Invoices"])
        sizes.append(len(body["Invoices"]))
        seen += [(inv["InvoiceID"], inv["Status"]) for inv in body["Invoices"]]
        page += 1
    assert sizes == [100, 100, 30] and dict(seen) == truth and len(seen) == len(truth)
    big = connected.get("Invoices", tenant, {"page": 1, "pageSize": 5000}).json()
    assert big["pagination"]["pageSize"] == 1000 and len(big["Invoices"]) == 230
    unpaged = connected.get("Invoices", tenant).json()
    assert "pagination" not in unpaged and len(unpaged["Invoices"]) == 230
    assert not any("LineItems" in inv for inv in unpaged["Invoices"])
    one = connected.get(f"Invoices/{seen[0][0]}", tenant).json()["Invoices"][0]
    assert one["LineItems"]
    missing = connected.get("Invoices/00000000-0000-0000-0000-000000000000", tenant)
    assert missing.status_code == 404 and missing.text == "The resource you're looking for cannot be found"


def test_if_modified_since_second_precision_three_formats(connected: XeroClient) -> None:
    tenant = connected.sim.tenants()[0]
    rows = connected.sim.records(tenant, "Contacts")
    stamps = sorted(ms_of(r["UpdatedDateUTC"]) for r in rows if r["ContactStatus"] == "ACTIVE")
    cut_ms = stamps[len(stamps) // 2]
    cut = datetime.fromtimestamp(cut_ms // 1000, timezone.utc)
    want = sorted(r["ContactID"] for r in rows
                  if r["ContactStatus"] == "ACTIVE" and ms_of(r["UpdatedDateUTC"]) // 1000 >= cut_ms // 1000)
    for header in (cut.strftime("%Y-%m-%dT%H:%M:%S"), cut.astimezone().isoformat(timespec="milliseconds"),
                   format_datetime(cut, usegmt=True)):
        got = _ids(connected.get("Contacts", tenant, {"page": 1}, **{"If-Modified-Since": header}),
                   "Contacts", "ContactID")
        assert sorted(got) == want, header
    # A change that bumps UpdatedDateUTC is seen; one that Xero does not bump is not.
    connected.sim.advance_clock(5)
    after = datetime.fromtimestamp(connected.sim.now() - 1, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    bumped, silent = want[0], want[1]
    connected.sim.update(tenant, "Contacts", bumped, Name="Renamed Ltd")
    connected.sim.update(tenant, "Contacts", silent, IsSupplier=True, bump=False)
    seen = connected.get("Contacts", tenant, {"page": 1}, **{"If-Modified-Since": after}).json()["Contacts"]
    assert [(c["ContactID"], c["Name"]) for c in seen] == [(bumped, "Renamed Ltd")]
    # Settings without If-Modified-Since support answer in full.
    assert len(connected.get("TaxRates", tenant, **{"If-Modified-Since": after}).json()["TaxRates"]) == 5


def test_archived_contacts_only_with_include_archived(connected: XeroClient) -> None:
    tenant = connected.sim.tenants()[0]
    truth = connected.sim.records(tenant, "Contacts")
    archived = {r["ContactID"] for r in truth if r["ContactStatus"] == "ARCHIVED"}
    assert archived
    default = set(_ids(connected.get("Contacts", tenant, {"page": 1}), "Contacts", "ContactID"))
    assert default == {r["ContactID"] for r in truth} - archived
    everything = set(_ids(connected.get("Contacts", tenant, {"page": 1, "includeArchived": "true"}), "Contacts",
                          "ContactID"))
    assert everything == {r["ContactID"] for r in truth}
    # Archiving arrives as an update visible to an If-Modified-Since reader with includeArchived.
    connected.sim.advance_clock(3)
    since = datetime.fromtimestamp(connected.sim.now() - 1, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    target = sorted(default)[0]
    connected.sim.archive_contact(tenant, target)
    got = connected.get("Contacts", tenant, {"page": 1, "includeArchived": "true"},
                        **{"If-Modified-Since": since}).json()["Contacts"]
    assert [(c["ContactID"], c["ContactStatus"]) for c in got] == [(target, "ARCHIVED")]


def test_voided_and_deleted_stay_listed_items_vanish(connected: XeroClient) -> None:
    tenant = connected.sim.tenants()[1]
    live = [r for r in connected.sim.records(tenant, "Invoices") if r["Status"] == "AUTHORISED"]
    connected.sim.void_invoice(tenant, live[0]["InvoiceID"])
    connected.sim.delete_invoice(tenant, live[1]["InvoiceID"])
    statuses = {i["InvoiceID"]: i["Status"] for i in connected.get("Invoices", tenant).json()["Invoices"]}
    assert statuses[live[0]["InvoiceID"]] == "VOIDED" and statuses[live[1]["InvoiceID"]] == "DELETED"
    items = connected.sim.records(tenant, "Items")
    connected.sim.delete(tenant, "Items", items[0]["ItemID"])
    got = _ids(connected.get("Items", tenant), "Items", "ItemID")
    assert sorted(got) == sorted(i["ItemID"] for i in items[1:])


def test_filters_where_order_and_lists(connected: XeroClient) -> None:
    tenant = connected.sim.tenants()[0]
    truth = connected.sim.records(tenant, "Invoices")
    want = sorted(r["InvoiceID"] for r in truth if r["Status"] in ("VOIDED", "DELETED"))
    assert sorted(_ids(connected.get("Invoices", tenant, {"Statuses": "VOIDED,DELETED"}), "Invoices",
                       "InvoiceID")) == want
    where = 'Type=="ACCREC" && Status=="AUTHORISED" && AmountDue > 100'
    want = sorted(r["InvoiceID"] for r in truth
                  if r["Type"] == "ACCREC" and r["Status"] == "AUTHORISED" and r["AmountDue"] > 100)
    assert sorted(_ids(connected.get("Invoices", tenant, {"where": where}), "Invoices", "InvoiceID")) == want
    contact = truth[0]["Contact"]["ContactID"]
    by_guid = _ids(connected.get("Invoices", tenant, {"where": f'Contact.ContactID==Guid("{contact}")'}),
                   "Invoices", "InvoiceID")
    assert sorted(by_guid) == sorted(r["InvoiceID"] for r in truth if r["Contact"]["ContactID"] == contact)
    totals = [i["Total"] for i in connected.get("Invoices", tenant, {"order": "Total DESC"}).json()["Invoices"]]
    assert totals == sorted(totals, reverse=True) and len(totals) == 230
    ids = [r["InvoiceID"] for r in truth]
    assert sorted(_ids(connected.get("Invoices", tenant, {"IDs": ",".join(ids[:50])}), "Invoices",
                       "InvoiceID")) == sorted(ids[:50])
    assert connected.get("Invoices", tenant, {"IDs": ",".join(ids[:51])}).status_code == 404
    bad = connected.get("Invoices", tenant, {"where": "Total ~~ 3"})
    assert bad.status_code == 400 and bad.json()["Type"] == "ValidationException"


@pytest.mark.parametrize("resource,key", [("Contacts", "ContactID"), ("CreditNotes", "CreditNoteID"),
                                          ("Payments", "PaymentID"), ("Accounts", "AccountID"),
                                          ("BankTransactions", "BankTransactionID"),
                                          ("ManualJournals", "ManualJournalID"), ("TaxRates", "TaxType"),
                                          ("TrackingCategories", "TrackingCategoryID"), ("Items", "ItemID")])
def test_every_resource_lists_its_source(connected: XeroClient, resource: str, key: str) -> None:
    tenant = connected.sim.tenants()[0]
    params = {"includeArchived": "true"} | ({"page": 1} if resource not in ("Accounts", "TaxRates", "Items",
                                                                            "TrackingCategories") else {})
    got = _ids(connected.get(resource, tenant, params), resource, key)
    assert sorted(got) == sorted(r[key] for r in connected.sim.records(tenant, resource)) and got


def test_generation_is_deterministic_by_seed() -> None:
    from sandbox.xero import XeroSimulator
    one, two, other = (XeroSimulator(organisations=0, seed=s) for s in (11, 11, 12))
    for sim in (one, two, other):
        sim.generate(organisations=2, contacts=20, invoices=30, breadth=3, anchor=1_700_000_000)
    assert one.tenants() == two.tenants() != other.tenants()
    for name in ("Contacts", "Invoices", "Payments", "BankTransactions", "ManualJournals"):
        assert one.records(one.tenants()[1], name) == two.records(two.tenants()[1], name)
    statuses = {r["Status"] for t in one.tenants() for r in one.records(t, "Invoices")}
    assert {"VOIDED", "DELETED"} <= statuses


def test_unknown_resource_and_xml_error_free(connected: XeroClient) -> None:
    tenant = connected.sim.tenants()[0]
    assert connected.get("Widgets", tenant).status_code == 404
    xml = connected.get("Contacts", tenant, accept_json=False).text
    assert "<Addresses><Address>" in xml and "<Phones><Phone>" in xml and "/Date(" not in xml
