"""List a collection as Xero does: filters, If-Modified-Since, where/order, paging.

Supported ``where`` subset: comparisons ``== != > >= < <=`` of a (dotted) field with a
string, number, ``true``/``false``/``null``, ``Guid("…")`` or ``DateTime(y,m,d[,h,m,s])``;
``Field.Contains("…")``, ``.StartsWith``, ``.EndsWith``; ``&&``, ``||`` (``&&`` binds
tighter) and parentheses. String comparisons ignore case [I]. ``order`` takes
``Field [ASC|DESC]`` items separated by commas; ties fall back to the default order
(UpdatedDateUTC, then the record id). Parameter names are matched case-insensitively [I].
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from .dates import ms_of
from .resources import Resource
from .store import Organisation, XRecord


class QueryError(Exception):
    """A ``where``/``order`` Xero would reject: answered as 400 ValidationException."""


class TooManyIds(Exception):
    """An over-long IDs list: Xero answers 404 (a URL-length limit)."""


_TOKEN = re.compile(r'\s*(?:(\|\||&&|==|!=|>=|<=|>|<|\(|\)|,|\.)|("(?:[^"\\]|\\.)*")'
                    r'|([A-Za-z_][A-Za-z0-9_]*)|(-?\d+(?:\.\d+)?))')
_METHODS = {"contains": lambda a, b: b in a, "startswith": lambda a, b: a.startswith(b),
            "endswith": lambda a, b: a.endswith(b)}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
Predicate = Callable[[dict[str, Any]], bool]


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"cannot parse where near {text[pos:pos + 20]!r}")
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks, self.i = _tokens(text), 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise QueryError(f"expected {expected or 'a token'} in where, found {tok!r}")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.expr()
        if self.peek() is not None:
            raise QueryError(f"unexpected {self.peek()!r} in where")
        return pred

    def expr(self) -> Predicate:
        parts = [self.conj()]
        while self.peek() == "||":
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else (lambda d: any(p(d) for p in parts))

    def conj(self) -> Predicate:
        parts = [self.atom()]
        while self.peek() == "&&":
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else (lambda d: all(p(d) for p in parts))

    def atom(self) -> Predicate:
        if self.peek() == "(":
            self.take()
            pred = self.expr()
            self.take(")")
            return pred
        path = [self.ident()]
        while self.peek() == ".":
            self.take()
            name = self.ident()
            if name.lower() in _METHODS and self.peek() == "(":
                self.take()
                arg = self.value()
                self.take(")")
                method = _METHODS[name.lower()]
                return lambda d, p=tuple(path): isinstance(v := _field(d, p), str) and method(v.lower(), str(arg).lower())
            path.append(name)
        op = self.take()
        if op not in _COMPARE:
            raise QueryError(f"unsupported operator {op!r} in where")
        value, compare = self.value(), _COMPARE[op]
        return lambda d, p=tuple(path): _compare(_field(d, p), value, compare, op)

    def ident(self) -> str:
        tok = self.take()
        if not re.match(r"^[A-Za-z_]", tok):
            raise QueryError(f"expected a field name in where, found {tok!r}")
        return tok

    def value(self) -> Any:
        tok = self.take()
        if tok.startswith('"'):
            return re.sub(r"\\(.)", r"\1", tok[1:-1])
        low = tok.lower()
        if low in ("true", "false"):
            return low == "true"
        if low == "null":
            return None
        if low == "guid":
            self.take("(")
            text = self.value()
            self.take(")")
            return str(text).lower()
        if low == "datetime":
            self.take("(")
            nums = [int(self.take())]
            while self.peek() == ",":
                self.take()
                nums.append(int(self.take()))
            self.take(")")
            return _DateValue(int(datetime(*nums, tzinfo=timezone.utc).timestamp() * 1000))
        try:
            return float(tok)
        except ValueError:
            raise QueryError(f"unexpected {tok!r} in where") from None


class _DateValue(int):
    """A DateTime(...) literal: compared with a .NET date field by its ms."""


def _field(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for name in path:
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == name.lower()), None)
    return value


def _compare(field: Any, value: Any, compare: Callable[[Any, Any], bool], op: str) -> bool:
    if value is None or field is None:
        return compare(field is None, value is None) if op in ("==", "!=") else False
    if isinstance(value, _DateValue):
        ms = ms_of(field) if isinstance(field, str) else None
        return ms is not None and compare(ms, int(value))
    if isinstance(value, bool) or isinstance(field, bool):
        return compare(field, value) if isinstance(field, bool) and isinstance(value, bool) else op == "!="
    if isinstance(value, float):
        return isinstance(field, (int, float)) and compare(float(field), value)
    return compare(str(field).lower(), str(value).lower())


def parse_where(text: str) -> Predicate:
    """Compile a ``where`` expression into a predicate over a record's JSON."""
    return _Parser(text).parse()


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value)
    if isinstance(value, str):
        ms = ms_of(value)
        return (1, ms) if ms is not None else (2, value.lower())
    return (3, str(value))


