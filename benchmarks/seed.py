"""Seed thousands of connected, backfilled companies straight into the database.

Connecting 10,000 companies through the OAuth routes and backfilling each one takes far
longer than a benchmark may. What an idle cycle reads is the same either way: a company
row with sealed tokens and every type's ``sync_state`` marked backfilled. So the parent
gets real tokens from the simulator (its authorization-code grant, no browser, a few
threads at once) and a child process with the app's environment seals them with the
app's own vault and bulk-inserts the rows (``run``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from .infra import PYTHON, REDIRECT_URI, ROOT, SIM_CLIENT_ID, SIM_CLIENT_SECRET, Simulator

TOKEN_THREADS = 4


def _tokens_of(sim_url: str, realms: list[str]) -> list[dict[str, Any]]:
    """Run the authorization-code grant for each realm on one HTTP session (one thread's share)."""
    from urllib.parse import parse_qs, urlsplit

    http = requests.Session()
    out = []
    for realm in realms:
        consent = http.get(f"{sim_url}/_sandbox/authorize", params={
            "realm": realm, "state": "seed", "redirect_uri": REDIRECT_URI}, timeout=30)
        consent.raise_for_status()
        code = parse_qs(urlsplit(consent.json()["redirect_url"]).query)["code"][0]
        resp = http.post(f"{sim_url}/oauth2/v1/tokens/bearer", auth=(SIM_CLIENT_ID, SIM_CLIENT_SECRET),
                         data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
                         timeout=30)
        resp.raise_for_status()
        out.append({**resp.json(), "realmId": realm})
    return out


def grant_all(sim: Simulator, realms: list[str]) -> list[dict[str, Any]]:
    """Return Intuit's token JSON for every realm (grants issued by the simulator)."""
    shares = [realms[i::TOKEN_THREADS] for i in range(TOKEN_THREADS)]
    with ThreadPoolExecutor(TOKEN_THREADS) as pool:
        return [t for share in pool.map(lambda s: _tokens_of(sim.url, s), shares) for t in share]


def run(env: dict[str, str], sim: Simulator, realms: list[str], object_types: list[str],
        timeout: float = 600) -> dict[str, Any]:
    """Seed the realms as connected companies whose ``object_types`` are all backfilled; return timings."""
    started = time.perf_counter()
    tokens = grant_all(sim, realms)
    granted = time.perf_counter() - started
    proc = subprocess.run([PYTHON, "-m", "benchmarks.seed"], cwd=ROOT, env=env, capture_output=True, text=True,
                          input=json.dumps({"tokens": tokens, "types": object_types}), timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"seeding failed ({proc.returncode}): {proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**out, "token_seconds": granted, "seconds": time.perf_counter() - started}


def main() -> None:
    """Read {"tokens": [...], "types": [...]} from stdin and insert the companies and their states."""
    from datetime import timedelta

    from sqlalchemy import insert, text

    from dashboard import create_app
    from dashboard.extensions import db
    from dashboard.models import Company, ConnectionState, utcnow
    from dashboard.services.token_store import token_cache, vault
    from dashboard.services.tokens import FRESHNESS_MARGIN

    spec = json.loads(sys.stdin.read())
    app = create_app(environ=dict(os.environ))
    started = time.perf_counter()
    with app.app_context():
        sealer, now = vault(), utcnow()
        rows = []
        for t in spec["tokens"]:
            realm = t["realmId"]
            rows.append({
                "source_id": realm, "integration": "qbo", "name": f"Seeded {realm}",
                "connection_state": ConnectionState.CONNECTED, "connected_at": now,
                "access_token": sealer.seal(realm, "access", t["access_token"]),
                "access_token_expires_at": now + timedelta(seconds=int(t["expires_in"])),
                "refresh_token": sealer.seal(realm, "refresh", t["refresh_token"]),
                "refresh_token_expires_at": now + timedelta(seconds=int(t["x_refresh_token_expires_in"])),
                "token_version": 1,
                # Not due until the benchmark says so; the daily parity check a day away.
                "next_sync_at": now + timedelta(hours=1), "parity_due_at": now + timedelta(days=1),
                "created_at": now, "updated_at": now})
        db.session.execute(insert(Company), rows)
        # Every type backfilled a day ago and read just now: the next cycle is an idle incremental one.
        db.session.execute(text(
            "INSERT INTO sync_state (company_source_id, object_type, status, is_initial_backfill_completed, "
            "initial_attempt_time, last_attempt_time, last_successful_sync_time, backfill_tie_offset, "
            "backfill_started_at, records_synced, attempts, enabled, parity_drifts, created_at, updated_at) "
            "SELECT c.source_id, t.name, 'SUCCEEDED', true, :backfilled, :now, :now, 0, :backfilled, 0, 0, true, 0, "
            ":now, :now "
            "FROM company c CROSS JOIN unnest(CAST(:types AS text[])) AS t(name)"),
            {"now": now, "backfilled": now - timedelta(days=1), "types": spec["types"]})
        db.session.commit()
        # The access tokens cached as a running service has them (a token lives an hour, a
        # cycle comes every 5 minutes: 11 cycles in 12 find it in Redis). Without Redis: no-op.
        cache = token_cache()
        for row in rows:
            cache.put(row["source_id"], row["access_token"], row["access_token_expires_at"] - FRESHNESS_MARGIN, now)
    print(json.dumps({"companies": len(rows), "states": len(rows) * len(spec["types"]),
                      "insert_seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
