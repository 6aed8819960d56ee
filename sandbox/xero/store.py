"""Keep each organisation's records in Xero's own JSON shape."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from .resources import RESOURCES

_seq = itertools.count(1)


@dataclass
class XRecord:
    """One record: its JSON (dates as .NET date text) and its update time in ms."""

    data: dict[str, Any]
    updated_ms: int
    seq: int = field(default_factory=lambda: next(_seq))  # insertion order, for lists without UpdatedDateUTC


@dataclass
class Organisation:
    """One Xero organisation (a tenant) and its collections, keyed by the records' ids."""

    tenant_id: str
    name: str
    created: float
    tables: dict[str, dict[str, XRecord]] = field(default_factory=lambda: {r.name: {} for r in RESOURCES})

    def put(self, resource: str, rec_id: str, data: dict[str, Any], updated_ms: int) -> XRecord:
        """Store a record version (a new object: served ones are never edited in place)."""
        old = self.tables[resource].get(rec_id)
        rec = XRecord(data, updated_ms, old.seq if old else next(_seq))
        self.tables[resource][rec_id] = rec
        return rec

    def summary(self) -> dict[str, Any]:
        """Describe the organisation with record counts."""
        return {"tenantId": self.tenant_id, "name": self.name,
                "counts": {name: len(rows) for name, rows in self.tables.items()}}
