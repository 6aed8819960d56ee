"""The 28 accounting entities the simulator serves, as data.

Each entry says what kind of object it is (a name list is never deleted, only made
inactive; a transaction is hard-deleted and leaves a CDC tombstone), whether Change
Data Capture covers it, its REST path, the references it carries (so generated and
created records point at existing ids) and the top-level properties a query may filter
or order on. The store, engine, API, generator and control API read this table; nothing
else lists the entities.
"""
from __future__ import annotations

from dataclasses import dataclass
from graphlib import TopologicalSorter

NAME_LIST, TRANSACTION = "name_list", "transaction"


@dataclass(frozen=True)
class RefDef:
    """A reference inside an entity's JSON.

    ``path`` is dotted and walks into lists on the way (``Line.SalesItemLineDetail.ItemRef``
    is the ItemRef of every line); ``key`` names the id inside the reference object
    (``value`` for ``XxxRef``, ``TxnId`` for ``LinkedTxn``).
    """

    path: str
    target: str
    key: str = "value"

    @property
    def top_level(self) -> bool:
        return "." not in self.path


@dataclass(frozen=True)
class EntityDef:
    """One entity: kind, CDC coverage, references and queryable properties."""

    name: str
    kind: str
    cdc: bool = True
    refs: tuple[RefDef, ...] = ()
    queryable: tuple[str, ...] = ()  # top-level properties (an ...Ref property filters on its value)
    has_active: bool | None = None  # None: name lists have Active, transactions do not

    @property
    def path(self) -> str:
        """The REST path segment: Intuit's entity name in lower case (``journalentry``)."""
        return self.name.lower()

    @property
    def name_list(self) -> bool:
        return self.kind == NAME_LIST

    @property
    def active(self) -> bool:
        """Whether records carry ``Active`` (and queries skip inactive ones by default)."""
        return self.name_list if self.has_active is None else self.has_active

    def refs_to(self, target: str) -> tuple[RefDef, ...]:
        return tuple(r for r in self.refs if r.target == target)


def _name(name: str, *refs: RefDef, queryable: tuple[str, ...] = ("Name", "FullyQualifiedName"),
          cdc: bool = True, has_active: bool | None = None) -> EntityDef:
    return EntityDef(name, NAME_LIST, cdc, refs, queryable, has_active)


def _txn(name: str, *refs: RefDef, queryable: tuple[str, ...] = (), cdc: bool = True) -> EntityDef:
    return EntityDef(name, TRANSACTION, cdc, refs, ("DocNumber", "TxnDate", "TotalAmt", *queryable), None)


R = RefDef
CUSTOMER, VENDOR = R("CustomerRef", "Customer"), R("VendorRef", "Vendor")
SALE_LINES = R("Line.SalesItemLineDetail.ItemRef", "Item")
EXPENSE_LINES = R("Line.AccountBasedExpenseLineDetail.AccountRef", "Account")
SALE_Q = ("CustomerRef", "CurrencyRef")
EXPENSE_Q = ("VendorRef", "APAccountRef", "CurrencyRef")

