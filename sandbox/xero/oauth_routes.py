"""Serve Xero's identity paths: consent page, token, revocation, discovery, /connections.

On one host Xero's hosts become path prefixes: ``https://login.xero.com`` → ``/xero/login``,
``https://identity.xero.com`` → ``/xero/identity``, ``https://api.xero.com`` → ``/xero/api``.
"""
from __future__ import annotations

import time
from html import escape

from flask import Blueprint, Response, request

from ..oauth import OAuthError
from ..oauth_routes import _client_credentials, _error_page, _oauth_json, _redirect
from . import render as R
from .context import xero_sim
from .oauth import DEFAULT_USER
from .resources import BROAD_SCOPES, KNOWN_SCOPES

bp = Blueprint("xero_identity", __name__)
AUTHORIZE = "/xero/login/identity/connect/authorize"

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
          "fieldset{border:1px solid #8d9096;border-radius:6px;padding:1rem}label{display:block;padding:.4rem 0}"
          "button{font-size:1rem;padding:.5rem 1.2rem;margin:1rem .5rem 0 0;border-radius:4px;border:1px solid #13b5ea}"
          "button[value=allow]{background:#13b5ea;color:#fff}button:focus{outline:3px solid #0b5fff}"
          ".hint{color:#393a3d;font-size:.9rem}")


def _scope_problem(scope: str, granular_only: bool) -> str | None:
    scopes = scope.split()
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if not scopes or unknown:
        return "invalid_scope"
    if granular_only and any(s in BROAD_SCOPES for s in scopes):
        # Xero names no scope in this error.
        return "unauthorized_client: Invalid scope for client"
    return None


@bp.route(AUTHORIZE, methods=["GET", "POST"])
def authorize() -> Response:
    """Show the consent page (GET: tick organisations) and redirect with a code (POST)."""
    sim = xero_sim()
    src = request.values
    client_id, redirect_uri, state = src.get("client_id", ""), src.get("redirect_uri", ""), src.get("state", "")
    scope, response_type = src.get("scope", ""), src.get("response_type", "")
    challenge, method = src.get("code_challenge") or None, src.get("code_challenge_method", "")
    # Xero shows errors on its own page, never redirecting to the app with error=.
    if client_id != sim.config.client_id:
        return _error_page("unauthorized_client: Unknown client or client not enabled")
    if redirect_uri not in sim.config.redirect_uris:
        return _error_page("Invalid redirect_uri")
    if response_type != "code":
        return _error_page("unsupported_response_type")
    if challenge and method != "S256":
        return _error_page("invalid_request: code_challenge_method must be S256")
    problem = _scope_problem(scope, sim.config.granular_scopes_only)
    if problem:
        return _error_page(problem)
    if request.method == "POST":
        if src.get("action") != "allow":
            return _redirect(redirect_uri, {"error": "access_denied", "state": state})
        chosen = [t for t in src.getlist("tenant") if t in sim.organisations]
        if not chosen:
            return _error_page("Choose at least one organisation to connect.")
        consent = sim.oauth.consent(client_id, redirect_uri, scope,
                                    [(t, sim.organisations[t].name) for t in chosen],
                                    src.get("user") or DEFAULT_USER, challenge)
        return _redirect(redirect_uri, {"code": consent.code, "scope": scope, "state": state})
    options = "".join(
        f'<label><input type="checkbox" name="tenant" value="{escape(o["tenantId"])}"{" checked" if i == 0 else ""}>'
        f' {escape(o["name"])}</label>' for i, o in enumerate(sim.organisation_list()))
    hidden = "".join(f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in
                     (("client_id", client_id), ("redirect_uri", redirect_uri), ("state", state), ("scope", scope),
                      ("response_type", response_type), ("code_challenge", challenge or ""),
                      ("code_challenge_method", method), ("user", src.get("user", ""))))
    html = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Connect to Xero (sandbox)</title><style>{_STYLE}</style></head><body><main>"
            f"<h1>{escape(sim.config.app_name)} wants to access your Xero data</h1>"
            f'<p class="hint">Scopes: {escape(scope)}</p>'
            f'<form method="post" action="{AUTHORIZE}">{hidden}'
            f"<fieldset><legend>Choose the organisations to connect</legend>{options}</fieldset>"
            f'<button type="submit" name="action" value="allow">Allow access</button>'
            f'<button type="submit" name="action" value="cancel">Cancel</button>'
            f'</form><p class="hint">This is the local Xero simulator; no Xero account is used.</p>'
            f"</main></body></html>")
    resp = Response(html, content_type="text/html;charset=utf-8")
    resp.headers["Cache-Control"] = "no-cache, no-store"
    return resp


