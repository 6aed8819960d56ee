"""CompanyInfo read: Intuit's shape, and the same gateway (auth, 403, faults, stats) as other reads."""
from __future__ import annotations

from typing import Any

from sandbox import Simulator

from conftest import ApiClient


def _info(api: ApiClient, realm: str | None = None, info_id: str | None = None, token: str | None = None) -> Any:
    realm = realm or api.realm
    headers = {"Authorization": f"Bearer {token or api.token}", "Accept": "application/json"}
    return api.http.get(f"/v3/company/{realm}/companyinfo/{info_id or realm}",
                        query_string={"minorversion": "75"}, headers=headers)


def test_companyinfo_has_intuits_shape(api: ApiClient, sim: Simulator) -> None:
    resp = _info(api)
    assert resp.status_code == 200 and resp.headers["intuit_tid"]
    body = resp.get_json()
    info = body["CompanyInfo"]
    name = sim.company(api.realm).name
    assert info["CompanyName"] == name and info["LegalName"] == name
    assert info["Id"] == "1" and info["SyncToken"] == "0" and info["Country"] == "US"
    assert set(info["MetaData"]) == {"CreateTime", "LastUpdatedTime"}
    assert body["time"] and body["time"][-6] in "+-"
    assert _info(api).get_json()["CompanyInfo"] == info  # deterministic


def test_companyinfo_counts_as_a_read(api: ApiClient, sim: Simulator) -> None:
    sim.reset_stats(api.realm)
    assert _info(api).status_code == 200
    stats = sim.stats(api.realm)
    assert stats["requests"] == 1 and stats["by_kind"] == {"read": 1}


def test_companyinfo_needs_a_token_of_that_realm(api: ApiClient, sim: Simulator) -> None:
    other = sim.realms()[1]
    # A token issued for realm 0 used on realm 1: the same 403 as any other endpoint.
    resp = _info(api, realm=other)
    assert resp.status_code == 403
    assert resp.get_json()["Fault"]["Error"][0]["code"] == "3100"
    assert api.query("select count(*) from Customer", realm=other).status_code == 403
    assert _info(api, token="not-a-token").status_code == 401
    no_auth = api.http.get(f"/v3/company/{api.realm}/companyinfo/{api.realm}")
    assert no_auth.status_code == 401


def test_companyinfo_with_another_id_is_not_found(api: ApiClient) -> None:
    resp = _info(api, info_id="1")
    assert resp.status_code == 400 and resp.get_json()["Fault"]["Error"][0]["code"] == "610"


def test_companyinfo_gets_injected_faults(api: ApiClient, sim: Simulator) -> None:
    sim.inject_fault("500", realm=api.realm)
    resp = _info(api)
    assert resp.status_code == 500 and resp.get_json()["Fault"]["type"] == "SystemFault"
    assert _info(api).status_code == 200  # the rule fired once
    sim.inject_fault("503", realm=api.realm)
    assert _info(api).status_code == 503