ENTITIES: tuple[EntityDef, ...] = (
    # Name lists
    _name("Account", R("ParentRef", "Account"),
          queryable=("Name", "FullyQualifiedName", "AccountType", "Classification", "CurrentBalance", "ParentRef")),
    _name("Class", R("ParentRef", "Class"), queryable=("Name", "FullyQualifiedName", "ParentRef")),
    _name("Department", R("ParentRef", "Department"), queryable=("Name", "FullyQualifiedName", "ParentRef")),
    _name("Item", R("IncomeAccountRef", "Account"), R("ExpenseAccountRef", "Account"),
          queryable=("Name", "FullyQualifiedName", "Type", "UnitPrice", "IncomeAccountRef")),
    _name("PaymentMethod", queryable=("Name", "Type")),
    _name("Term", queryable=("Name", "DueDays")),
    _name("Budget", R("BudgetDetail.AccountRef", "Account"), queryable=("Name", "BudgetType", "StartDate")),
    # Intuit's TaxAgency has no Active field: it is a name list that cannot be made inactive.
    _name("TaxAgency", queryable=("DisplayName",), cdc=False, has_active=False),
    _name("TaxCode", R("SalesTaxRateList.TaxRateDetail.TaxRateRef", "TaxRate"),
          queryable=("Name", "Description"), cdc=False),
    _name("TaxRate", R("AgencyRef", "TaxAgency"), queryable=("Name", "RateValue", "AgencyRef"), cdc=False),
    _name("Customer", queryable=("DisplayName",)),  # the classic generator's schema (engine.SCHEMA) applies
    _name("Vendor", queryable=("DisplayName", "CompanyName", "Balance")),
    _name("Employee", queryable=("DisplayName", "GivenName", "FamilyName")),
    # Sales
    _txn("Estimate", CUSTOMER, SALE_LINES, queryable=(*SALE_Q, "TxnStatus", "ExpirationDate")),
    _txn("Invoice", CUSTOMER, SALE_LINES, queryable=SALE_Q),
    _txn("SalesReceipt", CUSTOMER, SALE_LINES, R("DepositToAccountRef", "Account"),
         queryable=(*SALE_Q, "DepositToAccountRef")),
    _txn("CreditMemo", CUSTOMER, SALE_LINES, queryable=(*SALE_Q, "RemainingCredit")),
    _txn("RefundReceipt", CUSTOMER, SALE_LINES, R("DepositToAccountRef", "Account"),
         queryable=(*SALE_Q, "DepositToAccountRef")),
    _txn("Payment", CUSTOMER, R("DepositToAccountRef", "Account"), R("PaymentMethodRef", "PaymentMethod"),
         R("Line.LinkedTxn", "Invoice", "TxnId"), queryable=(*SALE_Q, "UnappliedAmt")),
    # Purchases
    _txn("PurchaseOrder", VENDOR, R("APAccountRef", "Account"),
         R("Line.ItemBasedExpenseLineDetail.ItemRef", "Item"), queryable=(*EXPENSE_Q, "POStatus", "DueDate")),
    _txn("Bill", VENDOR, R("APAccountRef", "Account"), EXPENSE_LINES, queryable=(*EXPENSE_Q, "DueDate", "Balance")),
    _txn("VendorCredit", VENDOR, R("APAccountRef", "Account"), EXPENSE_LINES, queryable=(*EXPENSE_Q, "Balance")),
    _txn("BillPayment", VENDOR, R("CheckPayment.BankAccountRef", "Account"), R("Line.LinkedTxn", "Bill", "TxnId"),
         queryable=("VendorRef", "CurrencyRef", "PayType")),
    _txn("Purchase", R("AccountRef", "Account"), R("EntityRef", "Vendor"), EXPENSE_LINES,
         queryable=("AccountRef", "EntityRef", "PaymentType", "CurrencyRef")),
    _txn("TimeActivity", R("EmployeeRef", "Employee"), CUSTOMER, R("ItemRef", "Item"),
         queryable=("EmployeeRef", "CustomerRef", "ItemRef", "NameOf", "BillableStatus"), cdc=False),
    # Banking and accounting
    _txn("Deposit", R("DepositToAccountRef", "Account"), R("Line.LinkedTxn", "Payment", "TxnId"),
         queryable=("DepositToAccountRef", "CurrencyRef")),
    _txn("Transfer", R("FromAccountRef", "Account"), R("ToAccountRef", "Account"),
         queryable=("FromAccountRef", "ToAccountRef", "Amount")),
    _txn("JournalEntry", R("Line.JournalEntryLineDetail.AccountRef", "Account"),
         R("Line.JournalEntryLineDetail.ClassRef", "Class"), R("Line.JournalEntryLineDetail.DepartmentRef", "Department"),
         R("Line.JournalEntryLineDetail.Entity.EntityRef", "Customer"), queryable=("CurrencyRef", "Adjustment")),
)

BY_NAME: dict[str, EntityDef] = {e.name: e for e in ENTITIES}
BY_PATH: dict[str, EntityDef] = {e.path: e for e in ENTITIES}
CDC_UNSUPPORTED = tuple(e.name for e in ENTITIES if not e.cdc)


def lookup(name: str) -> EntityDef | None:
    """Find an entity by name or path, case-insensitively."""
    return BY_PATH.get(name.lower())


def dependency_order() -> list[str]:
    """Entities with every reference target before the entity (self references ignored)."""
    graph = {e.name: {r.target for r in e.refs if r.target != e.name} for e in ENTITIES}
    return list(TopologicalSorter(graph).static_order())


def _walk(node: object, parts: list[str]) -> list[dict]:
    """Return the reference objects at ``parts`` below ``node``, descending into lists."""
    if isinstance(node, list):
        return [found for item in node for found in _walk(item, parts)]
    if not isinstance(node, dict):
        return []
    if not parts:
        return [node]
    return _walk(node.get(parts[0]), parts[1:])


def ref_objects(data: dict, ref: RefDef) -> list[dict]:
    """The reference objects (``{"value": …}`` or ``{"TxnId": …}``) a record holds for ``ref``."""
    return [obj for obj in _walk(data, ref.path.split(".")) if obj.get(ref.key) is not None]


def ref_ids(data: dict, ref: RefDef) -> list[str]:
    """The ids a record references through ``ref``."""
    return [str(obj[ref.key]) for obj in ref_objects(data, ref)]
