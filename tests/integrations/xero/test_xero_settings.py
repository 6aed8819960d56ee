"""The XERO_* settings: the simulator without XERO_CLIENT_ID, Xero's hosts with it."""
from __future__ import annotations

import pytest

from dashboard.config import ConfigError, load_config
from dashboard.integrations.xero.client import limit_values
from dashboard.integrations.xero.oauth import XeroIntegration
from tests.conftest import ENV


def test_simulator_defaults_then_xero_with_a_client_id(tmp_path) -> None:
    sim = load_config(ENV, tmp_path)
    assert sim.xero_uses_simulator and sim.xero_client_id == "xero-sandbox-client-id"
    assert sim.xero_token_url == "http://127.0.0.1:3001/xero/identity/connect/token"
    assert sim.xero_api_base_url == "http://127.0.0.1:3001/xero/api"
    assert sim.xero_redirect_uri == "http://localhost:3000/v1/oauth/callback/xero"
    assert (sim.xero_daily_call_limit, sim.xero_webhook_key) == (5000, "")
    assert limit_values(sim.tuning) == {"per_minute": 60, "per_second": 60, "concurrent": 5, "minute_window": 61.0}
    real = load_config({**ENV, "XERO_CLIENT_ID": "abc", "XERO_CLIENT_SECRET": "s3cret", "XERO_WEBHOOK_KEY": "k",
                        "XERO_DAILY_CALL_LIMIT": "1000", "XERO_SCOPES": "offline_access,accounting.contacts.read",
                        "XERO_LIMIT_PER_MINUTE": "30"}, tmp_path)
    assert not real.xero_uses_simulator
    assert (real.xero_authorize_url, real.xero_token_url, real.xero_revoke_url, real.xero_connections_url,
            real.xero_api_base_url) == (
        "https://login.xero.com/identity/connect/authorize", "https://identity.xero.com/connect/token",
        "https://identity.xero.com/connect/revocation", "https://api.xero.com/connections", "https://api.xero.com")
    assert (real.xero_daily_call_limit, real.xero_scopes) == (1000, "offline_access accounting.contacts.read")
    assert limit_values(real.tuning)["per_minute"] == 30
    assert "s3cret" not in repr(real) and XeroIntegration.from_settings(real).config.client_id == "abc"
    with pytest.raises(ConfigError, match="XERO_CLIENT_SECRET"):
        load_config({**ENV, "XERO_CLIENT_ID": "abc"}, tmp_path)
    with pytest.raises(ConfigError, match="XERO_DAILY_CALL_LIMIT"):
        load_config({**ENV, "XERO_DAILY_CALL_LIMIT": "0"}, tmp_path)
