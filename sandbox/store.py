"""Keep each company's records, their cached JSON and sorted indexes."""
from __future__ import annotations

import json
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from .entities import ENTITIES as ENTITY_DEFS

ENTITIES = tuple(e.name for e in ENTITY_DEFS)
# Listed in a company's summary even when empty (the classic pair the demo prints).
ALWAYS_LISTED = ("Customer", "Invoice")
INDEXED_FIELDS = ("id", "createtime", "lastupdatedtime")


@dataclass(slots=True)
class Record:
    """Hold one entity version plus its pre-serialised JSON bytes."""

    entity: str
    id: int
    data: dict[str, Any]
    create_time: int
    updated_time: int
    active: bool = True
    _json: bytes | None = None

    def json(self) -> bytes:
        """Serialise once per version: pages are built by joining these bytes.

        A version is never changed in place once served (a change stores a new Record),
        so the bytes stay true; code that edits ``data`` before serving clears ``_json``.
        orjson writes what ``json.dumps(ensure_ascii=False, separators=(",", ":"))`` wrote
        (compact, UTF-8, keys in insertion order) about seven times faster.
        """
        if self._json is None:
            # Copied to an exact-size object: orjson's own result keeps its over-sized
            # write buffer's allocation (60,000 records held 470 MB instead of 75 MB).
            try:
                self._json = bytes(memoryview(orjson.dumps(self.data)))
            except orjson.JSONEncodeError:
                # An integer beyond 64 bits (a client may write one): the standard library takes it.
                self._json = json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self._json

    def sort_value(self, name: str) -> int:
        """Return the integer key of an indexed field."""
        if name == "id":
            return self.id
        if name == "createtime":
            return self.create_time
        return self.updated_time


Key = tuple[int, int]


class EntityTable:
    """Store one entity type of one company with always-sorted indexes.

    Every index holds (key, id) tuples where key is the field value (ascending) or
    its negation (descending), so ties are broken by Id ascending in both
    directions and a page is a slice of a list, never a sort.
    """

    def __init__(self, entity: str, has_active: bool) -> None:
        self.entity = entity
        self.has_active = has_active
        self.records: dict[int, Record] = {}
        self.deleted: dict[int, int] = {}  # id -> deletion time (CDC tombstones)
        self.next_id = 1
        self._indexes: dict[tuple[str, bool, bool], list[Key]] = {}
        self._reset_indexes()

    def _reset_indexes(self) -> None:
        self._indexes = {
            (f, desc, active): [] for f in INDEXED_FIELDS for desc in (False, True) for active in (False, True)
        }

    def _keys(self, rec: Record) -> Iterable[tuple[tuple[str, bool, bool], Key]]:
        for f in INDEXED_FIELDS:
            v = rec.sort_value(f)
            for desc in (False, True):
                key = (-v if desc else v, rec.id)
                yield (f, desc, False), key
                if rec.active:
                    yield (f, desc, True), key

    def bulk_load(self, records: list[Record]) -> None:
        """Load many records and sort the indexes once."""
        for rec in records:
            self.records[rec.id] = rec
            self.next_id = max(self.next_id, rec.id + 1)
        self._reset_indexes()
        for rec in self.records.values():
            for name, key in self._keys(rec):
                self._indexes[name].append(key)
        for lst in self._indexes.values():
            lst.sort()

    def put(self, rec: Record) -> None:
        """Insert or replace a record, keeping indexes sorted."""
        old = self.records.get(rec.id)
        if old is not None:
            self._unindex(old)
        self.records[rec.id] = rec
        self.next_id = max(self.next_id, rec.id + 1)
        for name, key in self._keys(rec):
            insort(self._indexes[name], key)

    def remove(self, rec_id: int, when: int) -> Record:
        """Hard-delete a record and leave a tombstone for CDC."""
        rec = self.records.pop(rec_id)
        self._unindex(rec)
        self.deleted[rec_id] = when
        return rec

    def _unindex(self, rec: Record) -> None:
        for name, key in self._keys(rec):
            lst = self._indexes[name]
            i = bisect_left(lst, key)
            if i < len(lst) and lst[i] == key:
                del lst[i]

    def prerender(self) -> None:
        """Serialise every record now, so that no page pays for its first render."""
        for rec in self.records.values():
            rec.json()

    def index(self, name: str, desc: bool, active_only: bool) -> list[Key]:
        """Return the sorted (key, id) list for a field, direction and partition."""
        return self._indexes[(name, desc, active_only and self.has_active)]


@dataclass
class Company:
    """Describe one simulated QuickBooks company (realm)."""

    realm_id: str
    name: str
    offset_minutes: int
    country: str = "US"
    currency: str = "USD"
    tables: dict[str, EntityTable] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tables:
            # Customer and Invoice first (the classic pair), then the other entities: every one
            # is queryable from the start, empty until generated or created.
            first = [e for e in ENTITY_DEFS if e.name in ALWAYS_LISTED]
            rest = [e for e in ENTITY_DEFS if e.name not in ALWAYS_LISTED]
            self.tables = {e.name: EntityTable(e.name, e.active) for e in first + rest}

    def summary(self) -> dict[str, Any]:
        """Describe the company for the consent page and the admin API."""
        # Empty entities are left out (beyond the classic pair) so the default data's summary is unchanged.
        shown = {e: t for e, t in self.tables.items() if e in ALWAYS_LISTED or t.records or t.deleted}
        return {
            "realmId": self.realm_id,
            "name": self.name,
            "offset_minutes": self.offset_minutes,
            "currency": self.currency,
            "counts": {e: len(t.records) for e, t in shown.items()},
            "deleted": {e: len(t.deleted) for e, t in shown.items()},
        }
