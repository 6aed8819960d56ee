"""QuickBooks Online's accounting objects, declared as specs and registered.

Each type keeps the shared columns plus what a person querying the books needs first:
names, ``active`` on name lists, dates, amounts with their currency, and the main
references (source id and foreign key). Lines, custom fields and the rest stay in
``raw_data``. The README's table of object types is the prose form of this module.
"""
from __future__ import annotations

from .specs import (
    AMOUNT, BOOL, CODE, DAILY_QUERY, DAILY_READ, DATE, INT, NUMBER, EntitySpec, Field, Ref, register,
)

# Name lists are never deleted, only made inactive; a query without this term skips the
# inactive ones, and they would vanish from our copy.
ALL_ACTIVITY = ("Active IN (true, false)",)

REFERENCE, SALES, PURCHASES, BANKING = "reference", "sales", "purchases", "banking"
GROUPS = {REFERENCE: "Reference lists", SALES: "Sales", PURCHASES: "Purchases", BANKING: "Banking and accounting"}


def text(column: str, key: str) -> Field:
    return Field(column, (key,))


NAME = Field("name", ("Name",))
FULL_NAME = Field("fully_qualified_name", ("FullyQualifiedName",))
DISPLAY_NAME = Field("display_name", ("DisplayName",))
COMPANY_NAME = Field("company_name", ("CompanyName",))
EMAIL = Field("email", ("PrimaryEmailAddr", "Address"))
ACTIVE = Field("active", ("Active",), BOOL, default=True)
BALANCE = Field("balance", ("Balance",), AMOUNT)
CURRENCY = Field("currency", ("CurrencyRef", "value"), CODE)
DOC_NUMBER = Field("doc_number", ("DocNumber",), CODE)
TXN_DATE = Field("txn_date", ("TxnDate",), DATE)
DUE_DATE = Field("due_date", ("DueDate",), DATE)
TOTAL = Field("total_amt", ("TotalAmt",), AMOUNT)
CUSTOMER = Ref("customer", "CustomerRef", "customer")
VENDOR = Ref("vendor", "VendorRef", "vendor")
AP_ACCOUNT = Ref("ap_account", "APAccountRef", "account")
DEPOSIT_ACCOUNT = Ref("deposit_to_account", "DepositToAccountRef", "account")

# The columns most transactions share, and what their lines reference.
SALE = (CUSTOMER, DOC_NUMBER, TXN_DATE, TOTAL, CURRENCY)
EXPENSE = (VENDOR, AP_ACCOUNT, DOC_NUMBER, TXN_DATE, TOTAL, CURRENCY)
SALE_LINES = ("item",)
EXPENSE_LINES = ("item", "account")


def name_list(name: str, entity: str, *columns: Field | Ref, group: str = REFERENCE, **options) -> EntitySpec:
    return EntitySpec(name=name, entity=entity, table=name, filters=ALL_ACTIVITY, group=group,
                      columns=(*columns, ACTIVE), **options)


def transaction(name: str, entity: str, *columns: Field | Ref, group: str, **options) -> EntitySpec:
    return EntitySpec(name=name, entity=entity, table=name, deletable=True, group=group, columns=columns,
                      **options)


