"""Execute parsed queries against a company's tables using index slices."""
from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable

from .clock import parse_timestamp
from .entities import ENTITIES
from .querylang import Predicate, Query, parse_error, validation_error
from .store import Company, EntityTable, Record

_INF = float("inf")


def _text(path: tuple[str, ...]) -> Callable[[Record], Any]:
    def get(rec: Record) -> Any:
        v: Any = rec.data
        for p in path:
            if not isinstance(v, dict):
                return None
            v = v.get(p)
        return v.casefold() if isinstance(v, str) else v
    return get


def _number(path: tuple[str, ...]) -> Callable[[Record], Any]:
    get = _text(path)
    return lambda rec: None if get(rec) is None else float(get(rec))


# property (lower case) -> (kind, getter); kind drives value conversion.
_COMMON: dict[str, tuple[str, Callable[[Record], Any]]] = {
    "id": ("id", lambda r: r.id),
    "metadata.createtime": ("time", lambda r: r.create_time),
    "metadata.lastupdatedtime": ("time", lambda r: r.updated_time),
}
SCHEMA: dict[str, dict[str, tuple[str, Callable[[Record], Any]]]] = {
    "Customer": {
        **_COMMON,
        "active": ("bool", lambda r: r.active),
        "displayname": ("text", _text(("DisplayName",))),
        "givenname": ("text", _text(("GivenName",))),
        "familyname": ("text", _text(("FamilyName",))),
        "companyname": ("text", _text(("CompanyName",))),
        "primaryemailaddr": ("text", _text(("PrimaryEmailAddr", "Address"))),
        "balance": ("number", _number(("Balance",))),
    },
    "Invoice": {
        **_COMMON,
        "docnumber": ("text", _text(("DocNumber",))),
        "txndate": ("text", _text(("TxnDate",))),
        "duedate": ("text", _text(("DueDate",))),
        "customerref": ("text", _text(("CustomerRef", "value"))),
        "totalamt": ("number", _number(("TotalAmt",))),
        "balance": ("number", _number(("Balance",))),
    },
}
_NUMBERS = {"TotalAmt", "Balance", "UnitPrice", "RateValue", "Amount", "CurrentBalance", "DueDays",
            "RemainingCredit", "UnappliedAmt"}
_BOOLS = {"Adjustment"}
_ACTIVE = ("bool", lambda r: r.active)


def _bool(path: tuple[str, ...]) -> Callable[[Record], Any]:
    get = _text(path)
    return lambda rec: None if get(rec) is None else bool(get(rec))


def _property(name: str) -> tuple[str, Callable[[Record], Any]]:
    """Type a declared queryable property: an ...Ref filters on its value."""
    if name.endswith("Ref"):
        return "text", _text((name, "value"))
    if name in _NUMBERS:
        return "number", _number((name,))
    if name in _BOOLS:
        return "bool", _bool((name,))
    return "text", _text((name,))


# The other entities get their declared properties (Customer and Invoice keep their own above).
for _e in ENTITIES:
    if _e.name not in SCHEMA:
        SCHEMA[_e.name] = {**_COMMON, **{p.lower(): _property(p) for p in _e.queryable}}
        if _e.active:
            SCHEMA[_e.name]["active"] = _ACTIVE

INDEXED = {"id", "metadata.createtime", "metadata.lastupdatedtime"}
_INDEX_NAME = {"id": "id", "metadata.createtime": "createtime", "metadata.lastupdatedtime": "lastupdatedtime"}


def schema_for(entity: str, has_active: bool = False) -> dict[str, tuple[str, Callable[[Record], Any]]]:
    """Return an entity's queryable properties (an added entity has those every entity has, and Active)."""
    schema = SCHEMA.get(entity, _COMMON)
    if has_active and "active" not in schema:
        schema = {**schema, "active": _ACTIVE}
    return schema


def canonical_entity(name: str, company: Company) -> str:
    """Map a case-insensitive entity name to its canonical form or raise 4000."""
    for e in company.tables:
        if e.lower() == name.lower():
            return e
    raise parse_error(f"Invalid entity: {name}")


@dataclass
class Result:
    """Carry either a count or a page of records."""

    entity: str
    count: int | None = None
    rows: list[Record] | None = None
    start: int = 1


class _Bound:
    """Compiled predicate: property, operator, converted value, getter."""

    def __init__(self, prop: str, op: str, value: Any, get: Callable[[Record], Any]) -> None:
        self.prop, self.op, self.value, self.get = prop, op, value, get
        if op == "like":
            pattern = re.escape(str(value)).replace("%", ".*")
            self.regex = re.compile(pattern, re.I | re.S)

    def test(self, rec: Record) -> bool:
        v = self.get(rec)
        if v is None:
            return False
        op, x = self.op, self.value
        if op == "=":
            return v == x
        if op == "in":
            return v in x
        if op == "like":
            return bool(self.regex.fullmatch(str(v)))
        if op == "<":
            return v < x
        if op == ">":
            return v > x
        if op == "<=":
            return v <= x
        return v >= x


def _convert(kind: str, prop: str, raw: Any, tz: int) -> Any:
    try:
        if kind == "id":
            return int(str(raw))
        if kind == "time":
            return parse_timestamp(str(raw), tz)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "false"):
                return str(raw).lower() == "true"
            raise ValueError(raw)
        if kind == "number":
            return float(raw)
        return str(raw).casefold()
    except (TypeError, ValueError):
        raise parse_error(f"Invalid value {raw!r} for property {prop}") from None