def _fault(target: str) -> Response | None:
    rule = xero_sim().faults.pick(None, target)
    if rule is None:
        return None
    if rule.kind == "slow":
        time.sleep(rule.delay)
        return None
    if rule.kind == "401":
        return R.problem(401, "AuthenticationUnsuccessful")
    return R.text(R.MAINTENANCE if rule.kind == "maintenance" else "An error occurred", 503 if rule.kind in (
        "503", "maintenance") else 500)


@bp.post("/xero/identity/connect/token")
def token() -> Response:
    """Exchange a code (client secret or PKCE) or rotate a refresh token."""
    sim = xero_sim()
    faulted = _fault("token")
    if faulted is not None:
        return faulted
    try:
        cid, secret = _client_credentials()
        cid = cid or request.form.get("client_id")
        grant_type = request.form.get("grant_type")
        if grant_type == "authorization_code":
            client_id = sim.oauth.check_client(cid, secret, public_ok=True)
            grant, access = sim.oauth.exchange_code(client_id, request.form.get("code"),
                                                    request.form.get("redirect_uri"),
                                                    request.form.get("code_verifier"), secret is not None)
        elif grant_type == "refresh_token":
            client_id = sim.oauth.check_client(cid, secret, public_ok=True)
            grant, access = sim.oauth.refresh(client_id, request.form.get("refresh_token"), secret is not None)
        else:
            raise OAuthError("unsupported_grant_type")
    except OAuthError as exc:
        return _oauth_json(exc.body(), exc.status)
    return _oauth_json(sim.oauth.token_response(grant, access))


@bp.post("/xero/identity/connect/revocation")
def revocation() -> Response:
    """Revoke the grant of a refresh token and remove all its user's connections (200 either way)."""
    sim = xero_sim()
    try:
        sim.oauth.check_client(*_client_credentials())
    except OAuthError as exc:
        return _oauth_json(exc.body(), exc.status)
    tok = request.form.get("token")
    if not tok:
        return _oauth_json({"error": "invalid_request"}, 400)
    sim.oauth.revoke(tok)
    return Response(b"", status=200)


@bp.get("/xero/identity/.well-known/openid-configuration")
def discovery() -> Response:
    """Point at this host's identity paths."""
    base = request.host_url.rstrip("/")
    return _oauth_json({
        "issuer": "https://identity.xero.com", "authorization_endpoint": base + AUTHORIZE,
        "token_endpoint": f"{base}/xero/identity/connect/token",
        "revocation_endpoint": f"{base}/xero/identity/connect/revocation",
        "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": sorted(KNOWN_SCOPES)})


def _grant_or_401() -> tuple[object | None, Response | None]:
    sim = xero_sim()
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    grant, reason = sim.oauth.grant_for_access(token)
    if grant is None:
        return None, unauthorized(reason, sim.oauth.expiry_of(token))
    return grant, None


def unauthorized(reason: str, expired_at: float) -> Response:
    """Answer 401 TokenExpired for an expired token, AuthenticationUnsuccessful otherwise."""
    if reason == "expired":
        when = time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(expired_at))
        return R.problem(401, f"TokenExpired: token expired at {when}")
    return R.problem(401, "AuthenticationUnsuccessful")


@bp.get("/xero/api/connections")
@bp.get("/xero/api/Connections")
def connections() -> Response:
    """List the user's tenants, from every consent (?authEventId= narrows to one)."""
    grant, error = _grant_or_401()
    if error is not None:
        return error
    faulted = _fault("connections")
    if faulted is not None:
        return faulted
    rows = xero_sim().oauth.list_connections(grant.user, request.args.get("authEventId"))  # type: ignore[attr-defined]
    return Response(R.json_bytes([c.to_json() for c in rows]), content_type="application/json; charset=utf-8")


@bp.delete("/xero/api/connections/<conn_id>")
@bp.delete("/xero/api/Connections/<conn_id>")
def disconnect(conn_id: str) -> Response:
    """Disconnect one tenant: 204; 404 unknown; 403 when given the tenant id."""
    grant, error = _grant_or_401()
    if error is not None:
        return error
    status = xero_sim().oauth.delete_connection(grant.user, conn_id)  # type: ignore[attr-defined]
    if status == 204:
        return Response(b"", status=204)
    return R.problem(403, "AuthenticationUnsuccessful") if status == 403 else R.text(R.NOT_FOUND, 404)
