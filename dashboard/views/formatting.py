"""Template filters that turn aware UTC datetimes and durations into readable text.

Pure functions of ``now`` (tested with plain values); the blueprint registers them.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Optional

from markupsafe import Markup, escape

from ..services.overview_models import STATE_COUNT_WORDS


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


# --- status markup ---------------------------------------------------------------------------
# The companies list renders these for every row, so they are built here rather than by
# Jinja macros (a macro call costs more than the string it makes). ``macros/status.html``
# delegates to the same functions, so every page shows identical markup.

CONNECTION_LABELS = {"connected": "Connected", "reconnect_required": "Reconnect required",
                     "disconnected": "Disconnected"}
CONNECTION_GLYPHS = {"connected": "●", "reconnect_required": "▲", "disconnected": "○"}
OBJECT_GLYPHS = {"synced": "✓", "running": "↻", "queued": "…", "waiting": "…", "failed": "✕", "pending": "–",
                 "off": "○"}


def when_html(moment: Optional[datetime], now: datetime, empty: str = "—") -> Markup:
    """Return a <time> element with relative text and the UTC timestamp as its title."""
    if moment:
        # Formatted from a datetime: digits, letters and punctuation that need no escaping
        # (the list renders two of these per row).
        return Markup(f'<time datetime="{moment.isoformat()}" title="{utc_text(moment)}">'
                      f'{relative_time(moment, now)}</time>')
    return Markup(f'<span class="muted">{escape(empty)}</span>')


NEXT_SYNC_TEXT = {"due": "Due now", "after_backfill": "After the backfill"}


def next_sync_html(expected, now: datetime) -> Markup:
    """Return when the next scheduled sync is expected; nothing for a company that is not connected."""
    if expected is None:
        return Markup("")
    if expected.kind == "at":
        return when_html(expected.at, now)
    return Markup(escape(NEXT_SYNC_TEXT[expected.kind]))


CONNECTION_BADGES = {key: Markup(f'<span class="badge badge-{key}"><span aria-hidden="true">{CONNECTION_GLYPHS[key]}'
                                  f'</span> {label}</span>')
                     for key, label in CONNECTION_LABELS.items()}


def connection_badge_html(state) -> Markup:
    """Return the badge of a connection state (glyph and label)."""
    return CONNECTION_BADGES[str(state)]


def object_badge_html(o, with_label: bool = True) -> Markup:
    """Return the badge of one object type's sync state, with its progress when known."""
    progress = o.progress
    percent = progress.percent if progress else None
    return _object_badge(o.state, o.label if with_label else None, o.state_label, percent)


@lru_cache(maxsize=256)
def _object_badge(state: str, label: Optional[str], state_label: str, percent: Optional[int]) -> Markup:
    # A handful of states, object types and percentages: each badge is built once.
    tail = f" {escape(percent)}%" if percent is not None else ""
    prefix = f"{escape(label)}: " if label else ""
    return Markup(f'<span class="badge badge-{escape(state)}"><span aria-hidden="true">{OBJECT_GLYPHS[state]}'
                  f'</span> {prefix}{escape(state_label)}{tail}</span>')


def state_counts_text(summary) -> str:
    """Return how many object types are in each state: "26 synced · 1 failed · 1 off"."""
    return " · ".join(f"{n} {STATE_COUNT_WORDS[state]}" for state, n in summary.state_counts)


def state_counts_html(summary) -> Markup:
    """Return a company's object types counted by state, as badges; the failed ones named in a title."""
    failed = ", ".join(o.label for o in summary.failed_objects)
    parity = ", ".join(o.label for o in summary.parity_failures)
    items = [_count_badge(state, n, f"Failed: {failed}" if state == "failed" else None)
             for state, n in summary.state_counts]
    if parity:
        items.append(_count_badge("parity", len(summary.parity_failures), f"Out of parity: {parity}"))
    return Markup('<ul class="badges">') + Markup("").join(Markup("<li>") + i + Markup("</li>") for i in items) \
        + Markup("</ul>")


@lru_cache(maxsize=512)
def _count_badge(state: str, n: int, title: Optional[str]) -> Markup:
    css = "failed" if state == "parity" else state
    words = "out of parity" if state == "parity" else STATE_COUNT_WORDS[state]
    glyph = OBJECT_GLYPHS.get(css, "!")
    title_attr = f' title="{escape(title)}"' if title else ""
    return Markup(f'<span class="badge badge-{escape(css)}"{title_attr}><span aria-hidden="true">{glyph}</span> '
                  f'{n} {escape(words)}</span>')
