"""Generate records of every entity with valid references ("breadth" data).

The classic generator (``generator.py``) makes Customers and Invoices; this module adds
the other 26 entities of ``entities.ENTITIES`` on top, in dependency order so every
reference points at an existing id of its target. It draws from its own random stream
(seeded by the simulator seed and the realm), so the classic data stays byte-identical
whether or not breadth data is added.

``ties`` makes many records of chosen entities share one CreateTime and LastUpdatedTime
(e.g. 1,100 Items), to test that a client's cursor is safe across a tie wider than a page.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any, Callable

from .clock import format_seconds, tz_for
from .entities import BY_NAME, dependency_order
from .generator import DAY, FIRST, LAST
from .store import Company, Record

CLASSIC = ("Customer", "Invoice")  # made by generator.py from its own counts
ACCOUNT_TYPES = [  # (AccountType, AccountSubType, Classification, name)
    ("Bank", "Checking", "Asset", "Checking"), ("Accounts Receivable", "AccountsReceivable", "Asset", "Receivables"),
    ("Income", "SalesOfProductIncome", "Revenue", "Sales"), ("Expense", "Advertising", "Expense", "Advertising"),
    ("Accounts Payable", "AccountsPayable", "Liability", "Payables"),
    ("Other Current Asset", "Inventory", "Asset", "Inventory Asset"),
    ("Equity", "OpeningBalanceEquity", "Equity", "Opening Balance Equity"),
    ("Cost of Goods Sold", "SuppliesMaterialsCogs", "Expense", "Cost of Goods"),
]
CLASS_WORDS = ["Landscaping", "Retail", "Wholesale", "Consulting", "Maintenance", "Design", "Online", "Events"]
PLACES = ["North", "South", "East", "West", "Downtown", "Harbour", "Montréal", "München", "São Paulo", "Dublin"]
ITEM_WORDS = ["Gardening", "Concrete", "Pump", "Rock Fountain", "Sprinkler Heads", "Design", "Installation",
              "Pest Control", "Hours", "Lighting", "Soil", "Trimming"]
PAY_METHODS = [("Cash", "NON_CREDIT_CARD"), ("Check", "NON_CREDIT_CARD"), ("Visa", "CREDIT_CARD"),
               ("MasterCard", "CREDIT_CARD"), ("American Express", "CREDIT_CARD"), ("Diners Club", "CREDIT_CARD")]
REGIONS = ["California", "Québec", "Texas", "Oregon", "Bayern", "Ontario", "Dublin", "New York"]


class _Context:
    """What the record makers need: the rng, the company, and the records made so far."""

    def __init__(self, rng: random.Random, company: Company) -> None:
        self.rng = rng
        self.company = company
        self.currency = {"value": company.currency, "name": "United States Dollar"}
        self.records: dict[str, list[Record]] = {e: list(t.records.values()) for e, t in company.tables.items()}
        self._pools: dict[tuple[str, str | None], list[Record]] = {}
        self.made: list[Record] = []  # records of the entity being made (for parents)
        self.journal_lines = 2  # lines per journal entry (``fill``'s journal_lines)

    def pick(self, entity: str, account_type: str | None = None) -> Record | None:
        """A random existing record of ``entity``: active ones preferred, of ``account_type`` if any are.

        Pools are built once per (entity, account type), so picking stays O(1).
        """
        key = (entity, account_type)
        pool = self._pools.get(key)
        if pool is None:
            everything = self.records.get(entity, [])
            pool = [r for r in everything if r.active] or everything
            if account_type is not None:
                pool = [r for r in pool if r.data.get("AccountType") == account_type] or pool
            self._pools[key] = pool
        return self.rng.choice(pool) if pool else None

    def ref(self, entity: str, account_type: str | None = None) -> dict[str, str] | None:
        rec = self.pick(entity, account_type)
        return _ref(rec) if rec else None

    def money(self, low: float = 20, high: float = 5000) -> float:
        return round(self.rng.uniform(low, high), 2)


def _ref(rec: Record) -> dict[str, str]:
    d = rec.data
    return {"value": str(rec.id), "name": str(d.get("DisplayName") or d.get("Name") or d.get("DocNumber") or rec.id)}


def _put(fields: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        fields[key] = value


def _with_parent(ctx: _Context, i: int, fields: dict[str, Any], flag: str,
                 same: Callable[[Record], bool] = lambda r: True) -> None:
    """Make about one record in five a child of an earlier one (FullyQualifiedName Parent:Child)."""
    candidates = [r for r in ctx.made[-50:] if same(r)]
    if i > 3 and candidates and ctx.rng.random() < 0.2:
        parent = ctx.rng.choice(candidates)
        fields["ParentRef"] = _ref(parent)
        fields["FullyQualifiedName"] = f"{parent.data['FullyQualifiedName']}:{fields['Name']}"
        fields[flag] = True
    else:
        fields["FullyQualifiedName"] = fields["Name"]
        fields[flag] = False


# ---- name lists ---------------------------------------------------------------------
def _account(ctx: _Context, i: int) -> dict[str, Any]:
    kind, sub, classification, word = ACCOUNT_TYPES[(i - 1) % len(ACCOUNT_TYPES)]
    f = {"Name": f"{word} {i}", "AccountType": kind, "AccountSubType": sub, "Classification": classification,
         "CurrentBalance": ctx.money(0, 90000), "CurrencyRef": dict(ctx.currency)}
    _with_parent(ctx, i, f, "SubAccount", lambda r: r.data["AccountType"] == kind)
    return f


def _class(ctx: _Context, i: int) -> dict[str, Any]:
    f = {"Name": f"{CLASS_WORDS[i % len(CLASS_WORDS)]} {i}"}
    _with_parent(ctx, i, f, "SubClass")
    return f


def _department(ctx: _Context, i: int) -> dict[str, Any]:
    f = {"Name": f"{PLACES[i % len(PLACES)]} {i}"}
    _with_parent(ctx, i, f, "SubDepartment")
    return f


def _item(ctx: _Context, i: int) -> dict[str, Any]:
    name = f"{ITEM_WORDS[i % len(ITEM_WORDS)]} {i}"
    f: dict[str, Any] = {"Name": name, "FullyQualifiedName": name, "Type": ("Service", "NonInventory")[i % 2],
                         "UnitPrice": ctx.money(1, 400), "Description": f"{name} — standard", "Taxable": False}
    _put(f, "IncomeAccountRef", ctx.ref("Account", "Income"))
    _put(f, "ExpenseAccountRef", ctx.ref("Account", "Cost of Goods Sold"))
    return f


def _payment_method(ctx: _Context, i: int) -> dict[str, Any]:
    name, kind = PAY_METHODS[i % len(PAY_METHODS)]
    return {"Name": f"{name} {i}", "Type": kind}


def _term(ctx: _Context, i: int) -> dict[str, Any]:
    days = ctx.rng.choice([0, 10, 15, 30, 45, 60, 90])
    return {"Name": f"Net {days} ({i})", "Type": "STANDARD", "DueDays": days, "DiscountPercent": 0}


def _budget(ctx: _Context, i: int) -> dict[str, Any]:
    year = 2020 + i % 6
    details = []
    for month in range(1, ctx.rng.randrange(2, 5)):
        detail: dict[str, Any] = {"BudgetDate": f"{year}-{month:02d}-01", "Amount": ctx.money(100, 9000)}
        _put(detail, "AccountRef", ctx.ref("Account", "Expense"))
        details.append(detail)
    return {"Name": f"FY{year} Budget {i}", "BudgetType": "ProfitAndLoss", "BudgetEntryType": "Monthly",
            "StartDate": f"{year}-01-01", "EndDate": f"{year}-12-31", "BudgetDetail": details}


def _tax_agency(ctx: _Context, i: int) -> dict[str, Any]:
    return {"DisplayName": f"{REGIONS[i % len(REGIONS)]} Department of Revenue {i}",
            "TaxTrackedOnSales": True, "TaxTrackedOnPurchases": False}


def _tax_rate(ctx: _Context, i: int) -> dict[str, Any]:
    rate = ctx.rng.choice([2.5, 5, 6.25, 7.5, 8, 9.975, 19, 23])
    f: dict[str, Any] = {"Name": f"{REGIONS[i % len(REGIONS)]} {rate}% ({i})", "RateValue": rate,
                         "SpecialTaxType": "NONE", "DisplayType": "ReadOnly"}
    _put(f, "AgencyRef", ctx.ref("TaxAgency"))
    return f


def _tax_code(ctx: _Context, i: int) -> dict[str, Any]:
    rate = ctx.ref("TaxRate")
    detail = [{"TaxRateRef": rate, "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": 0}] if rate else []
    return {"Name": f"Tax {i}", "Description": f"Sales tax {i}", "Taxable": True, "TaxGroup": False,
            "SalesTaxRateList": {"TaxRateDetail": detail}, "PurchaseTaxRateList": {"TaxRateDetail": []}}


def _person(ctx: _Context, i: int, domain: str) -> dict[str, Any]:
    first, last = ctx.rng.choice(FIRST), ctx.rng.choice(LAST)
    email = "".join(ch for ch in f"{first}.{last}".lower() if ch.isascii() and (ch.isalnum() or ch == "."))
    return {"GivenName": first, "FamilyName": last, "DisplayName": f"{first} {last} ({i})",
            "PrimaryEmailAddr": {"Address": f"{email}{i}@{domain}"}}


def _vendor(ctx: _Context, i: int) -> dict[str, Any]:
    f = _person(ctx, i, "vendor.example")
    f.update({"CompanyName": f"{f['FamilyName']} Supplies", "Balance": 0, "Vendor1099": False,
              "CurrencyRef": dict(ctx.currency)})
    f["PrintOnCheckName"] = f["DisplayName"]
    return f


def _employee(ctx: _Context, i: int) -> dict[str, Any]:
    f = _person(ctx, i, "staff.example")
    f.update({"EmployeeNumber": f"E{i:05d}", "BillableTime": ctx.rng.random() < 0.5})
    return f


# ---- transactions ---------------------------------------------------------------------
def _lines(ctx: _Context, detail: str, ref_entity: str, ref_key: str, priced: bool,
           account_type: str | None = None) -> tuple[list[dict[str, Any]], float]:
    lines, total = [], 0.0
    for n in range(1, ctx.rng.randrange(2, 4)):
        qty, price = ctx.rng.randrange(1, 12), ctx.money(2, 300)
        amount = round(qty * price, 2)
        body: dict[str, Any] = {"Qty": qty, "UnitPrice": price} if priced else {}
        _put(body, ref_key, ctx.ref(ref_entity, account_type))
        lines.append({"Id": str(n), "LineNum": n, "Amount": amount, "DetailType": detail, detail: body})
        total += amount
    return lines, round(total, 2)


def _sale(ctx: _Context, i: int, prefix: str) -> dict[str, Any]:
    lines, total = _lines(ctx, "SalesItemLineDetail", "Item", "ItemRef", True)
    f: dict[str, Any] = {"DocNumber": f"{prefix}-{1000 + i}", "Line": lines, "TotalAmt": total,
                         "CurrencyRef": dict(ctx.currency)}
    _put(f, "CustomerRef", ctx.ref("Customer"))
    return f


def _estimate(ctx: _Context, i: int) -> dict[str, Any]:
    f = _sale(ctx, i, "EST")
    f["TxnStatus"] = ctx.rng.choice(["Pending", "Accepted", "Closed", "Rejected"])
    return f


def _sales_receipt(ctx: _Context, i: int) -> dict[str, Any]:
    f = _sale(ctx, i, "SR")
    _put(f, "DepositToAccountRef", ctx.ref("Account", "Bank"))
    f["Balance"] = 0
    return f


def _credit_memo(ctx: _Context, i: int) -> dict[str, Any]:
    f = _sale(ctx, i, "CM")
    f["RemainingCredit"] = f["Balance"] = ctx.rng.choice([0, f["TotalAmt"]])
    return f


def _refund_receipt(ctx: _Context, i: int) -> dict[str, Any]:
    f = _sale(ctx, i, "RR")
    _put(f, "DepositToAccountRef", ctx.ref("Account", "Bank"))
    f["Balance"] = 0
    return f


def _payment(ctx: _Context, i: int) -> dict[str, Any]:
    # A payment applies to one invoice of its customer, when there are invoices.
    invoice = ctx.pick("Invoice")
    f: dict[str, Any] = {"CurrencyRef": dict(ctx.currency), "ProcessPayment": False}
    if invoice is not None:
        amount = round(float(invoice.data.get("TotalAmt", 0)) or ctx.money(), 2)
        f.update({"TotalAmt": amount, "UnappliedAmt": 0, "CustomerRef": dict(invoice.data["CustomerRef"]),
                  "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": str(invoice.id), "TxnType": "Invoice"}]}]})
    else:
        amount = ctx.money()
        f.update({"TotalAmt": amount, "UnappliedAmt": amount, "Line": []})
        _put(f, "CustomerRef", ctx.ref("Customer"))
    _put(f, "DepositToAccountRef", ctx.ref("Account", "Bank"))
    _put(f, "PaymentMethodRef", ctx.ref("PaymentMethod"))
    f["PaymentRefNum"] = str(5000 + i)
    return f


def _expense(ctx: _Context, i: int, prefix: str) -> dict[str, Any]:
    lines, total = _lines(ctx, "AccountBasedExpenseLineDetail", "Account", "AccountRef", False,
                          "Expense")
    f: dict[str, Any] = {"DocNumber": f"{prefix}-{1000 + i}", "Line": lines, "TotalAmt": total,
                         "CurrencyRef": dict(ctx.currency)}
    _put(f, "VendorRef", ctx.ref("Vendor"))
    _put(f, "APAccountRef", ctx.ref("Account", "Accounts Payable"))
    return f


def _purchase_order(ctx: _Context, i: int) -> dict[str, Any]:
    lines, total = _lines(ctx, "ItemBasedExpenseLineDetail", "Item", "ItemRef", True)
    f: dict[str, Any] = {"DocNumber": f"PO-{1000 + i}", "Line": lines, "TotalAmt": total,
                         "CurrencyRef": dict(ctx.currency), "POStatus": ctx.rng.choice(["Open", "Closed"])}
    _put(f, "VendorRef", ctx.ref("Vendor"))
    _put(f, "APAccountRef", ctx.ref("Account", "Accounts Payable"))
    return f


def _bill(ctx: _Context, i: int) -> dict[str, Any]:
    f = _expense(ctx, i, "BILL")
    f["Balance"] = ctx.rng.choice([0, f["TotalAmt"]])
    return f


def _vendor_credit(ctx: _Context, i: int) -> dict[str, Any]:
    f = _expense(ctx, i, "VC")
    f["Balance"] = f["TotalAmt"]
    return f


def _bill_payment(ctx: _Context, i: int) -> dict[str, Any]:
    # A bill payment pays one bill of its vendor, when there are bills.
    bill = ctx.pick("Bill")
    f: dict[str, Any] = {"DocNumber": f"BP-{1000 + i}", "PayType": "Check", "CurrencyRef": dict(ctx.currency)}
    if bill is not None:
        amount = float(bill.data.get("TotalAmt", 0)) or ctx.money()
        _put(f, "VendorRef", dict(bill.data["VendorRef"]) if "VendorRef" in bill.data else None)
        f["Line"] = [{"Amount": amount, "LinkedTxn": [{"TxnId": str(bill.id), "TxnType": "Bill"}]}]
    else:
        amount = ctx.money()
        _put(f, "VendorRef", ctx.ref("Vendor"))
        f["Line"] = []
    f["TotalAmt"] = amount
    bank = ctx.ref("Account", "Bank")
    f["CheckPayment"] = {"PrintStatus": "NotSet", **({"BankAccountRef": bank} if bank else {})}
    return f


def _purchase(ctx: _Context, i: int) -> dict[str, Any]:
    lines, total = _lines(ctx, "AccountBasedExpenseLineDetail", "Account", "AccountRef", False,
                          "Expense")
    f: dict[str, Any] = {"DocNumber": f"P-{1000 + i}", "Line": lines, "TotalAmt": total,
                         "PaymentType": ctx.rng.choice(["Cash", "Check", "CreditCard"]),
                         "CurrencyRef": dict(ctx.currency)}
    _put(f, "AccountRef", ctx.ref("Account", "Bank"))
    vendor = ctx.ref("Vendor")
    if vendor:
        f["EntityRef"] = {**vendor, "type": "Vendor"}
    return f


def _time_activity(ctx: _Context, i: int) -> dict[str, Any]:
    f: dict[str, Any] = {"NameOf": "Employee", "Hours": ctx.rng.randrange(0, 9), "Minutes": ctx.rng.choice([0, 15, 30, 45]),
                         "BillableStatus": ctx.rng.choice(["Billable", "NotBillable", "HasBeenBilled"]),
                         "HourlyRate": ctx.rng.choice([45, 60, 75, 95, 120]), "Description": f"Work log {i}"}
    _put(f, "EmployeeRef", ctx.ref("Employee"))
    _put(f, "CustomerRef", ctx.ref("Customer"))
    _put(f, "ItemRef", ctx.ref("Item"))
    return f


def _deposit(ctx: _Context, i: int) -> dict[str, Any]:
    payment = ctx.pick("Payment")
    f: dict[str, Any] = {"CurrencyRef": dict(ctx.currency)}
    if payment is not None:
        amount = float(payment.data.get("TotalAmt", 0))
        f["Line"] = [{"Amount": amount, "LinkedTxn": [{"TxnId": str(payment.id), "TxnType": "Payment", "TxnLineId": "0"}]}]
    else:
        amount = ctx.money()
        f["Line"] = [{"Amount": amount, "DetailType": "DepositLineDetail", "DepositLineDetail": {}}]
    f["TotalAmt"] = amount
    _put(f, "DepositToAccountRef", ctx.ref("Account", "Bank"))
    return f


def _transfer(ctx: _Context, i: int) -> dict[str, Any]:
    f: dict[str, Any] = {"Amount": ctx.money(), "CurrencyRef": dict(ctx.currency)}
    source, target = ctx.ref("Account", "Bank"), ctx.ref("Account", "Bank")
    if source and target and source == target:
        target = ctx.ref("Account")  # another account when the bank picks coincide (may still be the same)
    _put(f, "FromAccountRef", source)
    _put(f, "ToAccountRef", target)
    return f


def _journal_entry(ctx: _Context, i: int) -> dict[str, Any]:
    if ctx.journal_lines > 2:
        return _long_journal_entry(ctx, i)
    amount = ctx.money()
    debit: dict[str, Any] = {"PostingType": "Debit"}
    _put(debit, "AccountRef", ctx.ref("Account", "Expense"))
    _put(debit, "ClassRef", ctx.ref("Class"))
    _put(debit, "DepartmentRef", ctx.ref("Department"))
    credit: dict[str, Any] = {"PostingType": "Credit"}
    _put(credit, "AccountRef", ctx.ref("Account", "Bank"))
    customer = ctx.ref("Customer")
    if customer:
        credit["Entity"] = {"Type": "Customer", "EntityRef": customer}
    lines = [{"Id": str(n), "Description": f"Adjustment {i}", "Amount": amount, "DetailType": "JournalEntryLineDetail",
              "JournalEntryLineDetail": detail} for n, detail in enumerate((debit, credit))]
    return {"DocNumber": f"JE-{1000 + i}", "Line": lines, "TotalAmt": amount, "Adjustment": False,
            "CurrencyRef": dict(ctx.currency)}


def _long_journal_entry(ctx: _Context, i: int) -> dict[str, Any]:
    """A journal entry of ``ctx.journal_lines`` lines (a payroll or month-end entry): many debits, one credit."""
    lines: list[dict[str, Any]] = []
    total = 0.0
    for n in range(ctx.journal_lines - 1):
        amount = ctx.money(5, 900)
        debit: dict[str, Any] = {"PostingType": "Debit"}
        _put(debit, "AccountRef", ctx.ref("Account", "Expense"))
        _put(debit, "ClassRef", ctx.ref("Class"))
        _put(debit, "DepartmentRef", ctx.ref("Department"))
        lines.append({"Id": str(n), "Description": f"Allocation {i}.{n}", "Amount": amount,
                      "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": debit})
        total += amount
    total = round(total, 2)
    credit: dict[str, Any] = {"PostingType": "Credit"}
    _put(credit, "AccountRef", ctx.ref("Account", "Bank"))
    lines.append({"Id": str(len(lines)), "Description": f"Allocation {i}", "Amount": total,
                  "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": credit})
    return {"DocNumber": f"JE-{1000 + i}", "Line": lines, "TotalAmt": total, "Adjustment": False,
            "CurrencyRef": dict(ctx.currency)}


MAKERS: dict[str, Callable[[_Context, int], dict[str, Any]]] = {
    "Account": _account, "Class": _class, "Department": _department, "Item": _item,
    "PaymentMethod": _payment_method, "Term": _term, "Budget": _budget, "TaxAgency": _tax_agency,
    "TaxRate": _tax_rate, "TaxCode": _tax_code, "Vendor": _vendor, "Employee": _employee,
    "Estimate": _estimate, "SalesReceipt": _sales_receipt, "CreditMemo": _credit_memo,
    "RefundReceipt": _refund_receipt, "Payment": _payment, "PurchaseOrder": _purchase_order, "Bill": _bill,
    "VendorCredit": _vendor_credit, "BillPayment": _bill_payment, "Purchase": _purchase,
    "TimeActivity": _time_activity, "Deposit": _deposit, "Transfer": _transfer, "JournalEntry": _journal_entry,
}


def make_fields(ctx: _Context, entity: str, i: int) -> dict[str, Any]:
    """Intuit-shaped fields of record number ``i`` of ``entity`` (no Id, SyncToken or MetaData)."""
    return MAKERS[entity](ctx, i)


# ---- times and assembly ---------------------------------------------------------------
def _times(rng: random.Random, anchor: int, n: int) -> list[tuple[int, int]]:
    """Creation spans four years; a few records changed in the last 25 days (CDC has work)."""
    start, out = anchor - 4 * 365 * DAY, []
    for _ in range(n):
        created = rng.randrange(start, anchor - 35 * DAY)
        r = rng.random()
        if r < 0.5:
            updated = created
        elif r < 0.92:
            updated = rng.randrange(created, anchor - 31 * DAY)
        else:
            updated = rng.randrange(anchor - 25 * DAY, anchor - 60)
        out.append((created, updated))
    return out


def tie_time(anchor: int) -> int:
    """The timestamp tied records share: 400 days before the anchor (outside CDC's look-back)."""
    return anchor - 400 * DAY


def build(company: Company, entity: str, fields: dict[str, Any], rec_id: int, created: int, updated: int,
          sync: int) -> Record:
    """Wrap fields as a stored record with Intuit's envelope keys and MetaData."""
    tz = company.offset_minutes
    spec = BY_NAME[entity]
    data: dict[str, Any] = {"domain": "QBO", "sparse": False, "Id": str(rec_id), "SyncToken": str(sync),
                            "MetaData": {"CreateTime": format_seconds(created, tz),
                                         "LastUpdatedTime": format_seconds(updated, tz)}}
    if spec.kind == "transaction" and "TxnDate" not in fields:
        txn = datetime.fromtimestamp(created, tz_for(tz)).date()
        data["TxnDate"] = txn.isoformat()
        if entity in ("Bill", "PurchaseOrder"):
            data["DueDate"] = (txn + timedelta(days=30)).isoformat()
        if entity == "Estimate":
            data["ExpirationDate"] = (txn + timedelta(days=60)).isoformat()
    data.update(fields)
    if spec.active:
        data.setdefault("Active", True)
    return Record(entity, rec_id, data, created, updated, bool(data.get("Active", True)))


def fill(company: Company, anchor: float, seed: int, count: int, ties: dict[str, int] | None = None,
         transaction_factor: int = 1, counts: dict[str, int] | None = None, journal_lines: int = 2) -> None:
    """Add ``count`` records of every non-classic entity to a company (transactions × factor).

    ``counts`` ({"Payment": 25000}) sets an entity's own number instead, for books skewed
    as real ones are; ``journal_lines`` makes journal entries that long (2 to 100 lines).
    ``ties`` maps entity names to how many of its records share one timestamp; an entity
    gets at least that many records. Deterministic under (seed, realm, anchor).
    """
    rng = random.Random(f"breadth:{seed}:{company.realm_id}")
    base = int(anchor)
    ties = {_canonical(e): n for e, n in (ties or {}).items()}
    counts = {_canonical(e): int(n) for e, n in (counts or {}).items()}
    if set(ties) & set(CLASSIC) or set(counts) & set(CLASSIC):
        raise ValueError("Customer and Invoice numbers come from customers / invoices / tie_size, not ties or counts")
    if any(n < 0 for n in counts.values()):
        raise ValueError("counts must not be negative")
    if not 2 <= int(journal_lines) <= 100:
        raise ValueError("journal_lines must be between 2 and 100")
    ctx = _Context(rng, company)
    ctx.journal_lines = int(journal_lines)
    for entity in dependency_order():
        if entity in CLASSIC:
            continue
        spec = BY_NAME[entity]
        n = counts.get(entity, count * (transaction_factor if spec.kind == "transaction" else 1))
        n = max(n, ties.get(entity, 0))
        if n <= 0:
            continue
        times = _times(rng, base, n)
        for i in rng.sample(range(n), min(ties.get(entity, 0), n)):
            times[i] = (tie_time(base), tie_time(base))
        table = company.tables[entity]
        ctx.made = []
        first = table.next_id
        for k, (created, updated) in enumerate(times):
            rec_id = first + k
            fields = make_fields(ctx, entity, rec_id)
            if spec.active:
                fields["Active"] = rng.random() > 0.05
            sync = 0 if updated == created else rng.randrange(1, 6)
            ctx.made.append(build(company, entity, fields, rec_id, created, updated, sync))
        table.bulk_load(ctx.made)
        ctx.records[entity] = list(table.records.values())
    _point_invoice_lines_at_items(company)


def _point_invoice_lines_at_items(company: Company) -> None:
    """Make the classic invoices' ItemRefs (fixed ids 1–21) name generated Items that exist."""
    items = company.tables["Item"].records
    if not items:
        return
    ids = sorted(items)
    for inv in company.tables["Invoice"].records.values():
        for line in inv.data.get("Line", []):
            ref = line.get("SalesItemLineDetail", {}).get("ItemRef")
            if ref and ref.get("value", "").isdigit():
                item = items[ids[(int(ref["value"]) - 1) % len(ids)]]
                ref["value"], ref["name"] = str(item.id), item.data["Name"]
        inv._json = None


def new_context(company: Company, seed: str) -> _Context:
    """A maker context over a company's current records, with its own random stream."""
    return _Context(random.Random(seed), company)


def _canonical(name: str) -> str:
    for e in BY_NAME:
        if e.lower() == name.lower():
            return e
    raise ValueError(f"unknown entity {name!r}")
