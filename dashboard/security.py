"""Response headers, sign-in enforcement, refusal of unstorable text and the session user loader."""
from __future__ import annotations

from typing import Optional

from flask import Flask, Request, abort, request
from flask_login import current_user

from .extensions import db, login_manager
from .models import Operator
from .views.auth import redirect_to_sign_in

# htmx 2 works under this policy once its inline indicator styles are turned off
# (the htmx-config meta tag in base.html); no inline script anywhere.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
])

# Routes that answer without a signed-in operator: each protected by something else.
PUBLIC_ENDPOINTS = {
    "static",
    "health.health",            # load balancers
    "auth.sign_in",             # the way in
    "oauth.callback",           # single-use server-side state
    "webhooks.receive",         # Intuit's HMAC signature
    "metrics.scrape",           # Prometheus: bearer METRICS_TOKEN (checked by the view)
}


# PostgreSQL refuses a NUL in any string, so a NUL in a search or a realm crashed the query.
# It is the one character a URL or a form can bring that no column stores: werkzeug decodes
# bytes that are not UTF-8 to replacement characters (or leaves them escaped), never to
# lone surrogates.
UNSTORABLE = "\x00"


def unstorable_input(req: Request) -> Optional[str]:
    """Return why the request carries text no column can store (a NUL), or None when it does not."""
    if any(UNSTORABLE in str(value) for value in (req.view_args or {}).values()):
        return "The address cannot contain a NUL character. Check the link, or go back to the companies list."
    sources = [(req.args, "query parameter")]
    # A webhook's body is signed bytes its view reads itself, within its own size limit:
    # parsing it as a form here would read it first.
    if req.blueprint != "webhooks":
        sources.append((req.form, "form field"))
    for fields, what in sources:
        for name, value in fields.items(multi=True):
            if UNSTORABLE in name or UNSTORABLE in value:
                return f"The {what} {name!r} cannot contain a NUL character. Remove it and try again."
    return None


def register(app: Flask) -> None:
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_operator(operator_id: str):
        return db.session.get(Operator, int(operator_id))

    @login_manager.unauthorized_handler
    def unauthorized():
        return redirect_to_sign_in()

    # Before the sign-in check: the sign-in form and its ``next`` are input too.
    @app.before_request
    def refuse_unstorable_input():
        problem = unstorable_input(request)
        if problem:
            abort(400, problem)

    @app.before_request
    def require_operator():
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        # Same-origin Referer keeps Flask-WTF's HTTPS referrer check working.
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        headers.add("Vary", "HX-Request")
        if request.endpoint != "static":
            headers.setdefault("Cache-Control", "no-store")
        return response
