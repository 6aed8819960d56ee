"""QuickBooks object types declared as data: what to query and how a record becomes a row.

Adding an object type means one spec here (registered with the others below), its table
(with the columns its ``to_row`` returns) and a migration; the engine, the dashboard and
the CLI read the registry and need nothing else. The sync order is derived from the
specs' links: a type syncs after every type it links to.
"""
from __future__ import annotations

import graphlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
    to_row: Callable[[Mapping[str, Any]], Row]
    # WHERE terms every query carries (customers: inactive ones too, or they vanish).
    filters: tuple[str, ...] = ()
    # Intuit hard-deletes these (CDC tombstones, or an Id reconciliation after 30 days).
    deletable: bool = False
    # Links to fill once the referenced row exists: (our column with the source id,
    # our foreign key column, referenced spec name).
    links: tuple[tuple[str, str, str], ...] = field(default=())


def source_fields(obj: Mapping[str, Any], entity: str) -> Row:
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
    row = source_fields(obj, "Customer")
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
    row = source_fields(obj, "Invoice")
    total = obj.get("TotalAmt")
    try:
        amount = None if total is None else Decimal(str(total)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise BadData(f"Intuit sent Invoice {row['source_id']} with TotalAmt {total!r}") from None
    row.update(customer_source_id=_ref_value(obj, "CustomerRef"), doc_number=obj.get("DocNumber"),
               txn_date=obj.get("TxnDate"), total_amt=amount, currency=_ref_value(obj, "CurrencyRef"))
    return row


CUSTOMER = EntitySpec(name="customer", entity="Customer", table="customer",
                      to_row=customer_row, filters=("Active IN (true, false)",))
INVOICE = EntitySpec(name="invoice", entity="Invoice", table="invoice",
                     to_row=invoice_row, deletable=True,
                     links=(("customer_source_id", "customer_id", "customer"),))

# Every registered object type, in sync order, and the same by Intuit's entity name.
# Filled in place (modules hold these very dicts), by ``register`` and ``unregister`` only.
SPECS: dict[str, EntitySpec] = {}
BY_ENTITY: dict[str, EntitySpec] = {}


class SpecError(ValueError):
    """The specs cannot be registered: a duplicate, a link to an unknown type, or a cycle."""


def sync_order(specs: Mapping[str, EntitySpec]) -> list[EntitySpec]:
    """Order ``specs`` so each comes after every type it links to; raise SpecError on a cycle.

    Types whose links are all satisfied at the same step come in order of name, so the
    order is stable. A link to itself (a customer's parent customer) does not constrain
    the order: such links are filled once the scan is done.
    """
    targets = {name: {t for _, _, t in spec.links if t != name} for name, spec in specs.items()}
    for name, linked in targets.items():
        unknown = linked - specs.keys()
        if unknown:
            raise SpecError(f"Object type {name!r} links to unknown type(s): {', '.join(sorted(unknown))}")
    sorter = graphlib.TopologicalSorter(targets)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise SpecError(f"The links of these object types form a cycle: {' -> '.join(exc.args[1])}") from None
    order: list[EntitySpec] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(specs[name] for name in ready)
        sorter.done(*ready)
    return order


def _install(specs: Mapping[str, EntitySpec]) -> None:
    """Check ``specs`` as a whole, then make them the registry (nothing changes on an error)."""
    order = sync_order(specs)
    for attribute in ("entity", "table"):
        values = [getattr(spec, attribute) for spec in order]
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise SpecError(f"Object types share the {attribute} {', '.join(duplicates)}")
    SPECS.clear()
    SPECS.update((spec.name, spec) for spec in order)
    BY_ENTITY.clear()
    BY_ENTITY.update((spec.entity, spec) for spec in order)


def register(*specs: EntitySpec) -> None:
    """Add object types to the registry, re-deriving the sync order; raise SpecError if they do not fit."""
    added = dict(SPECS)
    for spec in specs:
        if spec.name in added:
            raise SpecError(f"Object type {spec.name!r} is already registered")
        added[spec.name] = spec
    _install(added)


def unregister(*names: str) -> None:
    """Remove object types; raise SpecError if a remaining type still links to one of them."""
    _install({name: spec for name, spec in SPECS.items() if name not in names})


@contextmanager
def registered(*specs: EntitySpec) -> Iterator[None]:
    """Register ``specs`` for the length of a with-block (tests: a throw-away object type)."""
    register(*specs)
    try:
        yield
    finally:
        unregister(*(spec.name for spec in specs))


def dependents(name: str) -> list[EntitySpec]:
    """Return the types whose rows link to ``name``'s, directly or through others, in sync order."""
    found = {name}
    for spec in SPECS.values():  # sync order: a type's targets come before it
        if any(target in found for _, _, target in spec.links if target != spec.name):
            found.add(spec.name)
    return [spec for spec in SPECS.values() if spec.name in found and spec.name != name]


def ordered(names: list[str] | tuple[str, ...] | None = None) -> list[EntitySpec]:
    """Return the specs for ``names`` (all when None) in sync order; KeyError for an unknown name."""
    if names is None:
        return list(SPECS.values())
    wanted = {SPECS[n].name for n in names}
    return [spec for spec in SPECS.values() if spec.name in wanted]


register(CUSTOMER, INVOICE)
