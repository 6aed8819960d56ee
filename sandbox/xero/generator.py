"""Generate deterministic Xero organisations: chart of accounts, contacts, invoices and the rest.

Each organisation gets fixed settings (accounts, tax rates, tracking categories), ``contacts``
contacts (about 8 % ARCHIVED, suppliers among them), ``invoices`` invoices (70 % ACCREC, with
DRAFT, AUTHORISED, PAID, VOIDED and DELETED ones) and ``breadth`` records of each other
resource (items, credit notes, bank transactions with DELETED/VOIDED ones, manual journals),
plus one payment per PAID invoice (a few DELETED). Times span two years before ``anchor``.
"""
from __future__ import annotations

import random
import uuid
from typing import Any

from ..generator import BUSINESS, CITIES, FIRST, LAST, STREETS
from .dates import day_string, dotnet
from .store import Organisation

ORG_NAMES = ["Demo Company (NZ)", "Kiwi Kayaks Ltd", "Ōtautahi Bicycle Co", "Bondi Surf Supplies Pty",
             "Maple & Moose Trading", "Highland Tweed Ltd", "Café Aroha", "Wānaka Wool Works"]
ACCOUNTS = [("090", "Business Bank Account", "BANK", "ASSET"), ("200", "Sales", "REVENUE", "REVENUE"),
            ("260", "Other Revenue", "REVENUE", "REVENUE"), ("310", "Cost of Goods Sold", "DIRECTCOSTS", "EXPENSE"),
            ("400", "Advertising", "EXPENSE", "EXPENSE"), ("429", "General Expenses", "EXPENSE", "EXPENSE"),
            ("610", "Accounts Receivable", "CURRENT", "ASSET"), ("800", "Accounts Payable", "CURRLIAB", "LIABILITY"),
            ("820", "GST", "CURRLIAB", "LIABILITY"), ("970", "Owner A Funds Introduced", "EQUITY", "EQUITY"),
            ("477", "Wages and Salaries", "EXPENSE", "EXPENSE"), ("499", "Old Expenses", "EXPENSE", "EXPENSE")]
TAX_RATES = [("OUTPUT2", "15% GST on Income", 15.0, "OUTPUT", "ACTIVE"),
             ("INPUT2", "15% GST on Expenses", 15.0, "INPUT", "ACTIVE"),
             ("NONE", "No GST", 0.0, "NONE", "ACTIVE"), ("ZERORATED", "Zero Rated", 0.0, "OUTPUT", "ACTIVE"),
             ("TAX001", "Old Rate 12.5%", 12.5, "OUTPUT", "DELETED")]
PRODUCTS = [("BOOK", "Fiction book", 19.95), ("DESK", "Standing desk", 649.0), ("CHAIR", "Office chair", 289.5),
            ("SVC", "Consulting hour", 150.0), ("GIFT", "Gift card", 50.0), ("MUG", "Coffee mug", 12.0),
            ("PEN", "Fountain pen", 39.0), ("LAMP", "Desk lamp", 74.9)]
DAY_MS = 86400_000
SPAN_MS = 730 * DAY_MS


