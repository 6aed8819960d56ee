"""Assemble the Flask application around a Simulator."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from . import admin, api, oauth_routes
from .responses import new_tid
from .simulator import Simulator
from .xero import XeroSimulator, mount as mount_xero


def create_app(simulator: Simulator | None = None, xero: XeroSimulator | None = None, **config: Any) -> Flask:
    """Return the simulator app; the Simulator is at app.extensions["sandbox"] and app.sim.

    Xero's paths (under /xero/...) are served too; their XeroSimulator is
    app.extensions["xero"] (``xero``, or a default one made on first use).
    """
    sim = simulator or Simulator(**config)
    app = Flask("sandbox")
    app.extensions["sandbox"] = sim
    app.sim = sim  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.register_blueprint(oauth_routes.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    mount_xero(app, xero)

    @app.after_request
    def _tid(resp: Response) -> Response:
        # Intuit sets intuit_tid on every OAuth and API response, errors included.
        if not request.path.startswith(("/_sandbox", "/xero")):
            resp.headers.setdefault("intuit_tid", new_tid())
        return resp

    @app.get("/")
    def index() -> Response:
        realms = "".join(f"<li>{c['name']} — {c['realmId']}</li>" for c in sim.company_list())
        return Response(f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>QBO simulator"
                        f"</title></head><body><h1>Intuit QuickBooks Online simulator</h1><ul>{realms}</ul>"
                        f"</body></html>", content_type="text/html;charset=utf-8")

    return app
