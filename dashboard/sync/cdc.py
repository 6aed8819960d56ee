"""Read a Change Data Capture answer: per entity, changed records and deleted ids."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from .errors import BadData
from .timestamps import parse_qbo_time

CDC_MAX_OBJECTS = 1000


@dataclass
class EntityChanges:
    live: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[tuple[str, datetime]] = field(default_factory=list)  # (source id, deleted at)


@dataclass
class CdcResult:
    time: datetime | None
    changes: dict[str, EntityChanges]
    complete: set[str]  # entities whose changes are all here (not cut by the object cap)


def parse_cdc(body: Mapping[str, Any], entities: Sequence[str], cap: int = CDC_MAX_OBJECTS) -> CdcResult:
    """Split a CDC body by entity and tell which entities the 1,000-object cap may have cut.

    Entities come back in the requested order; once the response holds ``cap`` objects,
    the last entity present and every one after it may be incomplete.
    """
    try:
        groups = body["CDCResponse"][0]["QueryResponse"]
    except (KeyError, IndexError, TypeError):
        raise BadData(f"Intuit sent a CDC answer without CDCResponse: {str(body)[:200]}") from None
    changes = {e: EntityChanges() for e in entities}
    present: list[str] = []
    total = 0
    for group in groups or []:
        if not isinstance(group, Mapping):
            raise BadData("Intuit sent a CDC group that is not an object")
        for entity in entities:
            objects = group.get(entity)
            if not objects:
                continue
            present.append(entity)
            for obj in objects:
                total += 1
                if isinstance(obj, Mapping) and obj.get("status") == "Deleted":
                    when = parse_qbo_time((obj.get("MetaData") or {}).get("LastUpdatedTime"),
                                          f"deleted {entity} {obj.get('Id')} time")
                    changes[entity].deleted.append((str(obj.get("Id")), when))
                elif isinstance(obj, Mapping):
                    changes[entity].live.append(dict(obj))
                else:
                    raise BadData(f"Intuit sent a CDC {entity} that is not an object")
    complete = set(entities)
    if total >= cap:
        cut_from = entities.index(present[-1]) if present else 0
        complete = set(entities[:cut_from])
    time = parse_qbo_time(body["time"], "CDC time") if body.get("time") else None
    return CdcResult(time, changes, complete)
