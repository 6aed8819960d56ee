"""Fixtures for the OAuth, token and connection tests: the Intuit simulator over real HTTP."""
from __future__ import annotations

import dataclasses
import html
import re
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select, update

from dashboard.redis_client import redis_client
from sandbox.testing import SandboxServer

REDIRECT_URI = "http://localhost:3000/v1/oauth/callback/qbo"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A simulator with strict refresh-token rotation (a superseded token dies at once)."""
    with SandboxServer(companies=2, customers=5, invoices=5, refresh_grace=0, seed=11,
                       redirect_uris=[REDIRECT_URI], webhook_enabled=False) as server:
        yield server


@pytest.fixture
def company(signed_in, qbo, db_session) -> str:
    """One company connected through the real flow; the simulator's counters reset."""
    from dashboard.models import RunStatus, SyncRun

    realm = qbo.sim.realms()[0]
    assert connect(signed_in, realm).status_code == 302
    db_session.execute(update(SyncRun).values(status=RunStatus.CANCELLED))  # its backfill is not under test
    db_session.commit()
    qbo.sim.reset_stats()
    qbo.sim.oauth.reset_stats()
    return realm


@pytest.fixture
def qbo(app, sandbox) -> Iterator[SandboxServer]:
    """Point the app's QuickBooks settings at the simulator for one test."""
    original = app.config["SETTINGS"]
    app.config["SETTINGS"] = dataclasses.replace(
        original, qbo_authorize_url=f"{sandbox.url}/connect/oauth2",
        qbo_token_url=f"{sandbox.url}/oauth2/v1/tokens/bearer",
        qbo_revoke_url=f"{sandbox.url}/v2/oauth2/tokens/revoke", qbo_api_base_url=sandbox.url,
        qbo_redirect_uri=REDIRECT_URI, qbo_client_id="sandbox-client-id",
        qbo_client_secret="sandbox-client-secret")
    try:
        yield sandbox
    finally:
        app.config["SETTINGS"] = original
        _forget_cached_tokens(app)


def _forget_cached_tokens(app) -> None:
    settings = app.config["SETTINGS"]
    if not settings.redis_url:
        return
    client = redis_client(settings.redis_url)
    keys = list(client.scan_iter(match=settings.redis_key("access-token", "*")))
    if keys:
        client.delete(*keys)


def consent(authorize_url: str, realm: str | None = None, action: str = "connect") -> str:
    """Complete the simulator's consent page over HTTP, without a browser; return the
    callback URL it redirects to."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    fields = {name: html.unescape(value) for name, value in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)}
    if realm is None:
        realm = re.search(r'name="realmId" value="([^"]+)"', page.text).group(1)
    base = f"{urlsplit(authorize_url).scheme}://{urlsplit(authorize_url).netloc}"
    answer = requests.post(f"{base}/connect/oauth2", data={**fields, "realmId": realm, "action": action},
                           allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def local_path(url: str) -> str:
    """Turn the callback URL (on localhost:3000) into a path for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def callback_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def connect(client, realm: str | None = None):
    """Run the whole connect flow with a signed-in test client; return the callback response."""
    start = client.get("/v1/oauth/authorize/qbo")
    assert start.status_code == 302, start.get_data(as_text=True)
    return client.get(local_path(consent(start.headers["Location"], realm)))


def issued_tokens(sim) -> set[str]:
    """Every access and refresh token the simulator ever issued."""
    tokens: set[str] = set()
    for grant in sim.oauth.grants.values():
        tokens.add(grant.refresh_token)
        tokens.update(grant.previous)
        tokens.update(grant.access)
    return tokens


def refresh_calls(sim, realm: str) -> int:
    """Refresh-token requests the simulator received for ``realm``."""
    return sim.token_requests(realm)["requests"].get("refresh_token", 0)


def stored_company(db_session, realm: str):
    """The company row as committed now."""
    from dashboard.models import Company

    db_session.expire_all()
    return db_session.execute(select(Company).where(Company.source_id == realm)).scalar_one()


def expire_access(db_session, realm: str, at=None) -> None:
    """Make the stored access token due (as the clock would) without touching Intuit."""
    from dashboard.models import Company, utcnow
    from dashboard.services import token_store

    db_session.execute(update(Company).where(Company.source_id == realm)
                       .values(access_token_expires_at=at or utcnow()))
    db_session.commit()
    token_store.token_cache().forget(realm)


def open_stored(app, company, kind: str) -> str:
    """Decrypt one of a company row's tokens with the app's keys."""
    from dashboard.vault import TokenVault

    value = company.access_token if kind == "access" else company.refresh_token
    return TokenVault(app.config["SETTINGS"].token_encryption_keys).open(company.source_id, kind, value)
