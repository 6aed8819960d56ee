"""Object types declared as data: what to query, which typed columns a record fills, what it links to.

A spec names the entity, its typed columns (``Field`` and ``Ref``) and how it is kept
fresh; its table, its row mapping and its place in the sync order are derived from
that. Adding an object type means one spec and its registration (``sync.objects``
holds QuickBooks' own) plus a migration creating its table; the engine, the dashboard
and the CLI read the registry and need nothing else. A type syncs after every type it
references (``Ref`` columns, and ``after`` for references inside its lines).
"""
from __future__ import annotations

import graphlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from .errors import BadData
from .timestamps import parse_qbo_time

Row = dict[str, Any]

# How a type is kept fresh once backfilled.
CDC = "cdc"                  # in the one Change Data Capture call of each cycle
DAILY_QUERY = "daily query"  # no CDC: a LastUpdatedTime query once a day (deletes: Id reconciliation)
DAILY_READ = "daily read"    # no CDC, a small reference list: read whole once a day

# Kinds of typed column; the models layer maps each to a column type.
TEXT, CODE, DATE, AMOUNT, NUMBER, INT, BOOL = "text", "code", "date", "amount", "number", "int", "bool"


@dataclass(frozen=True)
class Field:
    """A typed column filled from a path in the record's JSON (``("CurrencyRef", "value")``)."""

    column: str
    path: tuple[str, ...]
    kind: str = TEXT
    default: Any = None  # when the record leaves the field out (``Active``: true)


@dataclass(frozen=True)
class Ref:
    """A reference to another type's record: ``<name>_source_id`` and the foreign key ``<name>_id``."""

    name: str
    key: str        # Intuit's reference object: "CustomerRef"
    target: str     # the referenced object type

    @property
    def source_column(self) -> str:
        return f"{self.name}_source_id"

    @property
    def fk_column(self) -> str:
        return f"{self.name}_id"


def _get(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _convert(value: Any, kind: str, what: str) -> Any:
    """Turn a JSON value into the column's Python value; BadData names the record."""
    try:
        if kind in (TEXT, CODE):
            return str(value)
        if kind == DATE:
            return date.fromisoformat(str(value)[:10])
        if kind == AMOUNT:
            return Decimal(str(value)).quantize(Decimal("0.01"))
        if kind == NUMBER:
            return Decimal(str(value))
        if kind == INT:
            return int(value)
        if kind == BOOL:
            return value is not False and str(value).lower() != "false"
    except (ValueError, TypeError, InvalidOperation):
        raise BadData(f"Intuit sent {what} {value!r}") from None
    raise ValueError(f"unknown column kind {kind!r}")


@dataclass(frozen=True)
class EntitySpec:
    name: str                      # our object_type: "customer"
    entity: str                    # Intuit's entity name: "Customer"
    table: str                     # our table
    to_row: Callable[[Mapping[str, Any]], Row] | None = None  # derived from the columns when None
    # WHERE terms every query carries (name lists: inactive ones too, or they vanish).
    filters: tuple[str, ...] = ()
    # Intuit hard-deletes these (CDC tombstones, or an Id reconciliation after 30 days).
    deletable: bool = False
    # Links to fill once the referenced row exists: (our column with the source id,
    # our foreign key column, referenced spec name). Derived from ``Ref`` columns.
    links: tuple[tuple[str, str, str], ...] = field(default=())
    columns: tuple[Field | Ref, ...] = ()
    after: tuple[str, ...] = ()    # types referenced inside lines: synced first, not linked
    refresh: str = CDC
    group: str = "other"           # where the dashboard lists it
    label: str = ""                # "Journal entries"; derived from the entity when empty

    def __post_init__(self) -> None:
        refs = tuple((c.source_column, c.fk_column, c.target) for c in self.columns if isinstance(c, Ref))
        object.__setattr__(self, "links", tuple(dict.fromkeys(self.links + refs)))
        if self.to_row is None:
            object.__setattr__(self, "to_row", self._map)
        if not self.label:
            object.__setattr__(self, "label", plural(self.entity))

    @property
    def has_active(self) -> bool:
        return any(isinstance(c, Field) and c.column == "active" for c in self.columns)

    def _map(self, obj: Mapping[str, Any]) -> Row:
        row = source_fields(obj, self.entity)
        for column in self.columns:
            if isinstance(column, Ref):
                value = _get(obj, (column.key, "value"))
                row[column.source_column] = None if value in (None, "") else str(value)
            else:
                value = _get(obj, column.path)
                row[column.column] = column.default if value in (None, "") else _convert(
                    value, column.kind, f"{self.entity} {row['source_id']} with {'.'.join(column.path)}")
        return row


def plural(entity: str) -> str:
    """Return a person's words for an entity's records: "JournalEntry" -> "Journal entries"."""
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in entity).strip()
    if words.endswith("y") and words[-2:-1] not in "aeiou":
        words = words[:-1] + "ie"
    elif words.endswith("s"):
        words += "e"
    return words[0].upper() + words[1:] + "s"


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
    targets = {name: set(depends_on(spec)) for name, spec in specs.items()}
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


def depends_on(spec: EntitySpec) -> list[str]:
    """Return the types ``spec`` is synced after: those its rows link to and its lines name."""
    return [name for name in dict.fromkeys([*(target for _, _, target in spec.links), *spec.after])
            if name != spec.name]


def dependents(name: str) -> list[EntitySpec]:
    """Return the types synced after ``name``, directly or through others, in sync order."""
    found = {name}
    for spec in SPECS.values():  # sync order: a type's targets come before it
        if any(target in found for target in depends_on(spec)):
            found.add(spec.name)
    return [spec for spec in SPECS.values() if spec.name in found and spec.name != name]


def ordered(names: list[str] | tuple[str, ...] | None = None) -> list[EntitySpec]:
    """Return the specs for ``names`` (all when None) in sync order; KeyError for an unknown name."""
    if names is None:
        return list(SPECS.values())
    wanted = {SPECS[n].name for n in names}
    return [spec for spec in SPECS.values() if spec.name in wanted]