OBJECT_TYPES = (
    # Reference lists
    name_list("account", "Account", NAME, FULL_NAME, text("account_type", "AccountType"),
              text("account_sub_type", "AccountSubType"), text("classification", "Classification"),
              Field("current_balance", ("CurrentBalance",), AMOUNT), CURRENCY,
              Ref("parent", "ParentRef", "account")),
    name_list("class", "Class", NAME, FULL_NAME, Ref("parent", "ParentRef", "class")),
    name_list("department", "Department", NAME, FULL_NAME, Ref("parent", "ParentRef", "department")),
    name_list("item", "Item", NAME, FULL_NAME, text("type", "Type"), Field("unit_price", ("UnitPrice",), NUMBER),
              Ref("income_account", "IncomeAccountRef", "account"),
              Ref("expense_account", "ExpenseAccountRef", "account")),
    name_list("payment_method", "PaymentMethod", NAME, text("type", "Type")),
    name_list("term", "Term", NAME, Field("due_days", ("DueDays",), INT)),
    name_list("budget", "Budget", NAME, text("budget_type", "BudgetType"), Field("start_date", ("StartDate",), DATE),
              Field("end_date", ("EndDate",), DATE), group=BANKING),
    EntitySpec(name="tax_agency", entity="TaxAgency", table="tax_agency", group=REFERENCE, refresh=DAILY_READ,
               columns=(DISPLAY_NAME,)),
    name_list("tax_code", "TaxCode", NAME, text("description", "Description"),
              Field("taxable", ("Taxable",), BOOL), refresh=DAILY_READ),
    name_list("tax_rate", "TaxRate", NAME, Field("rate_value", ("RateValue",), NUMBER),
              Ref("agency", "AgencyRef", "tax_agency"), refresh=DAILY_READ),
    # Sales
    name_list("customer", "Customer", DISPLAY_NAME, COMPANY_NAME, EMAIL, BALANCE, CURRENCY, group=SALES),
    transaction("estimate", "Estimate", *SALE, Field("expiration_date", ("ExpirationDate",), DATE),
                text("txn_status", "TxnStatus"), group=SALES, after=SALE_LINES),
    transaction("invoice", "Invoice", *SALE, DUE_DATE, BALANCE, group=SALES, after=SALE_LINES),
    transaction("sales_receipt", "SalesReceipt", *SALE, DEPOSIT_ACCOUNT, group=SALES, after=SALE_LINES),
    transaction("credit_memo", "CreditMemo", *SALE, Field("remaining_credit", ("RemainingCredit",), AMOUNT),
                group=SALES, after=SALE_LINES),
    transaction("refund_receipt", "RefundReceipt", *SALE, DEPOSIT_ACCOUNT, group=SALES, after=SALE_LINES),
    # A payment applies to invoices and credit memos (in its lines).
    transaction("payment", "Payment", CUSTOMER, TXN_DATE, TOTAL, Field("unapplied_amt", ("UnappliedAmt",), AMOUNT),
                CURRENCY, DEPOSIT_ACCOUNT, Ref("payment_method", "PaymentMethodRef", "payment_method"),
                group=SALES, after=("invoice", "credit_memo")),
    # Purchases
    name_list("vendor", "Vendor", DISPLAY_NAME, COMPANY_NAME, EMAIL, BALANCE, CURRENCY, group=PURCHASES),
    name_list("employee", "Employee", DISPLAY_NAME, text("given_name", "GivenName"),
              text("family_name", "FamilyName"), EMAIL, group=PURCHASES),
    transaction("purchase_order", "PurchaseOrder", *EXPENSE, DUE_DATE, text("po_status", "POStatus"),
                group=PURCHASES, after=EXPENSE_LINES),
    transaction("bill", "Bill", *EXPENSE, DUE_DATE, BALANCE, group=PURCHASES, after=EXPENSE_LINES),
    transaction("vendor_credit", "VendorCredit", *EXPENSE, BALANCE, group=PURCHASES, after=EXPENSE_LINES),
    # A bill payment pays bills and takes vendor credits (in its lines).
    transaction("bill_payment", "BillPayment", VENDOR, DOC_NUMBER, TXN_DATE, TOTAL, CURRENCY,
                text("pay_type", "PayType"), group=PURCHASES, after=("bill", "vendor_credit")),
    # The payee may be a vendor, a customer or an employee: kept as source id and type.
    transaction("purchase", "Purchase", Ref("account", "AccountRef", "account"),
                Field("entity_source_id", ("EntityRef", "value"), CODE),
                Field("entity_type", ("EntityRef", "type"), CODE), text("payment_type", "PaymentType"),
                DOC_NUMBER, TXN_DATE, TOTAL, CURRENCY, group=PURCHASES, after=EXPENSE_LINES),
    transaction("time_activity", "TimeActivity", Ref("employee", "EmployeeRef", "employee"), CUSTOMER,
                Ref("item", "ItemRef", "item"), text("name_of", "NameOf"), TXN_DATE,
                Field("hours", ("Hours",), INT), Field("minutes", ("Minutes",), INT),
                text("billable_status", "BillableStatus"), Field("hourly_rate", ("HourlyRate",), NUMBER),
                group=PURCHASES, refresh=DAILY_QUERY),
    # Banking and accounting
    transaction("deposit", "Deposit", DEPOSIT_ACCOUNT, TXN_DATE, TOTAL, CURRENCY, group=BANKING,
                after=("payment",)),
    transaction("transfer", "Transfer", Ref("from_account", "FromAccountRef", "account"),
                Ref("to_account", "ToAccountRef", "account"), TXN_DATE, Field("amount", ("Amount",), AMOUNT),
                CURRENCY, group=BANKING),
    # Lines debit and credit accounts, naming customers, vendors, classes and departments.
    transaction("journal_entry", "JournalEntry", DOC_NUMBER, TXN_DATE, TOTAL, CURRENCY,
                Field("adjustment", ("Adjustment",), BOOL), group=BANKING,
                after=("account", "customer", "vendor", "class", "department")),
)

register(*OBJECT_TYPES)
