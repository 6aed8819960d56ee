"""Connect simulator companies the way an operator does: through the app's OAuth routes.

Run as a child process with the app's environment (``run`` does that): it signs an
operator in, and for each realm follows ``/v1/oauth/authorize/qbo`` → the simulator's
consent (completed through its admin API instead of a browser) → ``/v1/oauth/callback/qbo``.
The callback stores the encrypted tokens and queues the initial backfill, exactly as in
production, so the benchmarks then only have to start workers.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import requests

from .infra import PYTHON, ROOT

PASSWORD = "bench-password-0123456789"


def run(env: dict[str, str], sim_url: str, realms: list[str], *, timeout: float = 900) -> dict:
    """Connect every realm (two children at once for long lists); return connected count and seconds."""
    import time

    chunks = [realms[i::2] for i in range(2)] if len(realms) > 50 else [realms]
    started = time.perf_counter()
    procs = [subprocess.Popen([PYTHON, "-m", "benchmarks.connect", sim_url, f"bench-operator-{i}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                              env=env, text=True) for i in range(len(chunks))]
    connected = 0
    for proc, chunk in zip(procs, chunks):
        out, err = proc.communicate(json.dumps(chunk), timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"connecting companies failed ({proc.returncode}): {err[-3000:]}")
        connected += json.loads(out.strip().splitlines()[-1])["connected"]
    return {"connected": connected, "seconds": time.perf_counter() - started}


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'name="csrf-token" content="([^"]+)"', html)
    return match.group(1) if match else ""


# Production settings mark the session cookie Secure: the test client must speak https.
BASE_URL = "https://localhost"


def _connect_one(client, admin: requests.Session, sim_url: str, realm: str) -> None:
    start = client.get("/v1/oauth/authorize/qbo", base_url=BASE_URL)
    if start.status_code not in (302, 303):
        raise RuntimeError(f"authorize answered {start.status_code}: {start.get_data(as_text=True)[:300]}")
    params = parse_qs(urlsplit(start.headers["Location"]).query)
    consent = admin.get(f"{sim_url}/_sandbox/authorize", params={
        "realm": realm, "state": params["state"][0], "redirect_uri": params["redirect_uri"][0]}, timeout=30)
    consent.raise_for_status()
    back = urlsplit(consent.json()["redirect_url"])
    done = client.get(f"{back.path}?{back.query}", base_url=BASE_URL)
    if done.status_code >= 400:
        raise RuntimeError(f"callback for {realm} answered {done.status_code}: {done.get_data(as_text=True)[:300]}")


def main(sim_url: str, username: str) -> None:
    """Read realm ids (JSON list) from stdin and connect each one as operator `username`."""
    import time

    from dashboard import create_app
    from dashboard.services.operators import OperatorError, create_operator

    realms = json.loads(sys.stdin.read())
    app = create_app(environ=dict(os.environ))
    with app.app_context():
        try:
            create_operator(username, PASSWORD)
        except OperatorError:  # connecting again (a reconnect): the operator exists already
            pass
    client = app.test_client()
    page = client.get("/sign-in", base_url=BASE_URL).get_data(as_text=True)
    signed = client.post("/sign-in", data={"username": username, "password": PASSWORD,
                                           "csrf_token": _csrf(page)}, base_url=BASE_URL,
                         # Over https Flask-WTF also checks that the form came from this site.
                         headers={"Referer": f"{BASE_URL}/sign-in"})
    if signed.status_code != 302:
        raise RuntimeError(f"sign-in answered {signed.status_code}")
    admin = requests.Session()
    started = time.perf_counter()
    for realm in realms:
        _connect_one(client, admin, sim_url, realm)
    print(json.dumps({"connected": len(realms), "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "bench-operator")
