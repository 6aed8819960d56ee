"""The pure parts of alerts: settings, the pass's rules, the words of each channel."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard.config import ConfigError, load_config
from dashboard.services.alerts import messages
from dashboard.services.alerts.problems import Problem, hard_expiry_stage
from dashboard.services.alerts.rules import OpenAlert, plan

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(hours=24)
BASE_ENV = {"APP_ENV": "test", "SECRET_KEY": "x" * 32,
            "TOKEN_ENCRYPTION_KEYS": "SEByAMfZKDQ_U8ngNv4CqL0IyYJgdZU4eJzqBFB02sY="}


def settings(tmp_path, **env):
    return load_config({**BASE_ENV, **env}, tmp_path)


def test_alert_settings_are_parsed(tmp_path):
    s = settings(tmp_path, ALERT_WEBHOOK_URL="https://hooks.slack.com/services/T/B/secret", ALERT_WEBHOOK_FORMAT="Slack",
                 SMTP_URL="smtps://bot:pw@mail.example.com", ALERT_EMAIL_TO="a@example.com, b@example.com",
                 ALERT_BASE_URL="https://sync.example.com/")
    assert s.alert_webhook_format == "slack" and s.alert_email_to == ("a@example.com", "b@example.com")
    assert s.alert_email_from == "qbosync@mail.example.com" and s.alert_base_url == "https://sync.example.com"
    assert "secret" not in repr(s) and "pw@" not in repr(s)
    none = settings(tmp_path)
    assert (none.alert_webhook_url, none.smtp_url, none.alert_email_to) == (None, None, ())


@pytest.mark.parametrize("env, message", [
    ({"ALERT_WEBHOOK_FORMAT": "xml"}, "ALERT_WEBHOOK_FORMAT must be json, slack or teams, got 'xml'"),
    ({"ALERT_WEBHOOK_URL": "ftp://hooks/secret"}, "ALERT_WEBHOOK_URL must be a URL starting with http:// or https://"),
    ({"SMTP_URL": "http://u:secret@mail", "ALERT_EMAIL_TO": "a@example.com"}, "SMTP_URL must look like smtp://"),
    ({"SMTP_URL": "smtp://mail.example.com"}, "ALERT_EMAIL_TO is required when SMTP_URL is set"),
    ({"ALERT_EMAIL_TO": "a@example.com"}, "ALERT_EMAIL_TO is set but SMTP_URL is not"),
    ({"SMTP_URL": "smtp://mail.example.com", "ALERT_EMAIL_TO": "not-an-address"},
     "ALERT_EMAIL_TO must hold e-mail addresses"),
    ({"ALERT_BASE_URL": "sync.example.com"}, "ALERT_BASE_URL must be a URL"),
    ({"ALERT_DIGEST_THRESHOLD": "0"}, "ALERT_DIGEST_THRESHOLD must be at least 1"),
])
def test_bad_alert_settings_are_refused_by_name_without_echoing_secrets(tmp_path, env, message):
    with pytest.raises(ConfigError) as raised:
        settings(tmp_path, **env)
    assert message in str(raised.value) and "secret" not in str(raised.value)


def problem(key="sync_failed:1:invoice", **kw):
    return Problem(key=key, kind=key.split(":")[0], title="t", message="m", company_source_id="1", **kw)


def open_alert(key="sync_failed:1:invoice", stage=None, notified=T0):
    return OpenAlert(key, key.split(":")[0], stage, T0, notified)


def test_the_rules_open_once_remind_daily_and_resolve():
    assert [p.key for p in plan([problem()], {}, T0, DAY).opened] == ["sync_failed:1:invoice"]
    still = {"sync_failed:1:invoice": open_alert()}
    assert plan([problem()], still, T0 + DAY - timedelta(seconds=1), DAY).silent
    assert len(plan([problem()], still, T0 + DAY, DAY).reminded) == 1
    assert plan([problem(repeats=False)], still, T0 + 10 * DAY, DAY).silent
    gone = plan([], still, T0, DAY)
    assert [a.key for a in gone.resolved] == ["sync_failed:1:invoice"]


def test_holding_problems_keep_alerts_open_but_never_open_one():
    assert plan([problem(holds_only=True)], {}, T0, DAY).silent
    held = plan([problem(holds_only=True)], {"sync_failed:1:invoice": open_alert()}, T0 + 3 * DAY, DAY)
    assert held.silent and len(held.kept) == 1
    # The same key seen as a real problem by another reading wins.
    both = plan([problem(holds_only=True), problem()], {}, T0, DAY)
    assert len(both.opened) == 1


def test_a_new_stage_is_said_again_and_a_failed_source_resolves_nothing():
    key = "token_hard_expiry:1"
    escalated = plan([problem(key, stage="7 days")], {key: open_alert(key, "30 days")}, T0, DAY)
    assert [p.stage for p in escalated.opened] == ["7 days"]
    assert plan([], {key: open_alert(key)}, T0, DAY, unknown_kinds=["token_hard_expiry"]).silent


def test_hard_expiry_stages():
    assert hard_expiry_stage(None, T0) is None
    assert hard_expiry_stage(T0 + timedelta(days=31), T0) is None
    assert hard_expiry_stage(T0 + timedelta(days=30), T0) == "30 days"
    assert hard_expiry_stage(T0 + timedelta(days=7), T0) == "7 days"
    assert hard_expiry_stage(T0, T0) == "expired"


def test_slack_text_is_escaped_and_long_digests_are_cut():
    items = [messages.item(key=f"k{i}", kind="sync_failed", title=f"<b>{i}</b> & co", message="m",
                           company_source_id=str(i), object_type=None, stage=None, opened_at=T0, resolved_at=None,
                           base_url="https://x.example") for i in range(30)]
    body = messages.slack(messages.digest("problem", items, T0))
    listing = body["blocks"][1]["text"]["text"]
    assert "&lt;b&gt;0&lt;/b&gt; &amp; co" in listing and "<b>" not in listing
    assert listing.count("\n• ") == 19 and listing.endswith("…and 10 more (see the Alerts page)")
    assert body["text"] == "30 new problems in 30 companies"
    subject, text = messages.email(messages.digest("problem", items, T0))
    assert subject == "[QuickBooks Sync] 30 new problems in 30 companies" and text.count("\n- ") == 30
