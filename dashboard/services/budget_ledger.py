"""Where metered Intuit calls are counted: Redis when REDIS_URL is set, else the database.

Both keep hourly buckets (the governor's rate reads the last 24 of them), a month total
and a total per company (the top consumers), shared by every process of the deployment.

- Redis (production): every call is an atomic INCRBY / ZINCRBY in one pipeline, so
  counting costs a round trip of a millisecond and never contends with the sync's own
  database transactions, however many workers count at once.
- Database (embedded default, one worker process): one upsert per hour and company in
  ``metered_call``. SQLite lets one writer in at a time, and the calls are counted from
  the fetch threads while the sync thread may hold the write lock (a page being
  committed), so counts go to an in-process buffer that a background thread flushes
  every few seconds, and before every read in the same process. A killed process loses
  at most the last few seconds of counts.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping, Protocol

import redis
from sqlalchemy import Engine, and_, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ..models import MeteredCall
from ..sync.budget import HOUR, hour_start, next_month_start

log = logging.getLogger(__name__)

FLUSH_SECONDS = 2.0
# Redis keys outlive what reads need: a month's totals for the next month's page, an
# hour bucket for the 24-hour rate window.
MONTH_KEY_TTL = timedelta(days=70)
HOUR_KEY_TTL = timedelta(hours=49)


@dataclass(frozen=True)
class Reading:
    used: int                          # metered calls since the month's start
    window_calls: int                  # calls in the hour buckets from the window's start
    counting_since: datetime | None    # the first hour anything was counted in


class CallLedger(Protocol):
    def add(self, calls: Mapping[str, int], at: datetime) -> None: ...

    def flush(self) -> None: ...

    def read(self, month_start: datetime, window_start: datetime, now: datetime) -> Reading: ...

    def top(self, month_start: datetime, limit: int) -> list[tuple[str, int]]: ...


class RedisLedger:
    """Counters in Redis, under the deployment's namespace."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    def _month(self, month_start: datetime) -> str:
        return f"{self.prefix}:month:{month_start:%Y-%m}"

    def _hour(self, hour: datetime) -> str:
        return f"{self.prefix}:hour:{hour:%Y%m%d%H}"

    def add(self, calls: Mapping[str, int], at: datetime) -> None:
        hour = hour_start(at)
        month = self._month(hour.replace(day=1, hour=0))
        total = sum(calls.values())
        pipe = self.client.pipeline(transaction=False)
        pipe.incrby(f"{month}:total", total)
        pipe.expire(f"{month}:total", MONTH_KEY_TTL)
        for realm, n in calls.items():
            pipe.zincrby(f"{month}:companies", n, realm)
        pipe.expire(f"{month}:companies", MONTH_KEY_TTL)
        pipe.incrby(self._hour(hour), total)
        pipe.expire(self._hour(hour), HOUR_KEY_TTL)
        pipe.set(f"{self.prefix}:since", hour.isoformat(), nx=True)
        pipe.execute()

    def flush(self) -> None:
        """Nothing to do: every call is written at once."""

    def read(self, month_start: datetime, window_start: datetime, now: datetime) -> Reading:
        hours = []
        hour = window_start
        while hour <= now:
            hours.append(self._hour(hour))
            hour += HOUR
        pipe = self.client.pipeline(transaction=False)
        pipe.get(f"{self._month(month_start)}:total")
        pipe.get(f"{self.prefix}:since")
        if hours:
            pipe.mget(hours)
        answers = pipe.execute()
        since = datetime.fromisoformat(answers[1].decode()) if answers[1] else None
        window = sum(int(v) for v in answers[2] if v) if hours else 0
        return Reading(used=int(answers[0] or 0), window_calls=window, counting_since=since)

    def top(self, month_start: datetime, limit: int) -> list[tuple[str, int]]:
        rows = self.client.zrevrange(f"{self._month(month_start)}:companies", 0, limit - 1, withscores=True)
        return [(realm.decode(), int(score)) for realm, score in rows]


class DatabaseLedger:
    """Counters in ``metered_call``, written through a per-process buffer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pending: Counter[tuple[datetime, str]] = Counter()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None

    def add(self, calls: Mapping[str, int], at: datetime) -> None:
        hour = hour_start(at)
        with self._lock:
            for realm, n in calls.items():
                self._pending[(hour, realm)] += n
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = threading.Thread(target=self._flush_forever, name="metered-call-flush",
                                                 daemon=True)
                self._flusher.start()

    def _flush_forever(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - kept in the buffer; the next round retries
                log.warning("Could not save the metered-call counts yet; retrying", exc_info=True)

    def flush(self) -> None:
        """Write the buffered counts (one upsert); on failure they stay buffered."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        table = MeteredCall.__table__
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(table).values([{"hour_start": hour, "company_source_id": realm, "calls": n}
                                     for (hour, realm), n in pending.items()])
        stmt = stmt.on_conflict_do_update(index_elements=["hour_start", "company_source_id"],
                                          set_={"calls": table.c.calls + stmt.excluded.calls})
        try:
            with self.engine.begin() as conn:
                conn.execute(stmt)
        except Exception:
            with self._lock:
                self._pending.update(pending)
            raise

    def read(self, month_start: datetime, window_start: datetime, now: datetime) -> Reading:
        self.flush()
        c = MeteredCall.__table__.c
        month_end = next_month_start(month_start)
        first = select(func.min(c.hour_start)).scalar_subquery()  # the first entry of the primary key
        with self.engine.connect() as conn:
            used, window, since = conn.execute(select(
                func.coalesce(func.sum(case((and_(c.hour_start >= month_start, c.hour_start < month_end), c.calls),
                                            else_=0)), 0),
                func.coalesce(func.sum(case((c.hour_start >= window_start, c.calls), else_=0)), 0),
                first,
            ).where(c.hour_start >= min(month_start, window_start), c.hour_start <= now)).one()
        return Reading(used=int(used), window_calls=int(window), counting_since=_aware(since))

    def top(self, month_start: datetime, limit: int) -> list[tuple[str, int]]:
        self.flush()
        c = MeteredCall.__table__.c
        total = func.sum(c.calls)
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.company_source_id, total).where(c.hour_start >= month_start,
                                                                         c.hour_start < next_month_start(month_start))
                                .group_by(c.company_source_id).order_by(total.desc(), c.company_source_id)
                                .limit(limit)).all()
        return [(realm, int(n)) for realm, n in rows]

    def prune(self, before: datetime) -> None:
        """Drop hour buckets no read needs any more."""
        c = MeteredCall.__table__.c
        with self.engine.begin() as conn:
            conn.execute(MeteredCall.__table__.delete().where(c.hour_start < before))


def _aware(moment: datetime | None) -> datetime | None:
    """Make an aggregate's datetime aware (SQLite may hand it back as naive text)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment
