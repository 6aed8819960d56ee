"""Parse the subset of Intuit's query language the simulator serves."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class QueryError(Exception):
    """Carry an Intuit query fault: 4000 (parse) or 4001 (validation)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.message = "Error parsing query" if code == "4000" else "Invalid query"
        self.detail = detail


def parse_error(detail: str) -> QueryError:
    """Build a 4000 QueryParserError."""
    return QueryError("4000", f"QueryParserError: {detail}")


def validation_error(detail: str) -> QueryError:
    """Build a 4001 QueryValidationError."""
    return QueryError("4001", f"QueryValidationError: {detail}")


@dataclass
class Predicate:
    """Represent `<prop> <op> <value>`; value is a list for IN."""

    prop: str
    op: str
    value: Any


@dataclass
class Query:
    """Represent a parsed statement."""

    entity: str
    count: bool = False
    where: list[Predicate] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (prop, descending)
    start: int = 1
    max_results: int | None = None


@dataclass
class Token:
    kind: str  # word, string, number, op, punct, eof
    text: str
    value: Any
    col: int


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:\\.|[^'\\])*')
    | (?P<number>-?\d+(?:\.\d+)?)(?![\w.])
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),*])
    | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.X,
)


def tokenize(text: str) -> list[Token]:
    """Split a statement into tokens, raising a 4000 fault on junk."""
    tokens: list[Token] = []
    pos = 0
    text = text.rstrip().rstrip(";")
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            col = pos + 1 + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise parse_error(f'Encountered "{text[col - 1:col]}" at line 1, column {col}.')
        kind = m.lastgroup or "word"
        raw = m.group(kind)
        col = m.start(kind) + 1
        if kind == "string":
            value: Any = re.sub(r"\\(.)", r"\1", raw[1:-1])
        elif kind == "number":
            value = float(raw) if "." in raw else int(raw)
        else:
            value = raw
        tokens.append(Token(kind, raw, value, col))
        pos = m.end()
    tokens.append(Token("eof", "<EOF>", None, len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: Token | None = None) -> QueryError:
        tok = tok or self.peek()
        return parse_error(f'Encountered " {tok.text} " at line 1, column {tok.col}.')

    def is_kw(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.lower() in words

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise self.fail()
        self.next()

    def expect_punct(self, ch: str) -> None:
        tok = self.peek()
        if tok.kind != "punct" or tok.text != ch:
            raise self.fail()
        self.next()

    def integer(self) -> int:
        tok = self.next()
        if tok.kind != "number" or not isinstance(tok.value, int):
            raise self.fail(tok)
        return tok.value

    def value(self) -> Any:
        tok = self.next()
        if tok.kind in ("string", "number"):
            return tok.value
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            return tok.text.lower() == "true"
        raise self.fail(tok)

    def parse(self) -> Query:
        self.expect_kw("select")
        count = False
        if self.peek().kind == "punct" and self.peek().text == "*":
            self.next()
        elif self.is_kw("count"):
            self.next()
            self.expect_punct("(")
            self.expect_punct("*")
            self.expect_punct(")")
            count = True
        else:
            # Intuit ignores projections in practice; we only accept * and COUNT(*).
            raise self.fail()
        self.expect_kw("from")
        ent = self.next()
        if ent.kind != "word":
            raise self.fail(ent)
        q = Query(entity=ent.text, count=count)
        if self.is_kw("where"):
            self.next()
            q.where.append(self.predicate())
            while self.is_kw("and"):
                self.next()
                q.where.append(self.predicate())
        if self.is_kw("orderby", "order"):
            if self.next().text.lower() == "order":
                self.expect_kw("by")
            q.order.append(self.order_item())
            while self.peek().kind == "punct" and self.peek().text == ",":
                self.next()
                q.order.append(self.order_item())
        seen: set[str] = set()
        while self.is_kw("startposition", "maxresults") and self.peek().text.lower() not in seen:
            word = self.next().text.lower()
            seen.add(word)
            n = self.integer()
            if word == "startposition":
                q.start = max(1, n)  # Intuit treats positions below 1 as the first row.
            else:
                q.max_results = n
        if self.peek().kind != "eof":
            raise self.fail()
        return q

    def predicate(self) -> Predicate:
        prop = self.next()
        if prop.kind != "word":
            raise self.fail(prop)
        if self.is_kw("in"):
            self.next()
            self.expect_punct("(")
            values = [self.value()]
            while self.peek().kind == "punct" and self.peek().text == ",":
                self.next()
                values.append(self.value())
            self.expect_punct(")")
            return Predicate(prop.text, "in", values)
        if self.is_kw("like"):
            self.next()
            return Predicate(prop.text, "like", self.value())
        op = self.next()
        if op.kind != "op" or op.text in ("!=", "<>"):
            # Intuit's grammar has no inequality operator.
            raise self.fail(op)
        return Predicate(prop.text, op.text, self.value())

    def order_item(self) -> tuple[str, bool]:
        prop = self.next()
        if prop.kind != "word":
            raise self.fail(prop)
        desc = False
        if self.is_kw("asc", "desc"):
            desc = self.next().text.lower() == "desc"
        return prop.text, desc


def parse(text: str) -> Query:
    """Parse a statement or raise QueryError."""
    if not text or not text.strip():
        raise parse_error('Encountered "<EOF>" at line 1, column 1.')
    return _Parser(text).parse()
