"""The admin HTTP API for every entity, over real HTTP, and the --breadth / --tie command-line flags."""
from __future__ import annotations

import subprocess
import sys
import time

import requests

from sandbox.entities import ENTITIES
from sandbox.testing import SandboxServer

from test_sandbox_subprocess import ROOT, _free_port


def test_admin_routes_for_any_entity() -> None:
    with SandboxServer(companies=1, customers=8, invoices=8, breadth=4, seed=13, rate_limits_enabled=False) as srv:
        base = f"{srv.url}/_sandbox"
        realm = srv.sim.realms()[0]
        counts = requests.get(f"{base}/counts/{realm}").json()
        assert set(counts) == {e.name for e in ENTITIES} and counts["Bill"] == 4 and counts["Customer"] == 8
        active = requests.get(f"{base}/counts/{realm}", params={"include_inactive": "0"}).json()
        assert all(active[n] <= counts[n] for n in counts)

        vendor = requests.post(f"{base}/records/{realm}/vendor", json={"DisplayName": "Acme Parts"}).json()
        assert vendor["Active"] is True and srv.sim.get(realm, "Vendor", vendor["Id"]) == vendor
        bill = requests.post(f"{base}/records/{realm}/Bill", json={
            "VendorRef": {"value": vendor["Id"]}, "TotalAmt": 12.5, "Line": []}).json()
        assert bill["VendorRef"]["value"] == vendor["Id"]
        missing = requests.post(f"{base}/records/{realm}/bill", json={"VendorRef": {"value": "999"}})
        assert missing.status_code == 400 and missing.json()["Fault"]["Error"][0]["code"] == "610"

        changed = requests.post(f"{base}/records/{realm}/bill/{bill['Id']}", json={"TotalAmt": 20}).json()
        assert changed["TotalAmt"] == 20 and changed["SyncToken"] == "1"
        off = requests.post(f"{base}/records/{realm}/vendor/{vendor['Id']}/deactivate").json()
        assert off["Active"] is False
        assert requests.post(f"{base}/records/{realm}/bill/{bill['Id']}/deactivate").status_code == 400
        assert requests.delete(f"{base}/records/{realm}/vendor/{vendor['Id']}").status_code == 400
        assert requests.delete(f"{base}/records/{realm}/bill/{bill['Id']}").json()["status"] == "Deleted"
        again = requests.delete(f"{base}/records/{realm}/bill/{bill['Id']}")
        assert again.status_code == 400 and again.json()["Fault"]["Error"][0]["code"] == "610"
        listed = requests.get(f"{base}/records/{realm}/bill").json()
        assert bill["Id"] in listed["deleted_ids"] and len(listed["records"]) == 4

        # The classic routes keep working (customer_id for invoices).
        customer = requests.post(f"{base}/records/{realm}/customer", json={"DisplayName": "Zoë Admin"}).json()
        invoice = requests.post(f"{base}/records/{realm}/invoice", json={"customer_id": customer["Id"]}).json()
        assert invoice["CustomerRef"]["value"] == customer["Id"]

        survivor = next(c for c in srv.sim.records(realm, "Customer") if c["Active"] and c["Id"] != customer["Id"])
        merged = requests.post(f"{base}/merge/{realm}", json={"survivor_id": survivor["Id"],
                                                             "merged_id": customer["Id"]}).json()
        assert merged["Id"] == survivor["Id"]
        assert srv.sim.get(realm, "Invoice", invoice["Id"])["CustomerRef"]["value"] == survivor["Id"]
        assert srv.sim.get(realm, "Customer", customer["Id"])["Active"] is False
        assert requests.post(f"{base}/merge/{realm}", json={"survivor_id": "1"}).status_code == 400

        tied = requests.post(f"{base}/tie/{realm}/item", json={"count": 12}).json()["ids"]
        stamps = {srv.sim.get(realm, "Item", i)["MetaData"]["LastUpdatedTime"] for i in tied}
        assert len(tied) == 12 and len(stamps) == 1

        regenerated = requests.post(f"{base}/generate", json={"seed": 3, "companies": 1, "customers": 2,
                                                              "invoices": 2, "breadth": 2, "ties": {"Term": 9}}).json()
        counts = regenerated["companies"][0]["counts"]
        assert counts["Term"] == 9 and counts["Deposit"] == 2 and len(counts) == 28


def test_command_line_breadth_and_tie_flags() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--companies", "1", "--customers", "5",
         "--invoices", "5", "--breadth", "3", "--tie", "Item=25"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        banner = []
        while True:
            line = proc.stdout.readline()
            assert line, "server exited early"
            banner.append(line)
            if "admin API" in line:
                break
        # 25 entities × 3 + 25 tied Items
        assert "(5 customers, 5 invoices, 100 records of 26 other entities)" in "".join(banner)
        base = f"http://127.0.0.1:{port}/_sandbox"
        for _ in range(50):
            try:
                realm = requests.get(f"{base}/health", timeout=2).json()["realms"][0]
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        counts = requests.get(f"{base}/counts/{realm}").json()
        assert counts["Item"] == 25 and counts["JournalEntry"] == 3 and counts["Customer"] == 5
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
