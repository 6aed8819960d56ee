"""What to say on a pass: pure functions of the problems seen now, the open alerts and ``now``.

- A problem not yet open is **opened** (one message), unless it only *holds* (a failed
  type being retried keeps its alert but does not open one).
- An open problem whose stage changed (30 → 7 days before an expiry) is said again.
- An open problem is **reminded** once ``repeat_after`` has passed since it was last said,
  if its kind repeats.
- An open alert whose problem is gone is **resolved** (a recovery message), unless its
  source could not look this time.
- More than ``threshold`` messages of one sort in a pass become one **digest**.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from .problems import Problem


@dataclass(frozen=True)
class OpenAlert:
    """What a pass needs to know of an open ``alert`` row."""

    key: str
    kind: str
    stage: str | None
    opened_at: datetime
    last_notified_at: datetime | None


@dataclass
class Plan:
    opened: list[Problem] = field(default_factory=list)      # new, back, or at a new stage
    reminded: list[Problem] = field(default_factory=list)    # still there, said again after repeat_after
    kept: list[Problem] = field(default_factory=list)        # still there, nothing to say
    resolved: list[OpenAlert] = field(default_factory=list)  # gone

    @property
    def silent(self) -> bool:
        return not (self.opened or self.reminded or self.resolved)


def plan(problems: Iterable[Problem], open_alerts: Mapping[str, OpenAlert], now: datetime,
         repeat_after: timedelta, unknown_kinds: Iterable[str] = ()) -> Plan:
    """Compare the problems seen now with the open alerts; ``unknown_kinds``: sources that failed."""
    current: dict[str, Problem] = {}
    for problem in problems:  # a problem that opens wins over one that only holds
        if problem.key not in current or current[problem.key].holds_only:
            current[problem.key] = problem
    result = Plan()
    for key, problem in current.items():
        alert = open_alerts.get(key)
        if alert is None:
            if not problem.holds_only:
                result.opened.append(problem)
        elif problem.holds_only:
            result.kept.append(problem)
        elif problem.stage != alert.stage:
            result.opened.append(problem)
        elif problem.repeats and (alert.last_notified_at is None or now - alert.last_notified_at >= repeat_after):
            result.reminded.append(problem)
        else:
            result.kept.append(problem)
    unknown = set(unknown_kinds)
    result.resolved = [alert for key, alert in open_alerts.items()
                       if key not in current and alert.kind not in unknown]
    return result


def needs_digest(count: int, threshold: int) -> bool:
    """More than ``threshold`` messages of one sort in a pass go out as one digest."""
    return count > threshold
