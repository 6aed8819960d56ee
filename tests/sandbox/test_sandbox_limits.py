"""Rate limits, concurrency, batch limit, throttle bodies and request stats."""
from __future__ import annotations

import json
import threading
import time
from typing import Any

import requests

from sandbox import Simulator
from sandbox.testing import SandboxServer

from conftest import ApiClient

COUNT = "select count(*) from Customer"


def _client(**config: Any) -> ApiClient:
    return ApiClient(Simulator(companies=1, customers=5, invoices=5, **config))


# The windows are long and moved by the simulator's clock: the test's own pace cannot slide them.

def test_per_second_limit() -> None:
    api = _client(per_second=5, second_window=30, per_minute=1000, throttle_xml_probability=0.0)
    statuses = [api.query(COUNT).status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429] * 3
    body = api.query(COUNT).get_json()
    err = body["Fault"]["Error"][0]
    assert err["code"] == "3001" and "ThrottleExceeded" in err["Message"]
    api.sim.advance_clock(30)
    assert api.query(COUNT).status_code == 200
    st = api.sim.stats(api.realm)
    assert st["throttled"] == 4 and st["by_status"]["429"] == 4 and st["by_status"]["200"] == 6
    assert st["max_in_any_1s_window"] == 9  # attempts, throttled included


def test_per_minute_limit() -> None:
    api = _client(per_second=100, per_minute=6, throttle_xml_probability=0.0)
    statuses = [api.query(COUNT).status_code for _ in range(8)]
    assert statuses.count(200) == 6 and statuses[-2:] == [429, 429]
    api.sim.advance_clock(api.sim.config.minute_window)
    assert api.query(COUNT).status_code == 200
    assert api.sim.stats(api.realm)["max_in_any_60s_window"] == 8


def test_throttle_xml_is_deterministic_under_seed() -> None:
    def kinds(seed: int) -> list[str]:
        api = _client(per_second=1, second_window=30, seed=seed, throttle_xml_probability=0.5)
        api.query(COUNT)
        return [api.query(COUNT).content_type.split(";")[0] for _ in range(12)]
    a, b = kinds(5), kinds(5)
    assert a == b and "application/xml" in a and "application/json" in a


def test_xml_throttle_body() -> None:
    api = _client(per_second=1, second_window=30, throttle_xml_probability=1.0)
    api.query(COUNT)
    r = api.query(COUNT)
    assert r.status_code == 429 and b'<Error code="3001">' in r.data and r.headers["intuit_tid"]


def _hold_admitted(sim: Simulator) -> threading.Event:
    """Keep every admitted request in flight (its slot taken) until the returned event is set."""
    release = threading.Event()
    finish = sim.limits.finish

    def held_finish(ticket, status, outcome=None):
        if ticket.admitted:
            release.wait(30)
        finish(ticket, status, outcome)

    sim.limits.finish = held_finish
    return release


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_concurrency_limit_over_http() -> None:
    with SandboxServer(companies=1, customers=5, invoices=5, max_concurrent=3,
                       throttle_xml_probability=0.0) as srv:
        realm = srv.sim.realms()[0]
        token = srv.sim.issue_tokens(realm)["access_token"]
        results: list[int] = []
        lock = threading.Lock()
        release = _hold_admitted(srv.sim)

        def call() -> None:
            r = requests.get(f"{srv.url}/v3/company/{realm}/query", params={"query": COUNT},
                             headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}, timeout=30)
            with lock:
                results.append(r.status_code)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        try:
            # The three admitted requests stay in flight until every request has been decided.
            _wait_for(lambda: srv.sim.stats(realm)["requests"] == 6)
        finally:
            release.set()
        for t in threads:
            t.join()
        assert sorted(results) == [200, 200, 200, 429, 429, 429]
        st = srv.sim.stats(realm)
        assert st["peak_concurrency"] >= 4 and st["peak_admitted_concurrency"] == 3
        assert st["by_outcome"]["throttled:concurrency"] == 3
        srv.sim.reset_stats(realm)
        assert srv.sim.stats(realm)["requests"] == 0


def test_batch_counts_items_and_has_own_limit() -> None:
    api = _client(per_second=100, per_minute=12, minute_window=30, batch_per_minute=2,
                  throttle_xml_probability=0.0)
    body = {"BatchItemRequest": [{"bId": str(i), "Query": COUNT} for i in range(5)]}
    post = lambda: api.http.post(f"/v3/company/{api.realm}/batch", data=json.dumps(body),
                                 headers={**api.headers(), "Content-Type": "application/json"})
    assert post().status_code == 200
    assert post().status_code == 200          # 10 of 12 per-minute units used
    r = post()
    assert r.status_code == 429               # batch 40/min analogue exceeded (and units)
    assert api.query(COUNT).status_code == 200
    assert api.query(COUNT).status_code == 200
    assert api.query(COUNT).status_code == 429  # per-minute units exhausted by batch items
    st = api.sim.stats(api.realm)
    assert st["weighted_requests"] == 5 * 3 + 3 and st["by_kind"]["batch"] == 3


def test_batch_limit_alone() -> None:
    api = _client(per_second=100, per_minute=1000, batch_per_minute=2, throttle_xml_probability=0.0)
    body = json.dumps({"BatchItemRequest": [{"bId": "a", "Query": COUNT}]})
    codes = [api.http.post(f"/v3/company/{api.realm}/batch", data=body, headers=api.headers()).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    assert api.sim.stats(api.realm)["by_outcome"]["throttled:batch_per_minute"] == 1
    assert api.query(COUNT).status_code == 200


def test_large_batch_fills_but_passes_second_window() -> None:
    api = _client(per_second=10, per_minute=1000, throttle_xml_probability=0.0)
    body = json.dumps({"BatchItemRequest": [{"bId": str(i), "Query": COUNT} for i in range(30)]})
    r = api.http.post(f"/v3/company/{api.realm}/batch", data=body, headers=api.headers())
    assert r.status_code == 200 and len(r.get_json()["BatchItemResponse"]) == 30
    assert api.query(COUNT).status_code == 429  # the second window is full
    too_big = json.dumps({"BatchItemRequest": [{"bId": str(i), "Query": COUNT} for i in range(31)]})
    api.sim.advance_clock(api.sim.config.second_window)
    r = api.http.post(f"/v3/company/{api.realm}/batch", data=too_big, headers=api.headers())
    assert r.status_code == 400