def new_id(rng: random.Random) -> str:
    """Return a GUID drawn from the generator's stream (deterministic by seed)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class _Times:
    """Hand out created/updated ms in the two years before the anchor."""

    def __init__(self, rng: random.Random, anchor_ms: int) -> None:
        self.rng, self.anchor = rng, anchor_ms

    def pair(self) -> tuple[int, int]:
        created = self.anchor - self.rng.randrange(DAY_MS, SPAN_MS)
        updated = min(created + self.rng.randrange(0, 40 * DAY_MS), self.anchor - self.rng.randrange(1, DAY_MS))
        return created, max(updated, created)


def generate(rng: random.Random, anchor: float, organisations: int, contacts: int, invoices: int,
             breadth: int) -> list[Organisation]:
    """Return freshly generated organisations."""
    anchor_ms = int(anchor * 1000)
    out = []
    for n in range(organisations):
        name = ORG_NAMES[n % len(ORG_NAMES)] + (f" {n // len(ORG_NAMES) + 1}" if n >= len(ORG_NAMES) else "")
        org = Organisation(new_id(rng), name, anchor - 800 * 86400)
        _fill(org, rng, _Times(rng, anchor_ms), contacts, invoices, breadth)
        out.append(org)
    return out


def _fill(org: Organisation, rng: random.Random, times: _Times, contacts: int, invoices: int, breadth: int) -> None:
    accounts = _settings(org, rng, times)
    bank = accounts["090"]
    people = [_contact(org, rng, times, i) for i in range(contacts)]
    items = [_item(org, rng, times, i) for i in range(breadth)]
    for i in range(invoices):
        _invoice(org, rng, times, i, people, items, bank)
    for i in range(breadth):
        _credit_note(org, rng, times, i, people)
        _bank_transaction(org, rng, times, people, bank)
        _manual_journal(org, rng, times)


def _settings(org: Organisation, rng: random.Random, times: _Times) -> dict[str, dict[str, Any]]:
    by_code = {}
    for code, name, typ, cls in ACCOUNTS:
        created, updated = times.pair()
        data = {"AccountID": new_id(rng), "Code": code, "Name": name, "Type": typ, "Class": cls,
                "Status": "ARCHIVED" if code == "499" else "ACTIVE", "TaxType": "NONE",
                "EnablePaymentsToAccount": False, "BankAccountType": "BANK" if typ == "BANK" else "",
                "CurrencyCode": "NZD" if typ == "BANK" else None, "UpdatedDateUTC": dotnet(updated)}
        org.put("Accounts", data["AccountID"], data, updated)
        by_code[code] = data
    for tax_type, name, rate, report, status in TAX_RATES:
        data = {"Name": name, "TaxType": tax_type, "ReportTaxType": report, "Status": status,
                "CanApplyToAssets": True, "CanApplyToEquity": True, "CanApplyToExpenses": report != "OUTPUT",
                "CanApplyToLiabilities": True, "CanApplyToRevenue": report != "INPUT",
                "DisplayTaxRate": rate, "EffectiveRate": rate,
                "TaxComponents": [{"Name": "GST", "Rate": rate, "IsCompound": False, "IsNonRecoverable": False}]}
        org.put("TaxRates", tax_type, data, 0)
    for name, status, options in (("Region", "ACTIVE", ("North", "South", "East")),
                                  ("Project", "ARCHIVED", ("Alpha", "Beta"))):
        data = {"TrackingCategoryID": new_id(rng), "Name": name, "Status": status,
                "Options": [{"TrackingOptionID": new_id(rng), "Name": o, "Status": "ACTIVE",
                             "HasValidationErrors": False, "IsDeleted": False, "IsArchived": False, "IsActive": True}
                            for o in options]}
        org.put("TrackingCategories", data["TrackingCategoryID"], data, 0)
    return by_code


def _contact(org: Organisation, rng: random.Random, times: _Times, i: int) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    business = rng.choice(BUSINESS)
    name = f"{first} {last}" + (f" {business}" if business else "") + f" #{i + 1}"
    city, region, postal, country = rng.choice(CITIES)
    created, updated = times.pair()
    supplier = rng.random() < 0.3
    data = {"ContactID": new_id(rng), "ContactNumber": f"C{i + 1:05d}",
            "ContactStatus": "ARCHIVED" if rng.random() < 0.08 else "ACTIVE", "Name": name,
            "FirstName": first, "LastName": last,
            "EmailAddress": f"{first.lower()}.{i}@example.com".replace("'", "").replace(" ", ""),
            "Addresses": [{"AddressType": "POBOX", "AddressLine1": f"{rng.randrange(1, 999)} {rng.choice(STREETS)}",
                           "City": city, "Region": region, "PostalCode": postal, "Country": country},
                          {"AddressType": "STREET"}],
            "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": f"{rng.randrange(1000000, 9999999)}",
                        "PhoneAreaCode": "09", "PhoneCountryCode": "64"}],
            "UpdatedDateUTC": dotnet(updated), "ContactGroups": [], "IsSupplier": supplier,
            "IsCustomer": not supplier or rng.random() < 0.3, "DefaultCurrency": "NZD", "HasAttachments": False}
    org.put("Contacts", data["ContactID"], data, updated)
    return data


def _item(org: Organisation, rng: random.Random, times: _Times, i: int) -> dict[str, Any]:
    code, name, price = PRODUCTS[i % len(PRODUCTS)]
    code = f"{code}-{i + 1}"
    created, updated = times.pair()
    data = {"ItemID": new_id(rng), "Code": code, "Name": f"{name} {i + 1}", "Description": name,
            "PurchaseDescription": name, "IsSold": True, "IsPurchased": rng.random() < 0.6,
            "IsTrackedAsInventory": False,
            "SalesDetails": {"UnitPrice": price, "AccountCode": "200", "TaxType": "OUTPUT2"},
            "PurchaseDetails": {"UnitPrice": round(price * 0.6, 2), "AccountCode": "310", "TaxType": "INPUT2"},
            "UpdatedDateUTC": dotnet(updated)}
    org.put("Items", data["ItemID"], data, updated)
    return data


def _lines(rng: random.Random, items: list[dict[str, Any]], account: str, tax: str) -> tuple[list, float, float]:
    lines, sub = [], 0.0
    for _ in range(rng.randint(1, 3)):
        item = rng.choice(items) if items else None
        qty = float(rng.randint(1, 5))
        unit = item["SalesDetails"]["UnitPrice"] if item else float(rng.randrange(10, 500))
        amount = round(qty * unit, 2)
        line = {"LineItemID": new_id(rng), "Description": item["Name"] if item else "Services", "Quantity": qty,
                "UnitAmount": unit, "AccountCode": account, "TaxType": tax, "TaxAmount": round(amount * 0.15, 2),
                "LineAmount": amount, "Tracking": []}
        if item:
            line["ItemCode"] = item["Code"]
        lines.append(line)
        sub += amount
    sub = round(sub, 2)
    return lines, sub, round(sub * 0.15, 2)


def _dated(data: dict[str, Any], date_ms: int, due_ms: int | None = None) -> None:
    data["Date"], data["DateString"] = dotnet(date_ms), day_string(date_ms)
    if due_ms is not None:
        data["DueDate"], data["DueDateString"] = dotnet(due_ms), day_string(due_ms)


def _invoice(org: Organisation, rng: random.Random, times: _Times, i: int, people: list[dict[str, Any]],
             items: list[dict[str, Any]], bank: dict[str, Any]) -> None:
    sales = rng.random() < 0.7
    contact = rng.choice(people) if people else {"ContactID": new_id(rng), "Name": "Cash sale"}
    created, updated = times.pair()
    date_ms = created // DAY_MS * DAY_MS
    status = rng.choices(["AUTHORISED", "PAID", "DRAFT", "VOIDED", "DELETED"], [50, 25, 10, 8, 7])[0]
    lines, sub, tax = _lines(rng, items, "200" if sales else "429", "OUTPUT2" if sales else "INPUT2")
    total = round(sub + tax, 2)
    paid = total if status == "PAID" else 0.0
    data = {"Type": "ACCREC" if sales else "ACCPAY", "InvoiceID": new_id(rng),
            "InvoiceNumber": f"INV-{i + 1:05d}" if sales else f"BILL-{i + 1:05d}",
            "Reference": f"Ref {rng.randrange(1000, 9999)}",
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "Status": status, "LineAmountTypes": "Exclusive", "LineItems": lines, "SubTotal": sub, "TotalTax": tax,
            "Total": total, "AmountDue": 0.0 if status in ("PAID", "VOIDED", "DELETED") else total,
            "AmountPaid": paid, "AmountCredited": 0.0, "CurrencyCode": "NZD", "CurrencyRate": 1.0,
            "SentToContact": rng.random() < 0.5, "HasAttachments": False, "UpdatedDateUTC": dotnet(updated)}
    _dated(data, date_ms, date_ms + 30 * DAY_MS)
    org.put("Invoices", data["InvoiceID"], data, updated)
    if status == "PAID":
        _payment(org, rng, times, data, bank, updated)


def _payment(org: Organisation, rng: random.Random, times: _Times, invoice: dict[str, Any], bank: dict[str, Any],
             after_ms: int) -> None:
    updated = min(after_ms + rng.randrange(0, DAY_MS), times.anchor - 1)
    data = {"PaymentID": new_id(rng), "Date": invoice["Date"], "Amount": invoice["Total"],
            "Reference": invoice["Reference"], "Status": "DELETED" if rng.random() < 0.06 else "AUTHORISED",
            "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
            "IsReconciled": rng.random() < 0.5, "CurrencyRate": 1.0,
            "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"],
                        "Type": invoice["Type"]},
            "Account": {"AccountID": bank["AccountID"], "Code": bank["Code"]}, "UpdatedDateUTC": dotnet(updated)}
    org.put("Payments", data["PaymentID"], data, updated)


def _credit_note(org: Organisation, rng: random.Random, times: _Times, i: int, people: list[dict[str, Any]]) -> None:
    sales = rng.random() < 0.7
    contact = rng.choice(people) if people else {"ContactID": new_id(rng), "Name": "Cash sale"}
    created, updated = times.pair()
    lines, sub, tax = _lines(rng, [], "200" if sales else "429", "OUTPUT2" if sales else "INPUT2")
    status = rng.choices(["AUTHORISED", "PAID", "DRAFT", "VOIDED", "DELETED"], [50, 20, 10, 10, 10])[0]
    total = round(sub + tax, 2)
    data = {"Type": "ACCRECCREDIT" if sales else "ACCPAYCREDIT", "CreditNoteID": new_id(rng),
            "CreditNoteNumber": f"CN-{i + 1:05d}", "Reference": "", "Status": status,
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "LineAmountTypes": "Exclusive", "LineItems": lines, "SubTotal": sub, "TotalTax": tax, "Total": total,
            "RemainingCredit": total if status == "AUTHORISED" else 0.0, "CurrencyCode": "NZD",
            "UpdatedDateUTC": dotnet(updated)}
    _dated(data, created // DAY_MS * DAY_MS)
    org.put("CreditNotes", data["CreditNoteID"], data, updated)


def _bank_transaction(org: Organisation, rng: random.Random, times: _Times, people: list[dict[str, Any]],
                      bank: dict[str, Any]) -> None:
    receive = rng.random() < 0.5
    contact = rng.choice(people) if people else {"ContactID": new_id(rng), "Name": "Bank"}
    created, updated = times.pair()
    lines, sub, tax = _lines(rng, [], "200" if receive else "429", "OUTPUT2" if receive else "INPUT2")
    data = {"BankTransactionID": new_id(rng), "Type": "RECEIVE" if receive else "SPEND",
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "BankAccount": {"AccountID": bank["AccountID"], "Code": bank["Code"], "Name": bank["Name"]},
            "Status": rng.choices(["AUTHORISED", "DELETED", "VOIDED"], [85, 10, 5])[0],
            "IsReconciled": rng.random() < 0.5, "LineAmountTypes": "Exclusive", "LineItems": lines,
            "SubTotal": sub, "TotalTax": tax, "Total": round(sub + tax, 2), "CurrencyCode": "NZD",
            "Reference": "", "UpdatedDateUTC": dotnet(updated)}
    _dated(data, created // DAY_MS * DAY_MS)
    org.put("BankTransactions", data["BankTransactionID"], data, updated)


def _manual_journal(org: Organisation, rng: random.Random, times: _Times) -> None:
    created, updated = times.pair()
    amount = float(rng.randrange(100, 5000))
    data = {"ManualJournalID": new_id(rng), "Narration": rng.choice(["Accrual", "Depreciation", "Correction"]),
            "Status": rng.choices(["POSTED", "DRAFT", "DELETED", "VOIDED", "ARCHIVED"], [70, 10, 8, 7, 5])[0],
            "LineAmountTypes": "NoTax", "ShowOnCashBasisReports": True, "HasAttachments": False,
            "JournalLines": [{"LineAmount": amount, "AccountCode": "429", "Description": "Debit", "TaxType": "NONE"},
                             {"LineAmount": -amount, "AccountCode": "090", "Description": "Credit",
                              "TaxType": "NONE"}],
            "UpdatedDateUTC": dotnet(updated)}
    _dated(data, created // DAY_MS * DAY_MS)
    org.put("ManualJournals", data["ManualJournalID"], data, updated)
