"""Provide the simulated clock and Intuit's timestamp formats."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone


class SimClock:
    """Tell simulated time: real time plus a settable skew in seconds.

    ``monotonic()`` is the scale of the rate limits' windows: it runs with real time and
    jumps with ``advance`` (time passing), but ignores ``set_offset`` (a skewed wall
    clock is not time passing) and backward moves.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = float(offset)
        self.advanced = 0.0

    def now(self) -> float:
        """Return the simulated epoch time in seconds."""
        return time.time() + self.offset

    def monotonic(self) -> float:
        """Return seconds on a scale that never goes back (for windows and durations)."""
        return time.monotonic() + self.advanced

    def set_offset(self, seconds: float) -> None:
        """Skew the clock against real time."""
        self.offset = float(seconds)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (tests use it to expire tokens and move limit windows)."""
        self.offset += float(seconds)
        self.advanced += max(float(seconds), 0.0)


def tz_for(offset_minutes: int) -> timezone:
    """Return a fixed-offset tzinfo."""
    return timezone(timedelta(minutes=offset_minutes))


def format_offset(offset_minutes: int) -> str:
    """Render an offset as ±HH:MM (Intuit never uses Z in MetaData)."""
    sign = "-" if offset_minutes < 0 else "+"
    m = abs(offset_minutes)
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


def format_seconds(epoch: float, offset_minutes: int) -> str:
    """Format like MetaData times: second precision with the company offset."""
    dt = datetime.fromtimestamp(int(epoch), tz_for(offset_minutes))
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + format_offset(offset_minutes)


def format_millis(epoch: float, offset_minutes: int) -> str:
    """Format like the top-level `time`: milliseconds with the company offset."""
    dt = datetime.fromtimestamp(epoch, tz_for(offset_minutes))
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}" + format_offset(offset_minutes)


def format_utc_millis(epoch: float) -> str:
    """Format as RFC 3339 UTC with milliseconds and Z (webhook times)."""
    dt = datetime.fromtimestamp(epoch, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


_TS = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_timestamp(text: str, default_offset_minutes: int) -> float:
    """Parse an Intuit timestamp or date into epoch seconds.

    Offset-less values are read in the company's offset: Intuit does not document
    this, and the company time zone is the most likely interpretation.
    """
    m = _TS.match(text.strip())
    if not m:
        raise ValueError(f"bad timestamp: {text!r}")
    y, mo, d, hh, mm, ss, frac, off = m.groups()
    if off is None:
        offset = default_offset_minutes
    elif off == "Z":
        offset = 0
    else:
        digits = off[1:].replace(":", "")
        offset = int(digits[:2]) * 60 + int(digits[2:])
        if off[0] == "-":
            offset = -offset
    dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=tz_for(offset))
    value = dt.timestamp()
    if frac:
        value += float(frac)
    return value
