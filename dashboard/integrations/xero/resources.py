"""The Accounting API resources the sync reads, with how each can be listed.

From Xero's endpoint matrix (shared/reference/xero-api.md §2.3): only some resources page,
and some ignore If-Modified-Since, so they are re-read whole.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    name: str          # the path segment and the envelope's collection key
    id_field: str
    paged: bool        # accepts page/pageSize (and gives line items only when paged)
    modified_since: bool  # honours If-Modified-Since
    archived_param: bool = False  # lists ARCHIVED records only with includeArchived=true


RESOURCES: dict[str, Resource] = {r.name: r for r in (
    Resource("Contacts", "ContactID", paged=True, modified_since=True, archived_param=True),
    Resource("Invoices", "InvoiceID", paged=True, modified_since=True),
    Resource("CreditNotes", "CreditNoteID", paged=True, modified_since=True),
    Resource("Payments", "PaymentID", paged=True, modified_since=True),
    Resource("BankTransactions", "BankTransactionID", paged=True, modified_since=True),
    Resource("ManualJournals", "ManualJournalID", paged=True, modified_since=True),
    Resource("Items", "ItemID", paged=False, modified_since=True),
    Resource("Accounts", "AccountID", paged=False, modified_since=True),
    Resource("TaxRates", "TaxType", paged=False, modified_since=False),
    Resource("TrackingCategories", "TrackingCategoryID", paged=False, modified_since=False, archived_param=True),
)}


def resource(name: str) -> Resource:
    """Return the resource called ``name`` or raise KeyError naming it."""
    try:
        return RESOURCES[name]
    except KeyError:
        raise KeyError(f"Xero resource {name!r} is not one the sync reads") from None
