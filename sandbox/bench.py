"""Measure full 1,000-record query pages: pages per second and the server's CPU per page.

Run: python -m sandbox.bench [--customers 3000] [--invoices 6000] [--seconds 3] [--threads 1]

The simulator runs in its own process (``python -m sandbox``), as in the backfill
benchmarks, so the CPU it spends per page is read from that process alone
(``/proc/<pid>/stat``) and is not mixed with the client's. Each entity is read the way
the service's backfill reads it: ``ORDERBY MetaData.CreateTime`` pages of 1,000 that
overlap by one record, customers with ``Active IN (true, false)``.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

PAGE = 1000
# The statements of the service's backfill (dashboard/sync/queries.py), without a since-bound.
STATEMENTS = {
    "Customer": "SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY MetaData.CreateTime "
                "STARTPOSITION {start} MAXRESULTS 1000",
    "Invoice": "SELECT * FROM Invoice ORDERBY MetaData.CreateTime STARTPOSITION {start} MAXRESULTS 1000",
}
REDIRECT_URI = "http://127.0.0.1:3000/v1/oauth/callback/qbo"


def process_cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChildSimulator:
    """``python -m sandbox`` in a child process, with a bearer token for its first company."""

    def __init__(self, customers: int, invoices: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", str(self.port), "--companies", "1",
             "--customers", str(customers), "--invoices", str(invoices), "--redirect-uri", REDIRECT_URI],
            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(root)})
        self.realm, self.token = self._connect()

    def _connect(self) -> tuple[str, str]:
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"simulator exited {self.proc.returncode}")
            try:
                realm = requests.get(f"{self.url}/_sandbox/companies", timeout=1).json()[0]["realmId"]
                break
            except (requests.RequestException, ValueError, IndexError, KeyError):
                if time.monotonic() > deadline:
                    raise TimeoutError("simulator did not start") from None
                time.sleep(0.2)
        consent = requests.get(f"{self.url}/_sandbox/authorize",
                               params={"realm": realm, "state": "bench", "redirect_uri": REDIRECT_URI}).json()
        # The bench measures page serving, not Intuit's limits (they would answer 429).
        requests.post(f"{self.url}/_sandbox/config", json={"rate_limits_enabled": False}).raise_for_status()
        code = parse_qs(urlsplit(consent["redirect_url"]).query)["code"][0]
        tokens = requests.post(f"{self.url}/oauth2/v1/tokens/bearer",
                               auth=("sandbox-client-id", "sandbox-client-secret"),
                               data={"grant_type": "authorization_code", "code": code,
                                     "redirect_uri": REDIRECT_URI}).json()
        return realm, tokens["access_token"]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def hammer(sim: ChildSimulator, entity: str, records: int, seconds: float | None, threads: int) -> dict[str, float]:
    """Ask full pages of one entity; return pages/s, the server's CPU ms per page and the page size.

    ``seconds=None`` reads every full page once, in order (what one backfill asks: the
    first read of each page); otherwise pages are asked round and round for that long.
    """
    pages = max(1, (records - 1) // (PAGE - 1))  # pages that are full, with the one-record overlap
    count, size = [0], [0]
    lock = threading.Lock()
    stop = time.monotonic() + (seconds if seconds is not None else 1e9)
    if seconds is None:
        threads = 1

    def worker(offset: int) -> None:
        s = requests.Session()
        s.headers.update({"Authorization": f"Bearer {sim.token}", "Accept": "application/json"})
        i = offset
        while time.monotonic() < stop and (seconds is not None or i < pages):
            start = (i % pages) * (PAGE - 1) + 1
            r = s.get(f"{sim.url}/v3/company/{sim.realm}/query",
                      params={"query": STATEMENTS[entity].format(start=start)})
            assert r.status_code == 200, r.text[:300]
            with lock:
                count[0] += 1
                size[0] = len(r.content)
            i += 1

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    cpu0, t0 = process_cpu_seconds(sim.proc.pid), time.monotonic()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed, cpu = time.monotonic() - t0, process_cpu_seconds(sim.proc.pid) - cpu0
    return {"pages": count[0], "pages_per_s": count[0] / elapsed, "cpu_ms_per_page": cpu * 1000 / count[0],
            "mb_per_page": size[0] / 1e6}


def main() -> None:
    """Serve a dataset in a child process and read full pages of customers and invoices."""
    p = argparse.ArgumentParser()
    # The defaults are the backfill benchmark's data set (benchmarks/__main__.py).
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--invoices", type=int, default=40_000)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    sim = ChildSimulator(args.customers, args.invoices)
    try:
        for entity, records in (("Customer", args.customers), ("Invoice", args.invoices)):
            for label, seconds in (("first read", None), ("again", args.seconds)):
                m = hammer(sim, entity, records, seconds, args.threads)
                print(f"{entity:8} {label:10} {m['pages']:5.0f} full pages = {m['pages_per_s']:6.1f} pages/s, "
                      f"server CPU {m['cpu_ms_per_page']:5.1f} ms/page, ~{m['mb_per_page']:.2f} MB/page "
                      f"({1 if seconds is None else args.threads} client threads)")
    finally:
        sim.close()


if __name__ == "__main__":
    main()
