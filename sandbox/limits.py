"""Enforce Intuit's per-realm limits and record every request for tests."""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable

from .config import SandboxConfig


@dataclass
class RequestLog:
    """Describe one API request as the gateway saw it."""

    start: float  # the limiter's clock (monotonic)
    kind: str
    path: str
    weight: int
    admitted: bool
    status: int | None = None
    end: float | None = None
    outcome: str = "pending"
    sim_time: float = 0.0
    detail: str = ""  # what was asked: a query's statement, a CDC call's entities (to tell requests apart)


@dataclass
class _RealmState:
    in_flight: int = 0
    attempted_in_flight: int = 0
    peak: int = 0
    peak_attempted: int = 0
    minute: deque = field(default_factory=deque)  # (t, weight) admitted
    second: deque = field(default_factory=deque)
    batch: deque = field(default_factory=deque)
    log: list[RequestLog] = field(default_factory=list)


@dataclass
class Ticket:
    """Hand back the outcome of admission; finish() must be called with it."""

    realm: str
    entry: RequestLog
    admitted: bool
    reason: str = ""


class RateLimiter:
    """Apply 500/min, 10/s, 10 concurrent and batch 40/min per realm.

    Throttled requests do not count toward the windows (so a client that backs
    off recovers after one window); they are logged and counted as throttled.
    ``clock`` tells the windows' time: the simulator passes its clock's monotonic
    scale, so ``advance_clock`` moves the windows as well as the tokens' lives.
    """

    def __init__(self, config: SandboxConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.Lock()
        self.realms: dict[str, _RealmState] = {}

    def _state(self, realm: str) -> _RealmState:
        st = self.realms.get(realm)
        if st is None:
            st = self.realms[realm] = _RealmState()
        return st

    def admit(self, realm: str, kind: str, path: str, weight: int = 1, sim_time: float = 0.0,
              detail: str = "") -> Ticket:
        """Decide whether a request may proceed and take a concurrency slot."""
        cfg = self.config
        now = self.clock()
        with self.lock:
            st = self._state(realm)
            st.attempted_in_flight += 1
            st.peak_attempted = max(st.peak_attempted, st.attempted_in_flight)
            for dq, window in ((st.minute, cfg.minute_window), (st.second, cfg.second_window),
                               (st.batch, cfg.batch_window)):
                while dq and dq[0][0] <= now - window:
                    dq.popleft()
            reason = ""
            # A batch counts once per item, but is clipped to the window's size: otherwise a
            # legal 30-item batch could never pass a 10/s limit. It then fills the window.
            w_sec, w_min = min(weight, cfg.per_second), min(weight, cfg.per_minute)
            if cfg.rate_limits_enabled:
                if st.in_flight + 1 > cfg.max_concurrent:
                    reason = "concurrency"
                elif sum(w for _, w in st.second) + w_sec > cfg.per_second:
                    reason = "per_second"
                elif sum(w for _, w in st.minute) + w_min > cfg.per_minute:
                    reason = "per_minute"
                elif kind == "batch" and len(st.batch) + 1 > cfg.batch_per_minute:
                    reason = "batch_per_minute"
            entry = RequestLog(now, kind, path, weight, not reason, sim_time=sim_time, detail=detail)
            st.log.append(entry)
            if reason:
                entry.outcome = "throttled:" + reason
                return Ticket(realm, entry, False, reason)
            st.in_flight += 1
            st.peak = max(st.peak, st.in_flight)
            st.minute.append((now, w_min))
            st.second.append((now, w_sec))
            if kind == "batch":
                st.batch.append((now, 1))
            return Ticket(realm, entry, True)

    def finish(self, ticket: Ticket, status: int, outcome: str | None = None) -> None:
        """Release the slot and record the outcome."""
        with self.lock:
            st = self._state(ticket.realm)
            st.attempted_in_flight -= 1
            if ticket.admitted:
                st.in_flight -= 1
            ticket.entry.status = status
            ticket.entry.end = self.clock()
            if outcome is not None:
                ticket.entry.outcome = outcome
            elif ticket.entry.outcome == "pending":
                ticket.entry.outcome = "ok" if status < 400 else f"http_{status}"

    def stats(self, realm: str) -> dict[str, Any]:
        """Summarise a realm's requests: counts, windows, concurrency, throttles."""
        cfg = self.config
        with self.lock:
            st = self._state(realm)
            log = list(st.log)
            peak, peak_attempted = st.peak, st.peak_attempted
        starts = [(e.start, e.weight) for e in log]
        by_kind = Counter(e.kind for e in log)
        by_status = Counter(str(e.status) for e in log if e.status is not None)
        by_outcome = Counter(e.outcome for e in log)
        return {
            "realm": realm,
            "requests": len(log),
            "weighted_requests": sum(w for _, w in starts),
            "by_kind": dict(by_kind),
            "by_status": dict(by_status),
            "by_outcome": dict(by_outcome),
            "throttled": sum(1 for e in log if not e.admitted),
            "max_in_any_1s_window": max_in_window(starts, cfg.second_window),
            "max_in_any_60s_window": max_in_window(starts, cfg.minute_window),
            "max_batch_in_any_60s_window": max_in_window([(e.start, 1) for e in log if e.kind == "batch"],
                                                         cfg.batch_window),
            "peak_concurrency": peak_attempted,
            "peak_admitted_concurrency": peak,
            "second_window": cfg.second_window,
            "minute_window": cfg.minute_window,
        }

    def log(self, realm: str) -> list[dict[str, Any]]:
        """Return the raw request log of a realm (times relative to the first)."""
        with self.lock:
            log = list(self._state(realm).log)
        t0 = log[0].start if log else 0.0
        return [{"t": round(e.start - t0, 6), "duration": None if e.end is None else round(e.end - e.start, 6),
                 "kind": e.kind, "path": e.path, "weight": e.weight, "status": e.status, "outcome": e.outcome,
                 "sim_time": e.sim_time, "detail": e.detail} for e in log]

    def reset(self, realm: str | None = None) -> None:
        """Forget logs and windows (of one realm or all); in-flight counts survive."""
        with self.lock:
            targets = [realm] if realm else list(self.realms)
            for r in targets:
                st = self._state(r)
                st.log.clear()
                st.minute.clear()
                st.second.clear()
                st.batch.clear()
                st.peak = st.in_flight
                st.peak_attempted = st.attempted_in_flight


def max_in_window(events: list[tuple[float, int]], window: float) -> int:
    """Return the largest total weight of events starting within any half-open window."""
    events = sorted(events)
    best = total = 0
    j = 0
    for t, w in events:
        total += w
        while events[j][0] <= t - window:
            total -= events[j][1]
            j += 1
        best = max(best, total)
    return best
