"""Generate deterministic, realistic companies, customers and invoices."""
from __future__ import annotations

import random
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from .clock import format_seconds, tz_for
from .store import Company, Record

COMPANY_NAMES = [
    "Craig's Design and Landscaping Services", "Sonnenschein Family Store", "Zoë O'Brien Consulting",
    "Bergström & Søn Bakery", "Café Olé Catering", "Mack's Garage & Tyres", "Ümlaut Design GmbH",
    "Kookies by Kathy", "Dukes Basketball Camp", "Rondonuwu Fruit and Vegi",
]
# Fixed offsets per company; real companies follow DST, which only shifts the offset text.
OFFSETS = [-480, -300, -420, -360, 60, 600, -240, 330]
FIRST = ["Zoë", "José", "Amélie", "Seán", "Siobhán", "Łukasz", "Renée", "François", "Björn", "Chloé", "Mia",
         "Noah", "Liam", "Olivia", "Mateo", "Søren", "Anaïs", "Raúl", "Inés", "Grace", "Kenji", "Priya",
         "Amy", "Bill", "Dylan", "Geeta", "Jean-Luc", "Dana", "Müge", "Nuño"]
LAST = ["O'Brien", "D'Angelo", "Müller", "García", "Nguyen", "Smith", "O'Neill", "Johansson", "Dubois",
        "Kowalski", "Rossi", "Søndergaard", "Fernández", "MacDonald", "Schäfer", "Okafor", "Tanaka",
        "Ní Bhriain", "Brontë", "Lefèvre", "Cohen", "Ødegaard", "Novák", "Yılmaz"]
BUSINESS = ["", "", "", "Bird Sanctuary", "Bakery", "Landscaping", "Plumbing & Heating", "Café", "Design Studio",
            "Family Store", "Auto Repair", "Consulting"]
STREETS = ["Main St", "Rue de la Paix", "Königstraße", "Ocean View Road", "Elm Avenue", "Calle Mayor",
           "O'Connell Street", "Hauptstraße", "Park Lane", "Sunset Blvd"]
CITIES = [("Bayshore", "CA", "94326", "USA"), ("Middlefield", "CA", "94482", "USA"),
          ("Montréal", "QC", "H2X 1Y4", "Canada"), ("München", "BY", "80331", "Germany"),
          ("Dublin", "D", "D02 X285", "Ireland"), ("Austin", "TX", "78701", "USA"),
          ("São Paulo", "SP", "01310-100", "Brazil"), ("Portland", "OR", "97201", "USA")]
CURRENCIES = [("USD", "United States Dollar")] * 6 + [("CAD", "Canadian Dollar"), ("EUR", "Euro"),
                                                     ("GBP", "British Pound Sterling")]
ITEMS = [("1", "Services", 75.0), ("3", "Concrete", 15.0), ("5", "Gardening", 35.0), ("7", "Installation", 50.0),
         ("11", "Pump", 12.75), ("13", "Rock Fountain", 275.0), ("17", "Sprinkler Heads", 2.0),
         ("19", "Design", 125.0), ("21", "Pest Control", 35.0)]
DAY = 86400


def realm_id(rng: random.Random) -> str:
    """Return a 16-digit numeric realm id like Intuit's sandbox companies."""
    return "9341" + "".join(str(rng.randrange(10)) for _ in range(12))


def _address(rng: random.Random, addr_id: int) -> dict[str, Any]:
    city, region, postal, country = rng.choice(CITIES)
    return {"Id": str(addr_id), "Line1": f"{rng.randrange(1, 9999)} {rng.choice(STREETS)}", "City": city,
            "CountrySubDivisionCode": region, "PostalCode": postal, "Country": country}


def customer_data(rec_id: int, fields: dict[str, Any], company: Company) -> dict[str, Any]:
    """Build Intuit's Customer JSON from our field values."""
    data: dict[str, Any] = {"domain": "QBO", "sparse": False, "Id": str(rec_id)}
    data.update(fields)
    data.setdefault("Active", True)
    data.setdefault("Job", False)
    data.setdefault("BillWithParent", False)
    data.setdefault("Taxable", False)
    data.setdefault("Balance", 0)
    data.setdefault("BalanceWithJobs", data["Balance"])
    data.setdefault("CurrencyRef", {"value": company.currency, "name": "United States Dollar"})
    data.setdefault("PreferredDeliveryMethod", "Print")
    if "DisplayName" in data:
        data.setdefault("FullyQualifiedName", data["DisplayName"])
        data.setdefault("PrintOnCheckName", data["DisplayName"])
    return data


