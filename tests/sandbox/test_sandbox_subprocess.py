"""Start `python -m sandbox` as a subprocess and drive it over the admin API."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_and_admin_api() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port), "--seed", "4",
         "--customers", "40", "--invoices", "80"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        banner = []
        while True:
            line = proc.stdout.readline()
            assert line, "server exited early"
            banner.append(line)
            if "admin API" in line:
                break
        text = "".join(banner)
        assert "sandbox-client-id" in text and f"QBO_TOKEN_URL={base}/oauth2/v1/tokens/bearer" in text
        assert f"QBO_API_BASE_URL={base}\n" in text
        for _ in range(50):
            try:
                if requests.get(base + "/_sandbox/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        companies = requests.get(base + "/_sandbox/companies", timeout=5).json()
        realm = companies[0]["realmId"]
        assert companies[0]["counts"] == {"Customer": 40, "Invoice": 80}

        url = requests.get(base + "/_sandbox/authorize", params={"realm": realm, "state": "abc"}, timeout=5).json()[
            "redirect_url"]
        q = parse_qs(urlsplit(url).query)
        tok = requests.post(base + "/oauth2/v1/tokens/bearer", auth=("sandbox-client-id", "sandbox-client-secret"),
                            data={"grant_type": "authorization_code", "code": q["code"][0],
                                  "redirect_uri": "http://localhost:3000/v1/oauth/callback/qbo"}, timeout=5).json()
        h = {"Authorization": f"Bearer {tok['access_token']}", "Accept": "application/json"}
        api = f"{base}/v3/company/{realm}/query"

        r = requests.post(base + "/_sandbox/config", json={"per_second": 3, "second_window": 5,
                                                           "throttle_xml_probability": 0}, timeout=5)
        assert r.json()["per_second"] == 3 and "client_secret" not in r.json()
        codes = [requests.get(api, params={"query": "select count(*) from Customer"}, headers=h, timeout=5).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        stats = requests.get(f"{base}/_sandbox/stats/{realm}", params={"log": 1}, timeout=5).json()
        assert stats["throttled"] == 1 and len(stats["log"]) == 4
        requests.post(base + "/_sandbox/config", json={"per_second": 10, "second_window": 1}, timeout=5)
        requests.post(base + "/_sandbox/stats/reset", json={}, timeout=5)

        requests.post(base + "/_sandbox/faults", json={"kind": "500", "realm": realm, "count": 1}, timeout=5)
        assert requests.get(api, params={"query": "select * from Customer"}, headers=h, timeout=5).status_code == 500

        created = requests.post(f"{base}/_sandbox/records/{realm}/customer", json={"DisplayName": "Zoë O'Brien"},
                                timeout=5).json()
        assert created["Id"]
        inv = requests.post(f"{base}/_sandbox/records/{realm}/invoice", json={"customer_id": created["Id"]},
                            timeout=5).json()
        assert requests.delete(f"{base}/_sandbox/records/{realm}/invoice/{inv['Id']}", timeout=5).ok
        again = requests.delete(f"{base}/_sandbox/records/{realm}/invoice/{inv['Id']}", timeout=5)
        assert again.status_code == 400 and again.json()["Fault"]["Error"][0]["code"] == "610"
        src = requests.get(f"{base}/_sandbox/records/{realm}/invoice", timeout=5).json()
        assert inv["Id"] in src["deleted_ids"] and len(src["records"]) == 80

        requests.post(base + "/_sandbox/oauth/expire", json={"realm": realm}, timeout=5)
        assert requests.get(api, params={"query": "select * from Customer"}, headers=h, timeout=5).status_code == 401
        refreshed = requests.post(base + "/oauth2/v1/tokens/bearer", auth=("sandbox-client-id", "sandbox-client-secret"),
                                  data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
                                  timeout=5)
        assert refreshed.status_code == 200
        ostats = requests.get(base + "/_sandbox/oauth/stats", params={"realm": realm}, timeout=5).json()
        assert ostats["requests"]["refresh_token"] == 1

        before = time.time()
        clock = requests.post(base + "/_sandbox/clock", json={"offset_seconds": 7200}, timeout=5).json()
        assert before + 7200 <= clock["now"] <= time.time() + 7200  # the server reads the same real clock
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
