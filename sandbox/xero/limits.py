"""Apply Xero's limits (per tenant: concurrent, minute, day; per app: minute) and keep stats.

Windows are fixed: each starts at the first call after the previous one ended, so every
tenant resets at its own time, as Xero's do. Refused calls do not count toward the
windows. ``X-Rate-Limit-Problem`` is ``day`` / ``minute`` (observed at Xero) or
``concurrent`` / ``appminute`` (undocumented at Xero; our choice [I]).
"""
from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from .config import XeroConfig


@dataclass
class _Window:
    start: float | None = None
    count: int = 0

    def roll(self, now: float, size: float) -> None:
        if self.start is None or now >= self.start + size:
            self.start, self.count = now, 0

    def retry_after(self, now: float, size: float) -> int:
        return max(1, math.ceil((self.start or now) + size - now))


@dataclass
class _Tenant:
    minute: _Window = field(default_factory=_Window)
    day: _Window = field(default_factory=_Window)
    in_flight: int = 0
    peak: int = 0
    requests: Counter = field(default_factory=Counter)  # endpoint -> calls (admitted or not)
    statuses: Counter = field(default_factory=Counter)
    throttled: Counter = field(default_factory=Counter)  # problem -> refusals


@dataclass
class Admission:
    """The limiter's answer for one call; finish() must be called when admitted."""

    tenant: str
    endpoint: str
    admitted: bool
    problem: str = ""
    retry_after: int = 0
    headers: dict[str, str] = field(default_factory=dict)


class XeroLimiter:
    """Count calls per tenant and per app on the simulator's monotonic clock."""

    def __init__(self, config: XeroConfig, clock: Callable[[], float]) -> None:
        self.config, self.clock = config, clock
        self.lock = threading.Lock()
        self.tenants: dict[str, _Tenant] = {}
        self.app_minute = _Window()

    def _tenant(self, tenant: str) -> _Tenant:
        return self.tenants.setdefault(tenant, _Tenant())

    def admit(self, tenant: str, endpoint: str) -> Admission:
        """Admit or refuse a call; return the remaining-quota headers either way."""
        cfg, now = self.config, self.clock()
        with self.lock:
            st = self._tenant(tenant)
            st.requests[endpoint] += 1
            st.minute.roll(now, cfg.minute_window)
            st.day.roll(now, cfg.day_window)
            self.app_minute.roll(now, cfg.minute_window)
            problem, retry = "", 0
            if cfg.rate_limits_enabled:
                if st.day.count >= cfg.per_day:
                    problem, retry = "day", st.day.retry_after(now, cfg.day_window)
                elif st.minute.count >= cfg.per_minute:
                    problem, retry = "minute", st.minute.retry_after(now, cfg.minute_window)
                elif self.app_minute.count >= cfg.app_per_minute:
                    problem, retry = "appminute", self.app_minute.retry_after(now, cfg.minute_window)
                elif st.in_flight >= cfg.max_concurrent:
                    problem, retry = "concurrent", 1
            if problem:
                st.throttled[problem] += 1
                st.statuses["429"] += 1
            else:
                st.minute.count += 1
                st.day.count += 1
                self.app_minute.count += 1
                st.in_flight += 1
                st.peak = max(st.peak, st.in_flight)
            headers = {"X-DayLimit-Remaining": str(max(cfg.per_day - st.day.count, 0)),
                       "X-MinLimit-Remaining": str(max(cfg.per_minute - st.minute.count, 0)),
                       "X-AppMinLimit-Remaining": str(max(cfg.app_per_minute - self.app_minute.count, 0))}
            return Admission(tenant, endpoint, not problem, problem, retry, headers)

    def finish(self, adm: Admission, status: int) -> None:
        """Release the concurrency slot and count the status."""
        with self.lock:
            st = self._tenant(adm.tenant)
            st.in_flight -= 1
            st.statuses[str(status)] += 1

    def stats(self, tenant: str) -> dict[str, Any]:
        """Summarise one tenant's calls."""
        with self.lock:
            st = self._tenant(tenant)
            return {"tenant": tenant, "requests": sum(st.requests.values()), "by_endpoint": dict(st.requests),
                    "by_status": dict(st.statuses), "throttled": sum(st.throttled.values()),
                    "throttled_by_problem": dict(st.throttled), "peak_concurrency": st.peak,
                    "minute_count": st.minute.count, "day_count": st.day.count}

    def reset(self, tenant: str | None = None) -> None:
        """Forget counts and windows (of one tenant or all); in-flight calls survive."""
        with self.lock:
            for name in [tenant] if tenant else list(self.tenants):
                old = self._tenant(name)
                self.tenants[name] = _Tenant(in_flight=old.in_flight, peak=old.in_flight)
            if tenant is None:
                self.app_minute = _Window()