def invoice_lines(lines: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    """Number item lines, add the computed subtotal line, return (lines, total)."""
    out, total = [], 0.0
    for n, line in enumerate(lines, start=1):
        line = dict(line)
        line.setdefault("DetailType", "SalesItemLineDetail")
        if "Amount" not in line:
            detail = line.get("SalesItemLineDetail", {})
            line["Amount"] = round(detail.get("Qty", 1) * detail.get("UnitPrice", 0), 2)
        line["Id"], line["LineNum"] = str(n), n
        total += line["Amount"]
        out.append(line)
    total = round(total, 2)
    # Intuit's computed subtotal line carries no Id/LineNum.
    out.append({"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    return out, total


def generate(
    rng: random.Random,
    anchor: float,
    companies: int = 2,
    customers: int = 50,
    invoices: int = 100,
    tie_size: int = 300,
    giant_tie: bool = False,
) -> list[Company]:
    """Build companies deterministically from the seeded rng and the anchor time.

    The anchor (normally "today" on the simulated clock) makes all timestamps
    relative; tie_size records per entity share one CreateTime and LastUpdatedTime,
    and giant_tie raises that to 1,100 so a tie spans more than one 1,000-row page.
    """
    result = []
    used_realms: set[str] = set()
    for c in range(companies):
        rid = realm_id(rng)
        while rid in used_realms:
            rid = realm_id(rng)
        used_realms.add(rid)
        company = Company(rid, COMPANY_NAMES[c % len(COMPANY_NAMES)] + (f" #{c // len(COMPANY_NAMES) + 1}" if c >= len(COMPANY_NAMES) else ""),
                          OFFSETS[c % len(OFFSETS)])
        _fill(rng, company, anchor, customers, invoices, 1100 if giant_tie else tie_size)
        result.append(company)
    return result


def _times(rng: random.Random, anchor: float, n: int, tie: int) -> list[tuple[int, int]]:
    start = int(anchor) - 4 * 365 * DAY
    out = []
    for _ in range(n):
        created = rng.randrange(start, int(anchor) - 35 * DAY)
        r = rng.random()
        if r < 0.5:
            updated = created
        elif r < 0.92:
            updated = rng.randrange(created, int(anchor) - 31 * DAY)
        else:
            # A few recent changes so CDC over the last 30 days has something to return.
            updated = rng.randrange(int(anchor) - 25 * DAY, int(anchor) - 60)
        out.append((created, updated))
    tie = min(tie, n)
    if tie > 1:
        shared = rng.randrange(start, int(anchor) - 400 * DAY)
        for i in rng.sample(range(n), tie):
            out[i] = (shared, shared)
    return out


def _fill(rng: random.Random, company: Company, anchor: float, n_customers: int, n_invoices: int, tie: int) -> None:
    tz = company.offset_minutes
    custs: list[Record] = []
    names: set[str] = set()
    for i, (created, updated) in enumerate(_times(rng, anchor, n_customers, tie), start=1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        business = rng.choice(BUSINESS)
        display = f"{first} {last}" + (f" {business}" if business else "")
        base, k = display, 2
        while display.casefold() in names:
            display, k = f"{base} ({k})", k + 1
        names.add(display.casefold())
        cur = rng.choice(CURRENCIES)
        folded = unicodedata.normalize("NFKD", f"{first}.{last}".lower().replace("ø", "o").replace("ł", "l"))
        email_local = "".join(ch for ch in folded if ch.isascii() and (ch.isalnum() or ch == "."))
        fields: dict[str, Any] = {
            "GivenName": first, "FamilyName": last, "DisplayName": display,
            "PrimaryEmailAddr": {"Address": f"{email_local}{i}@example.com"},
            "PrimaryPhone": {"FreeFormNumber": f"({rng.randrange(200, 999)}) 555-{rng.randrange(1000, 9999)}"},
            "BillAddr": _address(rng, 2 * i), "CurrencyRef": {"value": cur[0], "name": cur[1]},
            "Active": rng.random() > 0.08,
        }
        if business:
            fields["CompanyName"] = f"{last} {business}"
        if rng.random() < 0.5:
            fields["ShipAddr"] = _address(rng, 2 * i + 1)
        sync = 0 if updated == created else rng.randrange(1, 6)
        fields["SyncToken"] = str(sync)
        fields["MetaData"] = {"CreateTime": format_seconds(created, tz), "LastUpdatedTime": format_seconds(updated, tz)}
        data = customer_data(i, fields, company)
        custs.append(Record("Customer", i, data, created, updated, data["Active"]))
    invs: list[Record] = []
    for i, (created, updated) in enumerate(_times(rng, anchor, n_invoices, tie), start=1):
        if not custs:
            break
        cust = rng.choice(custs)
        created = max(created, cust.create_time)
        updated = max(updated, created)
        lines = []
        for _ in range(rng.randrange(1, 5)):
            item_id, item_name, price = rng.choice(ITEMS)
            qty = rng.randrange(1, 20)
            lines.append({"Description": f"{item_name} — {rng.choice(['standard', 'premium', 'weekend', 'on-site'])}",
                          "DetailType": "SalesItemLineDetail",
                          "SalesItemLineDetail": {"ItemRef": {"value": item_id, "name": item_name},
                                                  "Qty": qty, "UnitPrice": price, "TaxCodeRef": {"value": "NON"}}})
        data = invoice_data(i, company, cust, lines, created, updated,
                            sync=0 if updated == created else rng.randrange(1, 4), paid=rng.random())
        invs.append(Record("Invoice", i, data, created, updated, True))
    # A customer's open balance is the sum of its invoices' balances, as in QBO.
    balances: dict[int, float] = {}
    for inv in invs:
        cid = int(inv.data["CustomerRef"]["value"])
        balances[cid] = balances.get(cid, 0.0) + inv.data["Balance"]
    for cust in custs:
        bal = round(balances.get(cust.id, 0.0), 2)
        cust.data["Balance"] = cust.data["BalanceWithJobs"] = bal
    company.tables["Customer"].bulk_load(custs)
    company.tables["Invoice"].bulk_load(invs)


def invoice_data(rec_id: int, company: Company, cust: Record, lines: list[dict[str, Any]], created: int,
                 updated: int, sync: int = 0, paid: float = 1.0, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build Intuit's Invoice JSON."""
    tz = company.offset_minutes
    out_lines, total = invoice_lines(lines)
    balance = total if paid > 0.6 else (0 if paid < 0.4 else round(total / 2, 2))
    txn = datetime.fromtimestamp(created, tz_for(tz)).date()
    data: dict[str, Any] = {
        "domain": "QBO", "sparse": False, "Id": str(rec_id), "SyncToken": str(sync),
        "MetaData": {"CreateTime": format_seconds(created, tz), "LastUpdatedTime": format_seconds(updated, tz)},
        "DocNumber": str(1000 + rec_id), "TxnDate": txn.isoformat(), "DueDate": (txn + timedelta(days=30)).isoformat(),
        "CurrencyRef": dict(cust.data.get("CurrencyRef") or {"value": "USD", "name": "United States Dollar"}),
        "CustomerRef": {"value": str(cust.id), "name": cust.data.get("DisplayName", "")},
        "Line": out_lines, "TotalAmt": total, "Balance": balance, "Deposit": 0, "LinkedTxn": [],
        "TxnTaxDetail": {"TotalTax": 0}, "PrintStatus": "NotSet", "EmailStatus": "NotSet",
        "ApplyTaxAfterDiscount": False, "AllowOnlineCreditCardPayment": False, "AllowOnlineACHPayment": False,
    }
    if "BillAddr" in cust.data:
        data["BillAddr"] = dict(cust.data["BillAddr"])
    if "PrimaryEmailAddr" in cust.data:
        data["BillEmail"] = dict(cust.data["PrimaryEmailAddr"])
    if extra:
        data.update(extra)
    return data
