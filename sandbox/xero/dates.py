"""Render Xero's date formats and parse If-Modified-Since.

Xero's JSON dates are .NET dates, ``\\/Date(1541176290160+0000)\\/`` (Unix ms; the
raw text escapes the slashes); ``DateTimeUTC`` has no offset; identity timestamps
(``/connections``) have 7 fractional digits and no ``Z``; webhook times 3 digits, no ``Z``.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

_DOTNET = re.compile(rb'"/Date\((-?\d+(?:[+-]\d{4})?)\)/"')


def dotnet(ms: int, offset: bool = True) -> str:
    """Return the unescaped .NET date text; the JSON encoder escapes its slashes."""
    return f"/Date({ms}+0000)/" if offset else f"/Date({ms})/"


def escape_dates(body: bytes) -> bytes:
    """Escape the slashes of .NET dates in serialised JSON, as Xero's serializer writes them."""
    return _DOTNET.sub(rb'"\\/Date(\1)\\/"', body)


def ms_of(text: str) -> int | None:
    """Return the ms of a .NET date text, or None."""
    m = re.match(r"^\\?/Date\((-?\d+)(?:[+-]\d{4})?\)\\?/$", text or "")
    return int(m.group(1)) if m else None


def day_string(ms: int) -> str:
    """Return a ``DateString`` companion: midnight of the date, no offset."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def identity_time(epoch: float) -> str:
    """Format like /connections: 7 fractional digits, no Z."""
    dt = datetime.fromtimestamp(epoch, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0"


def event_time(epoch: float) -> str:
    """Format like a webhook's eventDateUtc: 3 fractional digits, no Z."""
    dt = datetime.fromtimestamp(epoch, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def iso(ms: int) -> str:
    """Return ISO text (no offset) for XML answers."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def parse_if_modified_since(text: str) -> float:
    """Parse the header into epoch seconds.

    Accepted: ``yyyy-mm-ddThh:mm:ss`` (UTC, the documented form), ISO 8601 with
    fraction and offset (``2020-02-06T12:17:43.202-08:00``, what xero-python sends) and
    RFC 1123 (``Wed, 12 Nov 2009 00:00:00 GMT``). Raises ValueError otherwise.
    """
    text = text.strip()
    if text[:1].isdigit():
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    else:
        try:
            dt = parsedate_to_datetime(text)
        except (TypeError, ValueError) as exc:
            raise ValueError(text) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()
