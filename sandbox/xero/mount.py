"""Mount the Xero simulator on the sandbox app, beside Intuit's paths."""
from __future__ import annotations

from typing import Any

from flask import Flask

from . import admin, api, oauth_routes
from .simulator import XeroSimulator


def mount(app: Flask, xero: XeroSimulator | None = None, **config: Any) -> None:
    """Register Xero's blueprints; the simulator is ``app.extensions["xero"]``, made on first use
    from ``config`` when not given."""
    if xero is not None:
        app.extensions["xero"] = xero
    app.extensions["xero_config"] = config
    app.register_blueprint(oauth_routes.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)


def xero_urls(base: str) -> dict[str, str]:
    """Map the sandbox's base URL to the service's XERO_* settings."""
    return {
        "XERO_AUTHORIZE_URL": f"{base}{oauth_routes.AUTHORIZE}",
        "XERO_TOKEN_URL": f"{base}/xero/identity/connect/token",
        "XERO_REVOKE_URL": f"{base}/xero/identity/connect/revocation",
        "XERO_CONNECTIONS_URL": f"{base}/xero/api/connections",
        "XERO_API_BASE_URL": f"{base}/xero/api",
    }