def _order(rows: list[XRecord], text: str) -> list[XRecord]:
    items = [part.split() for part in text.split(",") if part.strip()]
    # Stable sorts from the last key to the first give the combined order.
    for item in reversed(items):
        if len(item) > 2 or (len(item) == 2 and item[1].upper() not in ("ASC", "DESC")):
            raise QueryError(f"cannot order by {' '.join(item)!r}")
        path = tuple(item[0].split("."))
        rows.sort(key=lambda r, p=path: _sort_key(_field(r.data, p)), reverse=len(item) == 2 and
                  item[1].upper() == "DESC")
    return rows


def _csv(args: Mapping[str, str], name: str) -> list[str] | None:
    raw = args.get(name.lower())
    return [v.strip() for v in raw.split(",") if v.strip()] if raw else None


def list_records(org: Organisation, res: Resource, args: Mapping[str, str], ims: float | None,
                 default_page_size: int, max_page_size: int, max_ids: int
                 ) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    """Return the records a list call answers, and the pagination object of a paged call.

    ``args`` has lower-cased names. ``ims`` is epoch seconds: records updated in that
    second or later are returned (the boundary second is included [I]).
    """
    rows: Iterable[XRecord] = org.tables[res.name].values()
    if res.hidden_unless_archived and args.get("includearchived", "").lower() != "true":
        rows = [r for r in rows if r.data.get(res.status_field or "") != res.hidden_unless_archived]
    if ims is not None and res.ims:
        cutoff = math.floor(ims)
        rows = [r for r in rows if r.updated_ms // 1000 >= cutoff]
    ids = _csv(args, "IDs")
    if ids is not None:
        if len(ids) > max_ids:
            raise TooManyIds()
        wanted = {i.lower() for i in ids}
        rows = [r for r in rows if str(r.data.get(res.id_field, "")).lower() in wanted]
    filters = (("Statuses", (res.status_field,)), ("ContactIDs", ("Contact", "ContactID")),
               ("InvoiceNumbers", (res.number_field,) if res.number_field else None))
    for name, path in filters:
        values = _csv(args, name)
        if values is not None and path and path[0]:
            wanted = {v.lower() for v in values}
            rows = [r for r in rows if str(_field(r.data, path) or "").lower() in wanted]
    if args.get("where"):
        pred = parse_where(args["where"])
        rows = [r for r in rows if pred(r.data)]
    ordered = sorted(rows, key=lambda r: (r.updated_ms, str(r.data.get(res.id_field))) if res.has_updated
                     else (r.seq,))
    if args.get("order"):
        ordered = _order(ordered, args["order"])
    pagination = None
    paged = res.paged and args.get("page") is not None
    if paged:
        page = max(_int(args.get("page"), 1), 1)
        size = min(max(_int(args.get("pagesize"), default_page_size), 1), max_page_size)
        pagination = {"page": page, "pageSize": size, "pageCount": math.ceil(len(ordered) / size),
                      "itemCount": len(ordered)}
        ordered = ordered[(page - 1) * size: page * size]
    out = [r.data for r in ordered]
    if res.lines_key and not paged:
        # Unpaged list calls answer a summary without line items.
        out = [{k: v for k, v in d.items() if k != res.lines_key} for d in out]
    return out, pagination


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
