"""The operating settings: METRICS_TOKEN, METRICS_PER_COMPANY, PROMETHEUS_MULTIPROC_DIR, LOG_FORMAT."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from dashboard.config import ConfigError, load_config

PRODUCTION = {"APP_ENV": "production", "DATABASE_URL": "postgresql://h/db", "REDIS_URL": "redis://h",
              "SECRET_KEY": "s" * 32, "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
              "QBO_CLIENT_ID": "cid", "QBO_CLIENT_SECRET": "secret"}


def test_development_generates_a_metrics_token_once_into_the_instance_folder(tmp_path):
    first = load_config({}, tmp_path)
    path = tmp_path / "metrics-token"
    assert first.metrics_token == path.read_text() and len(first.metrics_token) == 48
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_config({}, tmp_path).metrics_token == first.metrics_token
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".metrics-token")] == []  # no draft left
    assert first.metrics_token not in repr(first)
    assert (first.metrics_dir, first.metrics_per_company, first.log_format) == (
        str(tmp_path / "metrics"), False, "text")


def test_production_has_no_metrics_token_unless_set(tmp_path):
    assert load_config(PRODUCTION, tmp_path).metrics_token is None
    assert not (tmp_path / "metrics-token").exists()
    chosen = load_config({**PRODUCTION, "METRICS_TOKEN": "t" * 40, "METRICS_PER_COMPANY": "1",
                          "PROMETHEUS_MULTIPROC_DIR": "/run/qbosync-metrics", "LOG_FORMAT": "JSON"}, tmp_path)
    assert (chosen.metrics_token, chosen.metrics_per_company, chosen.metrics_dir, chosen.log_format) == (
        "t" * 40, True, "/run/qbosync-metrics", "json")


@pytest.mark.parametrize("env, message", [
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be text or json, got 'xml'"),
    ({"METRICS_PER_COMPANY": "maybe"}, "METRICS_PER_COMPANY must be 1 or 0, got 'maybe'"),
    ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16 characters"),
])
def test_bad_operating_settings_name_the_variable(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env, tmp_path)
    assert not (tmp_path / "metrics-token").exists()
