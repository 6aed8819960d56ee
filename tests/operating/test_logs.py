"""Logs in both formats: context on each line, and no token, code or secret in any of them.

The whole life of a connection runs over real HTTP (the dashboard served by werkzeug, whose
access log writes every request line, the OAuth callback's code included) against the
simulator: sign in, connect, sync on a real consumer, refresh the token, disconnect.
"""
from __future__ import annotations

import io
import json
import logging
import re
import time
from urllib.parse import urlsplit

import pytest
import requests

from dashboard import logs
from dashboard.extensions import db
from dashboard.models import RunStatus, SyncRun
from dashboard.services import tokens
from tests.conftest import PASSWORD
from tests.oauth.conftest import callback_params, consent, issued_tokens
from tests.support.live import running_consumer, served_over_http


@pytest.fixture
def captured():
    """Every log line of the test (root and below, INFO up) in the format asked for."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    saved_level = root.level

    def start(log_format: str) -> io.StringIO:
        handler.setFormatter(logs.formatter(log_format))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        return stream

    yield start
    root.removeHandler(handler)
    root.setLevel(saved_level)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or \
        re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _wait_for_run(app, realm: str, timeout: float = 60) -> SyncRun:
    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            run = db.session.query(SyncRun).filter_by(company_source_id=realm).order_by(SyncRun.id).first()
            if run is not None and run.status == RunStatus.SUCCEEDED:
                return run
            db.session.rollback()
            time.sleep(0.2)
    raise AssertionError("the backfill did not finish")


def _life_of_a_connection(app, qbo, base: str) -> dict:
    """Sign in, connect, sync, refresh, disconnect over HTTP; return what a log must not show."""
    from dashboard.services.operators import create_operator

    with app.app_context():
        create_operator("alice", PASSWORD)
    browser = requests.Session()
    sign_in = browser.get(f"{base}/sign-in", timeout=10)
    signed = browser.post(f"{base}/sign-in", data={"username": "alice", "password": PASSWORD,
                                                   "csrf_token": _csrf(sign_in.text)}, allow_redirects=False,
                          timeout=10)
    assert signed.status_code == 302, signed.text
    realm = qbo.sim.realms()[0]
    start = browser.get(f"{base}/v1/oauth/authorize/qbo", allow_redirects=False, timeout=10)
    callback = urlsplit(consent(start.headers["Location"], realm))
    answer = browser.get(f"{base}{callback.path}?{callback.query}", allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    # One 503 on a first page (the 2nd request, after the batch of counts; both small types'
    # pages are asked at once): the client's warning carries Intuit's intuit_tid and the type.
    qbo.sim.inject_fault("503", realm=realm, nth=2)
    with running_consumer(app, workers=2):
        run = _wait_for_run(app, realm)
    with app.app_context():
        tokens.force_refresh(realm, tokens.get_access_token(realm))
    page = browser.get(f"{base}/companies/{realm}", timeout=10)
    gone = browser.post(f"{base}/companies/{realm}/disconnect", data={"csrf_token": _csrf(page.text),
                                                                      "confirm": "yes"},
                        allow_redirects=False, timeout=10)
    assert gone.status_code == 302, gone.text
    settings = app.config["SETTINGS"]
    secrets = {
        **{f"token {i}": t for i, t in enumerate(sorted(issued_tokens(qbo.sim)))},
        "authorization code": callback_params(callback.geturl())["code"],
        "OAuth state": callback_params(callback.geturl())["state"],
        "client secret": settings.qbo_client_secret,
        "SECRET_KEY": settings.secret_key,
        **{f"encryption key {i}": k for i, k in enumerate(settings.token_encryption_keys)},
        "METRICS_TOKEN": settings.metrics_token,
        "webhook verifier": settings.qbo_webhook_verifier_token,
        "operator password": PASSWORD,
        "session cookie": browser.cookies.get("session"),
    }
    assert len([name for name in secrets if name.startswith("token ")]) >= 4  # access + refresh, rotated
    return {"realm": realm, "run_id": run.id, "secrets": secrets}


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_connections_life_logs_context_and_no_secret(app, qbo, captured, log_format):
    stream = captured(log_format)
    with served_over_http(app) as base:
        seen = _life_of_a_connection(app, qbo, base)
    text = stream.getvalue()
    lines = text.splitlines()
    assert "GET /v1/oauth/callback/qbo?" in text  # the access log's line of the callback is there...
    leaked = [name for name, secret in seen["secrets"].items() if secret and secret in text]
    assert leaked == [], f"{log_format} logs hold: {leaked}"  # ...with its code redacted
    realm, run_id = seen["realm"], seen["run_id"]
    if log_format == "json":
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        assert len(entries) == len([line for line in lines if line.strip() and not line.startswith((" ", "\t"))])
        assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
        done = [e for e in entries if e["message"].startswith(f"Run {run_id} (backfill) succeeded")]
        assert done and done[0]["realm"] == realm and done[0]["run_id"] == run_id
        faults = [e for e in entries if e["logger"] == "dashboard.qbo.client" and "failed" in e["message"]]
        assert faults and re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", faults[0]["intuit_tid"])
        assert faults[0]["realm"] == realm and faults[0]["run_id"] == run_id
        assert faults[0]["object_type"] in ("customer", "invoice")  # the page the 503 met
    else:
        done = [line for line in lines if f"Run {run_id} (backfill) succeeded" in line]
        assert done and f"[realm={realm} run_id={run_id}]" in done[0]
        faults = [line for line in lines if "dashboard.qbo.client" in line and "failed" in line]
        assert faults and re.search(rf"realm={realm} run_id={run_id} object_type=(customer|invoice) intuit_tid=1-",
                                    faults[0])


@pytest.mark.parametrize("line, shown", [
    ('"GET /v1/oauth/callback/qbo?code=AB12cd&state=xyz&realmId=123 HTTP/1.1" 302',
     '"GET /v1/oauth/callback/qbo?code=[redacted]&state=[redacted]&realmId=123 HTTP/1.1" 302'),
    ("Authorization: Bearer eyJhbGciOi.J9.abc", "Authorization: Bearer [redacted]"),
    ('{"access_token": "a1", "refresh_token":"r1", "expires_in": 3600}',
     '{"access_token": "[redacted]", "refresh_token": "[redacted]", "expires_in": 3600}'),
    ("stored gAAAAABk1234567890abcdefghijklmnop_-== here", "stored [redacted] here"),
    ("token_version=3 for realm 123", "token_version=3 for realm 123"),
])
def test_redaction(line, shown):
    assert logs.redact(line) == shown
