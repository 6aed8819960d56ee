"""Fixtures for the alert tests: a real HTTP sink and a real SMTP server, started by the test,
and the app's alert settings pointed at them."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from aiosmtpd.controller import Controller

# Short waits for tests: the production defaults are 10 s, 3 retries from 30 s.
FAST_ALERTS = {"ALERT_DELIVERY_TIMEOUT": 1.0, "ALERT_DELIVERY_RETRIES": 2, "ALERT_RETRY_DELAY": 0.1,
               "ALERT_RETRY_BACKOFF": 1.0, "ALERT_DIGEST_THRESHOLD": 5, "ALERT_REPEAT_HOURS": 24.0}
BASE_URL = "https://sync.example.com"
SECRET_PATH = "/services/T000/B000/s3cr3t-webhook-key"


class HttpSink:
    """A threaded HTTP server that records every POST; ``mode``: "ok", "500" or "hang"."""

    def __init__(self) -> None:
        sink = self
        self.requests: list[dict[str, Any]] = []
        self.mode = "ok"
        self.release = threading.Event()
        self.arrived = threading.Condition()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink.arrived:
                    sink.requests.append({"path": self.path, "body": json.loads(body or b"null"),
                                          "content_type": self.headers.get("Content-Type")})
                    sink.arrived.notify_all()
                if sink.mode == "hang":
                    sink.release.wait(30)
                    return
                status = 500 if sink.mode == "500" else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="alert-sink", daemon=True)

    @property
    def bodies(self) -> list[Any]:
        return [r["body"] for r in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < count and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
        return self.bodies


class SmtpHandler:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "message": message_from_bytes(envelope.original_content or envelope.content,
                                                                policy=policy.default)})
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    server = HttpSink()
    server.thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def smtp() -> Iterator[SmtpHandler]:
    handler = SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    handler.url = f"smtp://{controller.hostname}:{controller.port}"
    try:
        yield handler
    finally:
        controller.stop()


@contextlib.contextmanager
def alert_settings(app, **changes: Any) -> Iterator[None]:
    """Set the app's alert settings (and the fast knobs) for a block; restore afterwards."""
    saved, saved_knobs = app.config["SETTINGS"], {k: app.config.get(k) for k in FAST_ALERTS}
    defaults = dict(alert_webhook_url=None, alert_webhook_format="json", smtp_url=None, alert_email_from=None,
                    alert_email_to=(), alert_base_url=BASE_URL)
    app.config["SETTINGS"] = dataclasses.replace(saved, **{**defaults, **changes})
    app.config.update(FAST_ALERTS)
    try:
        yield
    finally:
        app.config["SETTINGS"] = saved
        app.config.update(saved_knobs)


@pytest.fixture
def channels(app, db_session, sink, smtp):
    """Alerts go to the HTTP sink (json) and to the SMTP server."""
    with alert_settings(app, alert_webhook_url=sink.url, smtp_url=smtp.url, alert_email_from="alerts@example.com",
                        alert_email_to=("ops@example.com", "oncall@example.com")):
        yield sink, smtp


def wait_until(condition, timeout: float = 15.0, what: str = "condition"):
    """Wait for work other threads do (a consumer, a server); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def deliveries_settled(db_session) -> bool:
    """Every alert delivery has been sent or has failed for good."""
    from sqlalchemy import func, select

    from dashboard.models import AlertDelivery

    db_session.rollback()
    return db_session.scalar(select(func.count()).select_from(AlertDelivery)
                             .where(AlertDelivery.status == "pending")) == 0
