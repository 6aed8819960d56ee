"""Fixtures of the Xero edge tests: one simulator server per module, a fresh Xero per test.

Everything goes over real HTTP to ``sandbox.xero`` (consent page, token endpoint,
/connections, the Accounting API). The DB is not touched; the services run puts the
request limiter in Redis (RedisRateLimiter), the embedded run keeps it in memory.
"""
from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from dashboard.config import load_config
from dashboard.integrations.base import TokenSet
from dashboard.integrations.xero.client import XeroClient, limit_values
from dashboard.integrations.xero.oauth import XeroIntegration
from dashboard.qbo.ratelimit import Limits, LocalRateLimiter, RedisRateLimiter
from sandbox.testing import SandboxServer
from sandbox.xero import XeroSimulator
from tests.conftest import BACKEND, ENV, RUN_ID, TEST_REDIS_URL


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    # One server per module (its shutdown waits out a poll interval); each test installs its own Xero.
    with SandboxServer(companies=1, customers=2, invoices=2, tie_size=1) as srv:
        yield srv


def install(server: SandboxServer, **options: Any) -> XeroSimulator:
    """Give the running server a fresh Xero simulator (3 organisations, limits off unless asked)."""
    old = server.xero
    if old is not None:
        old.close()
    sim = XeroSimulator(**{"organisations": 3, "contacts": 40, "invoices": 230, "breadth": 6, "seed": 5,
                           "rate_limits_enabled": False, **options})
    server.app.extensions["xero"] = sim
    return sim


@pytest.fixture
def sim(server: SandboxServer) -> XeroSimulator:
    return install(server)


@pytest.fixture
def settings(server: SandboxServer, tmp_path):
    return load_config({**ENV, "INSTANCE_PATH": str(tmp_path), **server.xero_urls()}, tmp_path)


@pytest.fixture
def xero(settings) -> XeroIntegration:
    return XeroIntegration.from_settings(settings)


def with_timeout(integration: XeroIntegration, seconds: float) -> XeroIntegration:
    """The same integration with a shorter HTTP timeout (to lose a slow answer)."""
    return XeroIntegration(dataclasses.replace(integration.config, http_timeout=seconds),
                           integration.connections_url, integration.scope)


def consent(integration: XeroIntegration, tenants: list[str], state: str = "state-1") -> str:
    """Open the authorization URL, tick ``tenants`` on the consent page, allow; return the code."""
    http = requests.Session()
    url = integration.authorization_url(state)
    page = http.get(url)
    assert page.status_code == 200, page.text
    form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    answer = http.post(url.split("?")[0], data={**form, "tenant": tenants, "action": "allow"}, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == [state]
    return query["code"][0]


def connect(integration: XeroIntegration, tenants: list[str]) -> TokenSet:
    return integration.exchange_code(consent(integration, tenants), utcnow())


def make_limiter(settings) -> Any:
    """Xero's limits from the settings: in Redis (shared by every worker) on the services run."""
    limits = Limits(**limit_values(settings.tuning))
    if BACKEND == "services":
        import redis

        # A prefix per limiter: the seeded tenants repeat across tests, their windows must not.
        return RedisRateLimiter(redis.Redis.from_url(TEST_REDIS_URL),
                                prefix=f"qbosync:qbosync-test-{RUN_ID}:xero-limits:{uuid.uuid4().hex[:8]}:",
                                limits=limits, max_wait=30)
    return LocalRateLimiter(limits, max_wait=30)


class Tokens:
    """The token holder a sync would keep: the client asks it for a token and for a refresh."""

    def __init__(self, integration: XeroIntegration, tokens: TokenSet) -> None:
        self.integration = integration
        self.tokens = tokens
        self.refreshes = 0

    def get(self) -> str:
        return self.tokens.access_token

    def refresh(self, _old_access: str) -> str:
        self.refreshes += 1
        self.tokens = self.integration.refresh(self.tokens.refresh_token, utcnow())
        return self.tokens.access_token


def client_for(settings, tokens: Tokens, tenant: str, limiter: Any = None,
               sleep: Callable[[float], None] | None = None, observers=()) -> XeroClient:
    kwargs = {"sleep": sleep} if sleep else {}
    return XeroClient(settings.xero_api_base_url, tenant, tokens.get, tokens.refresh,
                      limiter or make_limiter(settings), observers=observers, **kwargs)
