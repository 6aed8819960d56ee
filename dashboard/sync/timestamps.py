"""Intuit timestamps: parse them (with their offsets) to aware UTC, format query literals."""
from __future__ import annotations

from datetime import datetime, timezone

from .errors import BadData


def parse_qbo_time(text: object, what: str = "timestamp") -> datetime:
    """Parse an ISO 8601 timestamp with an offset into an aware UTC datetime."""
    if not isinstance(text, str):
        raise BadData(f"Intuit sent {what} {text!r}, which is not a timestamp")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadData(f"Intuit sent {what} {text!r}, which is not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        raise BadData(f"Intuit sent {what} {text!r} without a UTC offset")
    return value.astimezone(timezone.utc)


def format_qbo_time(value: datetime) -> str:
    """Render an aware datetime as a query literal in UTC (milliseconds only when present)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    utc = value.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "+00:00"
