"""Measure full 1,000-record query pages per second over real HTTP.

Run: python -m sandbox.bench [--invoices 6000] [--seconds 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import threading
import time

import requests

from .testing import SandboxServer


def main() -> None:
    """Serve a dataset and hammer the query endpoint with full pages."""
    p = argparse.ArgumentParser()
    p.add_argument("--invoices", type=int, default=6000)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    with SandboxServer(companies=1, customers=2000, invoices=args.invoices, rate_limits_enabled=False) as srv:
        realm = srv.sim.realms()[0]
        token = srv.sim.issue_tokens(realm)["access_token"]
        pages = max(1, args.invoices // 1000)
        count = [0]
        size = [0]
        lock = threading.Lock()
        stop = time.monotonic() + args.seconds

        def worker() -> None:
            s = requests.Session()
            s.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
            i = 0
            while time.monotonic() < stop:
                start = (i % pages) * 1000 + 1
                r = s.get(f"{srv.url}/v3/company/{realm}/query", params={
                    "query": f"select * from Invoice orderby MetaData.LastUpdatedTime "
                             f"startposition {start} maxresults 1000"})
                assert r.status_code == 200
                with lock:
                    count[0] += 1
                    size[0] = len(r.content)
                i += 1

        threads = [threading.Thread(target=worker) for _ in range(args.threads)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        print(f"{count[0]} full pages in {elapsed:.2f}s = {count[0] / elapsed:.1f} pages/s "
              f"({args.threads} client threads, ~{size[0] / 1e6:.2f} MB per page)")


if __name__ == "__main__":
    main()
