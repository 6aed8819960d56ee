"""``/v1/oauth``: start a connection, receive Intuit's callback, reconnect a company."""
from __future__ import annotations

from flask import (
    Blueprint, Flask, abort, current_app, flash, make_response, redirect, render_template, request, session,
    url_for,
)
from flask_login import current_user
from werkzeug.routing import BuildError

from .. import integrations
from ..extensions import csrf
from ..integrations.errors import UnknownIntegration
from ..services import oauth_flow
from .audit import note

bp = Blueprint("oauth", __name__, url_prefix="/v1/oauth")

SESSION_KEY = "oauth_binding"


def register(app: Flask) -> None:
    integrations.init_app(app)
    app.register_blueprint(bp)


def _session_binding() -> str:
    """The random value tying this browser session to the flows it starts."""
    if SESSION_KEY not in session:
        session[SESSION_KEY] = oauth_flow.new_session_binding()
    return session[SESSION_KEY]


def _start(integration: str, company_source_id: str | None = None):
    try:
        url = oauth_flow.begin(integration, current_user.get_id() and int(current_user.get_id()),
                               _session_binding(), company_source_id)
    except UnknownIntegration as exc:
        abort(404, str(exc))
    return redirect(url, code=302)


@bp.get("/authorize/<integration>")
def authorize(integration: str):
    """Send the operator to the provider's consent page."""
    return _start(integration)


@bp.get("/reconnect", defaults={"integration": None})
@bp.get("/reconnect/<integration>")
def reconnect(integration: str | None):
    """Restart the flow for a company that needs reconnecting (Intuit's Reconnect URL)."""
    realm = request.args.get("realm", "").strip()
    company = oauth_flow.reconnect_target(realm) if realm else None
    if company is None:
        abort(404, "There is no such company to reconnect. Go back to the companies list.")
    if integration is not None and integration != company.integration:
        abort(404, f"Company {realm} is not connected through {integration!r}.")
    return _start(company.integration, realm)


@csrf.exempt
@bp.get("/callback/<integration>")
def callback(integration: str):
    """Finish the flow (public: the single-use, session-bound ``state`` protects it)."""
    try:
        outcome = oauth_flow.complete(integration, request.args.to_dict(flat=True), session.get(SESSION_KEY))
    except UnknownIntegration as exc:
        return _no_referrer(render_template("oauth/callback_error.html", title="Unknown integration",
                                            message=str(exc)), 404)
    except oauth_flow.CallbackRejected as exc:
        current_app.logger.info("OAuth callback rejected: %s", exc.reason)
        return _no_referrer(render_template("oauth/callback_error.html", title=exc.title,
                                            message=exc.message, reason=exc.reason), exc.status)
    connected = outcome.connected
    note("connect" if connected.created else "reconnect", connected.company_source_id,
         detail=f"through {integration}" + (", first sync queued" if outcome.sync_queued else ""))
    label = connected.name or f"Company {connected.company_source_id}"
    flash(f"{label} is {'connected' if connected.created else 'reconnected'}."
          + (" Its first sync is queued." if outcome.sync_queued else ""), "success")
    if outcome.sync_message:
        flash(outcome.sync_message, "warning")
    if outcome.reconnect_of and outcome.reconnect_of != connected.company_source_id:
        flash(f"You chose another company than {outcome.reconnect_of}, which still needs reconnecting.",
              "warning")
    return _no_referrer(redirect(_company_page(connected.company_source_id), code=302))


def _company_page(realm: str) -> str:
    try:
        return url_for("companies.detail", realm=realm)
    except BuildError:
        return url_for("companies.index")


def _no_referrer(response, status: int | None = None):
    """The callback URL holds a code and state: never leak it through Referer."""
    response = make_response(response, status) if status else make_response(response)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
