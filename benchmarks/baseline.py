"""The raw baseline: the same pages fetched with plain ``requests`` and written with ``COPY``.

It is what a throw-away script would do and the floor any pipeline pays: one HTTP GET
per 1,000-record page, ``json`` parsing, and one ``COPY`` plus commit per page into a
scratch table. It keeps to the simulator's per-second limit the simplest way (a sleep),
as any client of Intuit must, so it and the pipeline run under the same rules.
"""
from __future__ import annotations

import csv
import io
import json
import time
from collections import deque
from dataclasses import dataclass

import requests

from .infra import pg_connect

PAGE_SIZE = 1000
SCRATCH_TABLE = "bench_raw_copy"


@dataclass
class BaselineRun:
    records: int
    pages: int
    seconds: float
    throttled: int

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class _Pacer:
    """Keep at most ``per_second`` requests in any rolling second."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.sent: deque[float] = deque()

    def wait(self) -> None:
        now = time.monotonic()
        while self.sent and self.sent[0] <= now - 1.0:
            self.sent.popleft()
        if len(self.sent) >= self.per_second:
            time.sleep(max(0.0, self.sent[0] + 1.0 - now))
        self.sent.append(time.monotonic())


def _query(entity: str, start: int) -> str:
    # Customers are active-only unless Active appears in the WHERE clause (Intuit's rule).
    where = " WHERE Active IN (true, false)" if entity == "Customer" else ""
    return f"SELECT * FROM {entity}{where} ORDERBY Id STARTPOSITION {start} MAXRESULTS {PAGE_SIZE}"


def _copy_page(conn, realm: str, entity: str, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow((realm, entity, row["Id"], json.dumps(row, separators=(",", ":"))))
    buf.seek(0)
    with conn.cursor() as cur:
        cur.copy_expert(f"COPY {SCRATCH_TABLE} (realm, entity, source_id, raw) FROM STDIN WITH (FORMAT csv)", buf)
    conn.commit()


def run_baseline(sim_url: str, realm: str, access_token: str, database_url: str,
                 entities: tuple[str, ...] = ("Customer", "Invoice"), per_second: int = 10) -> BaselineRun:
    """Fetch every page of each entity and COPY it into a scratch table; time the whole."""
    conn = pg_connect(database_url)
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
        cur.execute(f"CREATE TABLE {SCRATCH_TABLE} (realm text NOT NULL, entity text NOT NULL, "
                    "source_id text NOT NULL, raw jsonb NOT NULL)")
    conn.commit()
    http = requests.Session()
    http.headers.update({"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
    pacer = _Pacer(per_second)
    records = pages = throttled = 0
    started = time.perf_counter()
    try:
        for entity in entities:
            start = 1
            while True:
                pacer.wait()
                resp = http.get(f"{sim_url}/v3/company/{realm}/query", params={"query": _query(entity, start)},
                                timeout=60)
                if resp.status_code == 429:
                    throttled += 1
                    time.sleep(1.0)
                    continue
                resp.raise_for_status()
                rows = resp.json()["QueryResponse"].get(entity, [])
                pages += 1
                if rows:
                    _copy_page(conn, realm, entity, rows)
                    records += len(rows)
                if len(rows) < PAGE_SIZE:
                    break
                start += PAGE_SIZE
        seconds = time.perf_counter() - started
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {SCRATCH_TABLE}")
            stored = cur.fetchone()[0]
        if stored != records:
            raise RuntimeError(f"baseline stored {stored} rows but fetched {records}")
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE {SCRATCH_TABLE}")
        conn.commit()
    finally:
        conn.close()
    return BaselineRun(records, pages, seconds, throttled)
