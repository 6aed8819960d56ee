"""Template filters that turn aware UTC datetimes and durations into readable text.

Pure functions of ``now`` (tested with plain values); the blueprint registers them.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional


def relative_time(moment: datetime, now: datetime) -> str:
    """Return "3 min ago" / "in 2 h" style text, or a date once it is weeks away."""
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "in a few seconds" if future else "just now"
    if seconds < 90 * 60:
        amount = f"{max(1, round(seconds / 60))} min"
    elif seconds < 36 * 3600:
        amount = f"{round(seconds / 3600)} h"
    elif seconds < 30 * 86400:
        days = round(seconds / 86400)
        amount = f"{days} day{'s' if days != 1 else ''}"
    else:
        return utc_text(moment, with_time=False)
    return f"in {amount}" if future else f"{amount} ago"


def utc_text(moment: datetime, with_time: bool = True) -> str:
    """Return an unambiguous absolute UTC timestamp for titles and tables."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if with_time else "%Y-%m-%d")


def duration_text(span: Optional[timedelta]) -> str:
    """Return "2 h 5 min", "3 min 20 s" or "45 s"; an em dash when unknown."""
    if span is None:
        return "—"
    total = max(0, int(round(span.total_seconds())))
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    return f"{seconds} s"


def number_text(value: Optional[int]) -> str:
    """Return a count with thousands separators."""
    return "—" if value is None else f"{value:,}"