def compile_where(entity: str, where: list[Predicate], tz: int, has_active: bool = False) -> list[_Bound]:
    """Validate properties/operators (4001) and convert literal values (4000)."""
    schema = schema_for(entity, has_active)
    bounds = []
    for p in where:
        key = p.prop.lower()
        if key not in schema:
            raise validation_error(f"Property {p.prop} not found for Entity {entity}")
        kind, get = schema[key]
        if kind == "id" and p.op not in ("=", "in"):
            raise validation_error(f"Operator {p.op} not supported for property Id")
        if kind == "bool" and p.op not in ("=", "in"):
            raise validation_error(f"Operator {p.op} not supported for property {p.prop}")
        if p.op == "like" and kind != "text":
            raise validation_error(f"Operator LIKE not supported for property {p.prop}")
        if p.op == "in":
            value: Any = {_convert(kind, p.prop, v, tz) for v in p.value}
        else:
            value = _convert(kind, p.prop, p.value, tz)
        bounds.append(_Bound(key, p.op, value, get))
    return bounds


def _always_true(b: _Bound) -> bool:
    """Whether a predicate holds for every record: ``Active IN (true, false)``.

    The service's backfill asks every name-list page with it (to include inactive
    records); dropping it keeps the page an index slice instead of a scan of the table.
    """
    return b.prop == "active" and b.op == "in" and b.value >= {True, False}


def execute(company: Company, q: Query, default_max: int, cap: int, use_indexes: bool = True) -> Result:
    """Run a query: index slice when possible, filter and sort otherwise.

    ``use_indexes=False`` always filters and sorts the whole table: the plain reference
    the indexed paths are tested against.
    """
    entity = canonical_entity(q.entity, company)
    table: EntityTable = company.tables[entity]
    bounds = compile_where(entity, q.where, company.offset_minutes, table.has_active)
    schema = schema_for(entity, table.has_active)
    order = []
    for prop, desc in q.order:
        key = prop.lower()
        if key not in schema:
            raise validation_error(f"Property {prop} not found for Entity {entity}")
        order.append((key, desc))
    if not order:
        # Intuit does not document its default order; Id ascending keeps paging stable.
        order = [("id", False)]

    # Name lists default to active records unless Active is mentioned.
    active_only = table.has_active and not any(b.prop == "active" for b in bounds)
    if table.has_active:
        for b in bounds:
            if b.prop == "active" and (b.op == "=" and b.value is True):
                active_only = True
    max_results = default_max if q.max_results is None else q.max_results
    max_results = max(0, min(max_results, cap))  # Intuit caps (rather than rejects) above 1000 [I].
    skip = q.start - 1

    id_filter = next((b for b in bounds if b.prop == "id"), None)
    primary, primary_desc = order[0]
    simple_order = len(order) == 1 or (order[1] == ("id", False))
    if use_indexes and id_filter is None and primary in INDEXED and simple_order:
        lst = table.index(_INDEX_NAME[primary], primary_desc, active_only)
        lo, hi = 0, len(lst)
        rest = []
        for b in bounds:
            if b.prop == primary and b.op in ("=", "<", ">", "<=", ">="):
                lo, hi = _narrow(lst, lo, hi, b.op, b.value, primary_desc)
            elif not (active_only and b.prop == "active") and not _always_true(b):
                rest.append(b)
        if not rest:
            if q.count:
                return Result(entity, count=max(0, hi - lo))
            a = lo + skip
            b_ = min(hi, a + max_results)
            rows = [table.records[i] for _, i in lst[a:b_]] if a < b_ else []
            return Result(entity, rows=rows, start=q.start)
        candidates = (table.records[lst[k][1]] for k in range(lo, hi))
        matching = (r for r in candidates if all(b.test(r) for b in rest))
        if q.count:
            return Result(entity, count=sum(1 for _ in matching))
        # Already in order: stop at the last row of the page instead of filtering the rest.
        return Result(entity, rows=list(islice(matching, skip, skip + max_results)), start=q.start)
    else:
        if id_filter is not None:
            ids = id_filter.value if id_filter.op == "in" else {id_filter.value}
            pool = [table.records[i] for i in ids if i in table.records]
        else:
            pool = list(table.records.values())
        matched = [r for r in pool if (not active_only or r.active) and all(b.test(r) for b in bounds)]
        matched.sort(key=lambda r: r.id)
        for prop, desc in reversed(order):
            get = schema[prop][1]
            # None sorts last ascending; stable sorts keep Id ascending on ties.
            matched.sort(key=lambda r, g=get: (g(r) is None, g(r) if g(r) is not None else 0), reverse=desc)
    if q.count:
        return Result(entity, count=len(matched))
    return Result(entity, rows=matched[skip: skip + max_results], start=q.start)


def _narrow(lst: list[tuple[int, int]], lo: int, hi: int, op: str, value: float, desc: bool) -> tuple[int, int]:
    """Shrink [lo, hi) of a sorted (key, id) list to rows satisfying `field op value`."""
    if desc:
        # Keys are negated: v > x  <=>  k < -x, and so on.
        value = -value
        op = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "="}[op]
    left = lambda x: bisect_left(lst, (x,), lo, hi)  # first k >= x
    right = lambda x: bisect_left(lst, (x, _INF), lo, hi)  # first k > x
    if op == "=":
        return left(value), right(value)
    if op == ">":
        return right(value), hi
    if op == ">=":
        return left(value), hi
    if op == "<":
        return lo, left(value)
    return lo, right(value)
