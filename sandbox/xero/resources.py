"""Describe the Accounting API resources the simulator serves (the only list of them)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One collection under /api.xro/2.0 and how Xero lists it."""

    name: str  # collection and JSON key, e.g. "Invoices"
    singular: str  # XML element of one record
    id_field: str
    scopes: tuple[str, ...]  # scope families granting it; each also has a ".read" variant for GETs
    paged: bool = False
    ims: bool = True  # honours If-Modified-Since
    status_field: str | None = "Status"
    lines_key: str | None = None  # only on paged lists and single GETs
    hidden_unless_archived: str | None = None  # status left out unless includeArchived=true
    number_field: str | None = None  # single GET also by this field (InvoiceNumber)
    hard_delete: bool = False  # DELETE removes the record: no tombstone
    webhook_category: str | None = None  # CONTACT / INVOICE / CREDITNOTE
    has_updated: bool = True  # carries UpdatedDateUTC


_TX = "accounting.transactions"  # the broad scope, retiring
RESOURCES: tuple[Resource, ...] = (
    Resource("Contacts", "Contact", "ContactID", ("accounting.contacts",), paged=True, status_field="ContactStatus",
             hidden_unless_archived="ARCHIVED", webhook_category="CONTACT"),
    Resource("Invoices", "Invoice", "InvoiceID", ("accounting.invoices", _TX), paged=True, lines_key="LineItems",
             number_field="InvoiceNumber", webhook_category="INVOICE"),
    Resource("CreditNotes", "CreditNote", "CreditNoteID", ("accounting.invoices", _TX), paged=True,
             lines_key="LineItems", number_field="CreditNoteNumber", webhook_category="CREDITNOTE"),
    Resource("Payments", "Payment", "PaymentID", ("accounting.payments", _TX), paged=True),
    Resource("Items", "Item", "ItemID", ("accounting.settings", "accounting.invoices", _TX), status_field=None,
             hard_delete=True),
    Resource("Accounts", "Account", "AccountID", ("accounting.settings",)),
    Resource("BankTransactions", "BankTransaction", "BankTransactionID", ("accounting.banktransactions", _TX),
             paged=True, lines_key="LineItems"),
    Resource("ManualJournals", "ManualJournal", "ManualJournalID", ("accounting.manualjournals", _TX), paged=True,
             lines_key="JournalLines"),
    Resource("TaxRates", "TaxRate", "TaxType", ("accounting.settings",), ims=False, has_updated=False),
    Resource("TrackingCategories", "TrackingCategory", "TrackingCategoryID", ("accounting.settings",), ims=False,
             hidden_unless_archived="ARCHIVED", has_updated=False),
)
BY_NAME = {r.name.lower(): r for r in RESOURCES}

# Scopes the authorize endpoint knows; anything else is an error page.
IDENTITY_SCOPES = ("openid", "profile", "email", "offline_access")
BROAD_SCOPES = ("accounting.transactions", "accounting.transactions.read", "accounting.reports.read")
GRANULAR_FAMILIES = ("accounting.invoices", "accounting.payments", "accounting.banktransactions",
                     "accounting.manualjournals", "accounting.classicexpenses")
OTHER_FAMILIES = ("accounting.contacts", "accounting.settings", "accounting.attachments")
REPORT_SCOPES = tuple(f"accounting.reports.{r}.read" for r in (
    "aged", "balancesheet", "banksummary", "budgetsummary", "executivesummary", "profitandloss", "trialbalance",
    "taxreports"))
KNOWN_SCOPES = frozenset(IDENTITY_SCOPES + BROAD_SCOPES + REPORT_SCOPES
                         + ("accounting.journals.read", "accounting.budgets.read")
                         + tuple(s + v for s in GRANULAR_FAMILIES + OTHER_FAMILIES for v in ("", ".read")))


def resource(name: str) -> Resource | None:
    """Return a resource by its path segment (case-insensitive, as Xero's routing is)."""
    return BY_NAME.get(name.lower())


def allows(res: Resource, scopes: set[str], write: bool) -> bool:
    """Tell whether granted scopes cover a read (or write) of a resource."""
    return any(s in scopes or (not write and s + ".read" in scopes) for s in res.scopes)
