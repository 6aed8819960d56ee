"""QuickBooks object types declared as data: what to query and how a record becomes a row.

Adding an object type means one spec here, its table (with the columns its ``to_row``
returns) and a migration; the engine needs nothing else.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from .errors import BadData
from .timestamps import parse_qbo_time

Row = dict[str, Any]


@dataclass(frozen=True)
class EntitySpec:
    name: str                      # our object_type: "customer"
    entity: str                    # Intuit's entity name: "Customer"
    table: str                     # our table
    priority: int                  # lower syncs first (invoices need their customers)
    to_row: Callable[[Mapping[str, Any]], Row]
    # WHERE terms every query carries (customers: inactive ones too, or they vanish).
    filters: tuple[str, ...] = ()
    # Intuit hard-deletes these (CDC tombstones, or an Id reconciliation after 30 days).
    deletable: bool = False
    # Links to fill once the referenced row exists: (our column with the source id,
    # our foreign key column, referenced spec name).
    links: tuple[tuple[str, str, str], ...] = field(default=())


def _source_fields(obj: Mapping[str, Any], entity: str) -> Row:
    """Map the fields every QuickBooks object shares; raise BadData naming the record."""
    source_id = obj.get("Id")
    if not isinstance(source_id, str) or not source_id:
        raise BadData(f"Intuit sent a {entity} without an Id: {str(obj)[:200]}")
    meta = obj.get("MetaData")
    if not isinstance(meta, Mapping):
        raise BadData(f"Intuit sent {entity} {source_id} without MetaData")
    try:
        sync_token = int(obj.get("SyncToken", 0))
    except (TypeError, ValueError):
        raise BadData(f"Intuit sent {entity} {source_id} with SyncToken {obj.get('SyncToken')!r}") from None
    return {
        "source_id": source_id,
        "sync_token": sync_token,
        "raw_data": dict(obj),
        "source_created_at": parse_qbo_time(meta.get("CreateTime"), f"{entity} {source_id} CreateTime"),
        "source_updated_at": parse_qbo_time(meta.get("LastUpdatedTime"), f"{entity} {source_id} LastUpdatedTime"),
        "is_deleted": False,
        "deleted_at": None,
    }


def customer_row(obj: Mapping[str, Any]) -> Row:
    """Map a QuickBooks Customer to a ``customer`` row."""
    row = _source_fields(obj, "Customer")
    active = obj.get("Active", True)
    row.update(display_name=obj.get("DisplayName"), active=active is not False)
    return row


def _ref_value(obj: Mapping[str, Any], key: str) -> str | None:
    ref = obj.get(key)
    if isinstance(ref, Mapping) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    return None


def invoice_row(obj: Mapping[str, Any]) -> Row:
    """Map a QuickBooks Invoice to an ``invoice`` row (its customer is linked by CustomerRef)."""
    row = _source_fields(obj, "Invoice")
    total = obj.get("TotalAmt")
    try:
        amount = None if total is None else Decimal(str(total)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise BadData(f"Intuit sent Invoice {row['source_id']} with TotalAmt {total!r}") from None
    row.update(customer_source_id=_ref_value(obj, "CustomerRef"), doc_number=obj.get("DocNumber"),
               txn_date=obj.get("TxnDate"), total_amt=amount, currency=_ref_value(obj, "CurrencyRef"))
    return row


CUSTOMER = EntitySpec(name="customer", entity="Customer", table="customer", priority=1,
                      to_row=customer_row, filters=("Active IN (true, false)",))
INVOICE = EntitySpec(name="invoice", entity="Invoice", table="invoice", priority=2,
                     to_row=invoice_row, deletable=True,
                     links=(("customer_source_id", "customer_id", "customer"),))

# Every synced object type, in sync order.
SPECS: dict[str, EntitySpec] = {s.name: s for s in sorted((CUSTOMER, INVOICE), key=lambda s: s.priority)}
BY_ENTITY: dict[str, EntitySpec] = {s.entity: s for s in SPECS.values()}


def dependents(name: str) -> list[EntitySpec]:
    """Return the specs whose rows link to ``name``'s rows (invoices depend on customers)."""
    return [s for s in SPECS.values() if any(target == name for _, _, target in s.links)]


def ordered(names: list[str] | tuple[str, ...] | None = None) -> list[EntitySpec]:
    """Return the specs for ``names`` (all when None) in dependency order."""
    chosen = SPECS if names is None else {n: SPECS[n] for n in names}
    return sorted(chosen.values(), key=lambda s: s.priority)
