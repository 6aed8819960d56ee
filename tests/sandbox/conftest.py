"""Fixtures for the QBO simulator tests."""
from __future__ import annotations

import os
import sys
from typing import Any, Iterator

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sandbox import Simulator, create_app  # noqa: E402
from sandbox.testing import SandboxServer  # noqa: E402


class ApiClient:
    """Call the simulator app through Flask's test client with a bearer token."""

    def __init__(self, sim: Simulator, realm: str | None = None) -> None:
        self.sim = sim
        self.app = create_app(sim)
        self.http = self.app.test_client()
        self.realm = realm or sim.realms()[0]
        self.token = sim.issue_tokens(self.realm)["access_token"]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}

    def query(self, statement: str, realm: str | None = None) -> Any:
        return self.http.get(f"/v3/company/{realm or self.realm}/query", query_string={"query": statement},
                             headers=self.headers())

    def rows(self, statement: str, entity: str = "Customer") -> list[dict[str, Any]]:
        resp = self.query(statement)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.get_json()["QueryResponse"].get(entity, [])


@pytest.fixture
def sim() -> Iterator[Simulator]:
    s = Simulator(companies=2, customers=60, invoices=120, tie_size=25, seed=7, rate_limits_enabled=False)
    yield s
    s.close()


@pytest.fixture
def api(sim: Simulator) -> ApiClient:
    return ApiClient(sim)


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(companies=2, customers=30, invoices=60, tie_size=10, seed=3) as srv:
        yield srv
