"""``flask --app wsgi alert test``: a test alert to every configured channel, said per channel."""
from __future__ import annotations

from .conftest import SECRET_PATH, alert_settings


def test_it_sends_a_test_alert_to_every_channel(app, runner, channels):
    sink, smtp = channels
    result = runner.invoke(args=["alert", "test"])
    assert result.exit_code == 0, result.output
    assert f"webhook: sent — webhook (json) to http://127.0.0.1:{sink.server.server_port}/…" in result.output
    assert "email: sent — e-mail to ops@example.com, oncall@example.com through smtp://127.0.0.1:" in result.output
    [body] = sink.bodies
    assert body["event"] == "test" and body["title"] == "Test alert from QuickBooks Sync"
    [mail] = smtp.messages
    assert mail["message"]["Subject"].strip() == "[QuickBooks Sync] Test: Test alert from QuickBooks Sync"
    assert SECRET_PATH not in result.output


def test_it_fails_per_channel_without_leaking_the_webhook_secret(app, runner, db_session, sink, smtp):
    sink.mode = "500"
    with alert_settings(app, alert_webhook_url=sink.url, smtp_url="smtp://user:pa55word@127.0.0.1:9",
                        alert_email_to=("ops@example.com",)):
        result = runner.invoke(args=["alert", "test"])
    assert result.exit_code == 1
    assert "webhook: FAILED" in result.output and "answered HTTP 500" in result.output
    assert "email: FAILED — e-mail to ops@example.com through smtp://127.0.0.1:9" in result.output
    assert "could not be used (ConnectionRefusedError)" in result.output
    assert "s3cr3t" not in result.output and "pa55word" not in result.output


def test_it_says_so_when_no_channel_is_configured(app, runner, db_session):
    with alert_settings(app):
        result = runner.invoke(args=["alert", "test"])
    assert result.exit_code == 1
    assert "No alert channel is configured: set ALERT_WEBHOOK_URL" in result.output
