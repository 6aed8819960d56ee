"""Books skewed as real ones are (per-entity counts, long journal entries), and a request log
that tells a COUNT(*) from a data page and names the entities of a CDC call."""
from __future__ import annotations

from datetime import datetime, timezone

import requests

from sandbox import Simulator
from sandbox.testing import SandboxServer

from conftest import ApiClient


def test_counts_set_each_entity_and_the_rest_follow_breadth() -> None:
    sim = Simulator(companies=1, customers=5, invoices=9, seed=3, rate_limits_enabled=False)
    realm = sim.generate(companies=1, customers=5, invoices=9, breadth=2, transaction_factor=3,
                         counts={"payment": 40, "JournalEntry": 7, "Term": 0})[0]
    counts = sim.entity_counts(realm)
    assert counts["Payment"] == 40 and counts["JournalEntry"] == 7 and counts["Term"] == 0
    assert counts["Bill"] == 6 and counts["Vendor"] == 2  # transactions × factor, name lists × 1
    assert counts["Customer"] == 5 and counts["Invoice"] == 9
    invoices = {r["Id"] for r in sim.records(realm, "Invoice")}
    for payment in sim.records(realm, "Payment"):  # references still point at existing records
        assert {t["TxnId"] for line in payment["Line"] for t in line["LinkedTxn"]} <= invoices


def test_journal_lines_make_long_balanced_entries() -> None:
    sim = Simulator(companies=1, customers=3, invoices=3, seed=4, rate_limits_enabled=False)
    realm = sim.generate(companies=1, customers=3, invoices=3, breadth=3, counts={"JournalEntry": 5},
                         journal_lines=12)[0]
    accounts = {r["Id"] for r in sim.records(realm, "Account")}
    for entry in sim.records(realm, "JournalEntry"):
        lines = entry["Line"]
        assert len(lines) == 12
        debits = sum(l["Amount"] for l in lines if l["JournalEntryLineDetail"]["PostingType"] == "Debit")
        credits = sum(l["Amount"] for l in lines if l["JournalEntryLineDetail"]["PostingType"] == "Credit")
        assert round(debits, 2) == round(credits, 2) == entry["TotalAmt"]
        assert {l["JournalEntryLineDetail"]["AccountRef"]["value"] for l in lines} <= accounts


def test_bad_mix_is_refused_and_changes_nothing() -> None:
    with SandboxServer(companies=1, customers=4, invoices=4, seed=5, rate_limits_enabled=False) as srv:
        base = f"{srv.url}/_sandbox"
        before = srv.sim.realms()
        for body in ({"counts": {"Invoice": 10}}, {"counts": {"Nope": 1}}, {"counts": {"Bill": -1}},
                     {"counts": {"Bill": 1}, "journal_lines": 1}, {"counts": {"Bill": 1}, "journal_lines": 500}):
            resp = requests.post(f"{base}/generate", json={"companies": 1, **body})
            assert resp.status_code == 400, body
            assert resp.json()["error"]
        assert srv.sim.realms() == before


def test_request_log_says_what_each_request_asked(sim: Simulator) -> None:
    api = ApiClient(sim)
    realm = api.realm
    since = datetime.fromtimestamp(sim.now() - 86400, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sim.reset_stats()
    assert api.query("SELECT COUNT(*) FROM Customer").status_code == 200
    posted = api.http.post(f"/v3/company/{realm}/query", data="SELECT * FROM Invoice STARTPOSITION 1 MAXRESULTS 5",
                           headers={**api.headers(), "Content-Type": "application/text"})
    assert posted.status_code == 200
    cdc = api.http.get(f"/v3/company/{realm}/cdc", query_string={
        "entities": "Customer,Invoice", "changedSince": since}, headers=api.headers())
    assert cdc.status_code == 200
    log = sim.request_log(realm)
    assert [(e["kind"], e["detail"]) for e in log] == [
        ("query", "SELECT COUNT(*) FROM Customer"),
        ("query", "SELECT * FROM Invoice STARTPOSITION 1 MAXRESULTS 5"),
        ("cdc", "Customer,Invoice"),
    ]
