"""Xero's date formats: ``/Date(ms+0000)/`` in JSON, and the If-Modified-Since header we send."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

# .NET JSON dates: milliseconds since the epoch (negative before 1970), an optional offset.
_NET_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_date(value: Any) -> datetime | None:
    """Read a Xero date as an aware UTC instant; None when absent or unreadable.

    The number is the instant; an offset such as ``+1300`` only names the zone it was
    shown in (as xero-python reads it), so it never moves the instant. Offset-less ISO
    text (``DateTimeUTC``, ``*String`` companions, /connections stamps with 7 fractional
    digits and no ``Z``) is UTC.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("\\/", "/").strip()
    match = _NET_DATE.match(text)
    if match:
        return EPOCH + timedelta(milliseconds=int(match.group(1)))
    iso = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))  # Python takes 6 digits at most
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def updated_at(record: Mapping[str, Any]) -> datetime | None:
    """A record's ``UpdatedDateUTC`` (ms precision), None for resources without one (TaxRates)."""
    return parse_date(record.get("UpdatedDateUTC"))


def if_modified_since(since: datetime) -> str:
    """Format an ``If-Modified-Since`` value: ``yyyy-mm-ddThh:mm:ss`` in UTC, Xero's documented form.

    Xero compares at second precision, so the fraction is dropped (rounding down: a record
    updated within that second is read again, never skipped). Callers overlap windows.
    """
    if since.tzinfo is None:
        raise ValueError("If-Modified-Since needs an aware datetime")
    return since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
